"""Any detection network OpenCV's ``dnn`` module reads (ONNX, TensorFlow frozen graph, Caffe ...).

The model file is the user's, or one shipped in ``mot/weights`` (YOLOX-nano, ``configs/yolox.yaml``);
nothing is downloaded. Preprocessing (input size, scale, mean, channel order, stretch or letterbox
resize) and the output layout are set in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from detectors.base import FilterParams, filter_detections
from detectors.dnn_decode import decode
from mot.errors import UserError
from mot.geometry import xyxy_to_tlwh
from mot.types import Detections


@dataclass
class DnnParams(FilterParams):
    """The model, its preprocessing and its output layout.

    The input blob is ``(image - mean) * scale`` after resizing, channels BGR unless ``swap_rb``.
    """

    model: str = ""                  # .onnx, .pb, ... (a path; a bare name not in the working folder: mot/weights)
    config: str | None = None        # the text graph some frameworks need (.pbtxt, .prototxt)
    layout: Literal["ssd", "yolo5", "yolo8", "yolox"] = "ssd"  # output tensor layout (detectors/dnn_decode.py)
    strides: list[int] = field(default_factory=lambda: [8, 16, 32])  # yolox: the output grids' strides
    input_width: int = 300
    input_height: int = 300
    scale: float = 1.0 / 255.0
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # per channel, in blob order
    swap_rb: bool = True             # most models are trained on RGB
    resize: Literal["stretch", "letterbox"] = "stretch"  # letterbox keeps the aspect ratio (YOLO)
    pad_value: int = 114             # letterbox border grey level
    letterbox_align: Literal["center", "top_left"] = "center"  # YOLOv5/v8 centre the image, YOLOX top-left
    normalized: bool | None = None   # coordinates are fractions of the input (None: ssd yes, yolo no)
    classes: list[int] | None = None  # class ids kept as people (COCO: 0 in YOLO, 1 in TF SSD); None: all
    output: str | None = None        # output layer name (None: the network's default output)
    clip: bool = True                # clip boxes to the image (false: as published det.txt files, e.g. det_yolox.txt)
    min_score: float | None = 0.3
    nms_iou: float | None = 0.45     # YOLO outputs are not suppressed inside the model

    def validate(self):
        if not self.model:
            return "model is required (a file OpenCV dnn reads: .onnx, .pb, .caffemodel ...)"
        if self.input_width < 1 or self.input_height < 1:
            return "input_width and input_height must be >= 1"
        if len(self.mean) != 3:
            return "mean must have 3 values"
        if self.layout == "yolox":
            if not self.strides or min(self.strides) < 1:
                return "strides must be positive"
            bad = [s for s in self.strides if self.input_width % s or self.input_height % s]
            if bad:
                return f"yolox: input_width and input_height must be multiples of every stride ({bad[0]})"
        return None


class DnnDetector:
    """Runs a detection network through ``cv2.dnn`` on the CPU and decodes its boxes."""

    Params = DnnParams
    needs_image = True

    def __init__(self, params: DnnParams, sequence=None):
        self.params = params
        model = resolve_model(params.model)
        if not model.is_file():
            raise UserError(f"dnn: model file {params.model} not found"
                            + (f" (nor in {model.parent})" if model != Path(params.model) else ""))
        if params.config is not None and not Path(params.config).is_file():
            raise UserError(f"dnn: model config file {params.config} not found")
        try:
            self._net = cv2.dnn.readNet(str(model), params.config or "")
        except cv2.error as exc:
            raise UserError(f"dnn: OpenCV cannot read {model} ({_short_message(exc)})") from None
        if self._net.empty():
            raise UserError(f"dnn: OpenCV read an empty network from {model}")
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def detect(self, image: np.ndarray, frame: int) -> Detections:
        """Detects people in one image.

        Args:
            image: (H, W, 3) BGR uint8.
            frame: 1-based frame number (unused).

        Returns:
            Detections, tlwh (N, 4) float32 in the image's 0-based pixels, scores as the model gives
            them (SSD confidence; YOLO objectness x class score, or the class score for ``yolo8``);
            ``extras["class_id"]`` (N,) int64.
        """
        if image is None:
            raise ValueError("the dnn detector needs the image")
        p = self.params
        blob, ratio, offset = self._blob(image)
        self._net.setInput(blob)
        try:
            out = self._net.forward(p.output) if p.output else self._net.forward()
        except cv2.error as exc:
            raise UserError(f"dnn: {p.model} failed on a {blob.shape} input ({_short_message(exc)})") from None
        xyxy, scores, class_ids = decode(out, p.layout, (p.input_width, p.input_height), p.normalized, p.classes,
                                         tuple(p.strides))
        xyxy = (xyxy - np.array([*offset, *offset], np.float32)) / np.array([*ratio, *ratio], np.float32)
        if p.clip:
            h, w = image.shape[:2]
            xyxy = np.clip(xyxy, 0, np.array([w, h, w, h], np.float32))
        tlwh = xyxy_to_tlwh(xyxy)
        keep = (tlwh[:, 2] > 0) & (tlwh[:, 3] > 0)
        dets = Detections(tlwh[keep], scores[keep], {"class_id": class_ids[keep]})
        return filter_detections(dets, p)

    def _blob(self, image: np.ndarray):
        """The input blob (1, 3, input_height, input_width) float32, the (x, y) resize ratios and the
        (x, y) offset of the image inside the input (letterbox border)."""
        p = self.params
        h, w = image.shape[:2]
        size = (p.input_width, p.input_height)
        if p.resize == "stretch":
            ratio, offset, src = (p.input_width / w, p.input_height / h), (0.0, 0.0), image
        else:
            src, ratio, offset = letterbox(image, size, p.pad_value, p.letterbox_align)
        blob = cv2.dnn.blobFromImage(src, scalefactor=p.scale, size=size, mean=tuple(p.mean),
                                     swapRB=p.swap_rb, crop=False)
        return blob, ratio, offset


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int, align: str = "center"):
    """Resizes ``image`` keeping its aspect ratio into a ``size`` (width, height) canvas of ``pad_value``.

    As the YOLO references do: scale factor ``r = min(width / W, height / H)``, resized size rounded,
    placed at the centre (YOLOv5/v8) or the top-left (YOLOX), and boxes mapped back by ``r`` alone.

    Args:
        image: (H, W, 3) uint8.
        size: the canvas (width, height).
        pad_value: the border's grey level.
        align: ``center`` or ``top_left``.

    Returns:
        The (height, width, 3) uint8 canvas, the (x, y) scale factors (both ``r``) and the (x, y)
        offset of the image in the canvas: ``canvas pixel = image pixel * r + offset``.
    """
    h, w = image.shape[:2]
    r = min(size[0] / w, size[1] / h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    dx, dy = (0, 0) if align == "top_left" else ((size[0] - nw) // 2, (size[1] - nh) // 2)
    canvas = np.full((size[1], size[0], 3), pad_value, np.uint8)
    canvas[dy:dy + nh, dx:dx + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, (r, r), (float(dx), float(dy))


def resolve_model(name: str) -> Path:
    """A path as given; a bare file name not in the working folder means a file shipped in ``mot/weights``."""
    from mot.weights import resolve  # the one rule for shipped files
    return resolve(name)


def _short_message(exc: Exception) -> str:
    """OpenCV's error text on one line, without its source-file prefix."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text.split("error: ", 1)[-1] or type(exc).__name__
