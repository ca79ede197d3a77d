"""A YOLO model through the ``ultralytics`` package, when it is installed, from a local ``.pt`` file.

Named ``yolo_ultralytics`` so that ``import ultralytics`` here finds the package, not this module.
Nothing is downloaded: the weights file must exist (ultralytics would fetch a missing one by name), and
only ``.pt`` files are accepted, since other formats make ultralytics install runtimes at load time;
run exported ONNX models with the ``dnn`` detector instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.base import FilterParams, filter_detections
from mot.errors import UserError
from mot.geometry import xyxy_to_tlwh
from mot.types import Detections


@dataclass
class UltralyticsParams(FilterParams):
    weights: str = ""                # a local .pt file (required)
    classes: list[int] | None = field(default_factory=lambda: [0])  # COCO person; None keeps all
    imgsz: int = 640                 # inference size (ultralytics letterboxes to it)
    device: str = "cpu"
    min_score: float | None = 0.25
    nms_iou: float | None = 0.45     # passed to ultralytics' NMS and applied again across classes

    def validate(self):
        if not self.weights:
            return "weights is required (a local .pt file; nothing is downloaded)"
        if Path(self.weights).suffix != ".pt":
            return "weights must be a .pt file (run exported ONNX models with the 'dnn' detector)"
        return None


class UltralyticsDetector:
    """Wraps ``ultralytics.YOLO`` behind ``detect(image, frame) -> Detections``."""

    Params = UltralyticsParams
    needs_image = True

    def __init__(self, params: UltralyticsParams, sequence=None):
        self.params = params
        weights = Path(params.weights)
        if not weights.is_file():
            raise UserError(f"ultralytics: weights file {params.weights} not found (it is never downloaded)")
        try:
            from ultralytics import YOLO
        except ImportError:
            raise UserError("the 'ultralytics' detector needs the ultralytics package, which is not "
                            "installed (pip install ultralytics), or use the 'dnn' detector") from None
        try:
            self._model = YOLO(str(weights.resolve()))
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise UserError(f"ultralytics: cannot load {params.weights} ({type(exc).__name__}: {exc})") from None

    def detect(self, image: np.ndarray, frame: int) -> Detections:
        """Detects people in one image.

        Args:
            image: (H, W, 3) BGR uint8 (what ultralytics expects from numpy input).
            frame: 1-based frame number (unused).

        Returns:
            Detections, tlwh (N, 4) float32 0-based pixels, scores in [0, 1],
            ``extras["class_id"]`` (N,) int64.
        """
        p = self.params
        result = self._model.predict(image, imgsz=p.imgsz, conf=_or(p.min_score, 0.0), iou=_or(p.nms_iou, 1.0),
                                     classes=p.classes, device=p.device, verbose=False)[0]
        boxes = result.boxes
        xyxy = _numpy(boxes.xyxy).reshape(-1, 4).astype(np.float32)
        scores = _numpy(boxes.conf).reshape(-1).astype(np.float32)
        class_ids = _numpy(boxes.cls).reshape(-1).astype(np.int64)
        if p.classes is not None:
            keep = np.isin(class_ids, p.classes)
            xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
        dets = Detections(xyxy_to_tlwh(xyxy), scores, {"class_id": class_ids})
        return filter_detections(dets, p)


def _numpy(x) -> np.ndarray:
    """A torch tensor (any device) or an array as a numpy array."""
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


def _or(value: float | None, off: float) -> float:
    """The threshold, or the value that switches ultralytics' own filter off."""
    return off if value is None else value
