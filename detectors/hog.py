"""OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005); needs OpenCV 4.x, runs offline."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors.base import FilterParams, filter_detections
from mot.errors import UserError
from mot.geometry import cxcywh_to_tlwh, tlwh_to_cxcywh
from mot.types import Detections


@dataclass
class HogParams(FilterParams):
    """HOG settings. ``min_score`` is on the SVM margin (0 is the decision boundary)."""

    min_score: float | None = 0.5    # SVM margin a box must reach (after the search's own hit_threshold)
    nms_iou: float | None = 0.3      # HOG fires many times per person: NMS is needed
    upscale: float = 1.0             # resize factor before the search; people under ~128 px need > 1
    win_stride: int = 8              # window step in pixels (of the upscaled image); 4 finds more, 4x cost
    padding: int = 8                 # pixels added around the image for the search
    scale: float = 1.05              # pyramid step between scales; 1.1 is about twice as fast
    hit_threshold: float = 0.0       # SVM margin below which the search drops a window
    box_width: float = 0.5           # fraction of the 64x128 window's width that is the person
    box_height: float = 0.75         # ... and of its height (a 32x96 person in a 64x128 window)

    def validate(self):
        if self.upscale <= 0:
            return "upscale must be > 0"
        if self.win_stride < 1 or self.padding < 0:
            return "win_stride must be >= 1 and padding >= 0"
        if self.scale <= 1:
            return "scale must be > 1"
        if not (0 < self.box_width <= 1 and 0 < self.box_height <= 1):
            return "box_width and box_height must be in (0, 1]"
        return None


class HogDetector:
    """People detector from OpenCV's default HOG SVM (64x128 window, trained on INRIA persons).

    Raw windows are scored by their SVM margin, shrunk from the window to the person inside it
    (``box_width``, ``box_height``, centred), then filtered by ``min_score``, ``min_height`` and NMS.
    """

    Params = HogParams
    needs_image = True

    def __init__(self, params: HogParams, sequence=None):
        if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise UserError(f"the 'hog' detector needs OpenCV 4.x with the HOG people detector "
                            f"(found OpenCV {cv2.__version__})")
        self.params = params
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: np.ndarray, frame: int) -> Detections:
        """Finds people in one image.

        Args:
            image: (H, W, 3) BGR uint8.
            frame: 1-based frame number (unused: HOG needs only the image).

        Returns:
            Detections with tlwh (N, 4) float32 in the image's 0-based pixels, scores = SVM margins.
        """
        p = self.params
        if image is None:
            raise ValueError("the hog detector needs the image")
        work = image
        if p.upscale != 1.0:
            work = cv2.resize(image, None, fx=p.upscale, fy=p.upscale, interpolation=cv2.INTER_LINEAR)
        if work.shape[0] < 128 or work.shape[1] < 64:
            return Detections.empty()
        rects, weights = self._hog.detectMultiScale(
            work, hitThreshold=p.hit_threshold, winStride=(p.win_stride, p.win_stride),
            padding=(p.padding, p.padding), scale=p.scale, groupThreshold=0)
        tlwh = np.asarray(rects, np.float32).reshape(-1, 4) / np.float32(p.upscale)
        scores = np.asarray(weights, np.float32).reshape(-1)
        if len(tlwh):
            box = tlwh_to_cxcywh(tlwh)
            box[:, 2] *= p.box_width
            box[:, 3] *= p.box_height
            tlwh = cxcywh_to_tlwh(box)
        return filter_detections(Detections(tlwh, scores), p)
