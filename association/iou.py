"""The IoU baseline: cost 1 - IoU between a track's predicted box and a detection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mot.geometry import iou_matrix_tlwh
from mot.types import Detections


@dataclass
class IoUParams:
    min_iou: float = 0.3   # pairs overlapping less never link

    def validate(self):
        return None if 0 <= self.min_iou <= 1 else "min_iou must be in [0, 1]"


class IoUAssociation:
    """Costs from box overlap alone (SORT-style, without appearance)."""

    Params = IoUParams
    needs_image = False

    def __init__(self, params: IoUParams, **context):
        self.params = params
        self.max_cost = 1.0 - params.min_iou

    def cost(self, tracks: list, detections: Detections, frame: int, image=None) -> np.ndarray:
        """(T, D) float32 cost, 1 - IoU(predicted track box, detection box)."""
        predicted = np.array([t.predict(frame) for t in tracks], np.float32).reshape(-1, 4)
        return (1.0 - iou_matrix_tlwh(predicted, detections.tlwh)).astype(np.float32)
