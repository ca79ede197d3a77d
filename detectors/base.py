"""What every detector shares: score threshold, minimum height and optional NMS on a frame's boxes."""

from __future__ import annotations

from dataclasses import dataclass


from mot.geometry import nms, tlwh_to_xyxy
from mot.types import Detections


@dataclass
class FilterParams:
    """Post-detection filtering; score ranges differ per detector, so thresholds are per detector."""

    min_score: float | None = None   # drop boxes scoring below (None keeps all)
    min_height: float = 0.0          # drop boxes lower than this many pixels
    nms_iou: float | None = None     # greedy NMS at this IoU (None: no NMS)


def filter_detections(dets: Detections, params: FilterParams) -> Detections:
    """Applies ``min_score``, ``min_height`` and NMS, in that order."""
    keep = dets.tlwh[:, 3] >= params.min_height
    if params.min_score is not None:
        keep &= dets.scores >= params.min_score
    dets = dets.select(keep)
    if params.nms_iou is not None and len(dets) > 1:
        dets = dets.select(nms(tlwh_to_xyxy(dets.tlwh), dets.scores, params.nms_iou))
    return dets
