"""Ground truth as detections, with optional jitter, drop-out and false alarms (upper-bound studies)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import FilterParams, filter_detections
from mot.errors import UserError
from mot.io import PEDESTRIAN, FrameIndex, read_ground_truth
from mot.sequence import Sequence
from mot.types import Detections


@dataclass
class OracleParams(FilterParams):
    jitter: float = 0.0           # std of box noise, as a fraction of the box width/height
    drop_rate: float = 0.0        # probability that a true box is missed
    false_alarms: float = 0.0     # mean number of false boxes per frame (Poisson)
    min_visibility: float = 0.0   # MOT17 visibility below which a person is not detected
    seed: int = 0

    def validate(self):
        if not 0 <= self.drop_rate <= 1:
            return "drop_rate must be in [0, 1]"
        if self.jitter < 0 or self.false_alarms < 0:
            return "jitter and false_alarms must be >= 0"
        return None


class GroundTruthDetector:
    """Detections taken from ``gt/gt.txt`` (pedestrians with the consider flag), optionally degraded.

    The noise is seeded per frame, so a frame's detections do not depend on which frames ran before.
    """

    Params = OracleParams
    needs_image = False

    def __init__(self, params: OracleParams, sequence: Sequence):
        if sequence.gt_path is None:
            raise UserError(f"{sequence.name}: the 'gt' detector needs gt/gt.txt, which this sequence lacks")
        self.params = params
        gt = read_ground_truth(sequence.gt_path)
        keep = gt.consider & (gt.visibility >= params.min_visibility)
        if gt.classes is not None:
            keep &= gt.classes == PEDESTRIAN
        self.frames = gt.frames[keep]
        self.tlwh = gt.tlwh[keep]
        self._index = FrameIndex(self.frames)
        w, h = sequence.info.im_width, sequence.info.im_height
        self.image_size = (w, h) if w and h else None

    def detect(self, image: np.ndarray | None, frame: int) -> Detections:
        p = self.params
        rng = np.random.default_rng([p.seed, frame])
        tlwh = self.tlwh[self._index.rows(frame)].copy()
        if p.drop_rate > 0:
            tlwh = tlwh[rng.random(len(tlwh)) >= p.drop_rate]
        if p.jitter > 0 and len(tlwh):
            wh = np.concatenate([tlwh[:, 2:], tlwh[:, 2:]], axis=1)
            tlwh = tlwh + rng.normal(0, p.jitter, tlwh.shape).astype(np.float32) * wh
            tlwh[:, 2:] = np.maximum(tlwh[:, 2:], 1)
        scores = np.ones(len(tlwh), np.float32)
        n_false = rng.poisson(p.false_alarms) if p.false_alarms > 0 else 0
        if n_false:
            fa = self._false_alarms(rng, n_false, image)
            tlwh = np.concatenate([tlwh, fa]).astype(np.float32)
            scores = np.concatenate([scores, rng.uniform(0.3, 0.9, n_false).astype(np.float32)])
        return filter_detections(Detections(tlwh, scores), p)

    def _false_alarms(self, rng, n, image) -> np.ndarray:
        if image is not None:
            w, h = image.shape[1], image.shape[0]
        elif self.image_size:
            w, h = self.image_size
        else:
            w, h = 1920, 1080
        heights = rng.uniform(0.1, 0.4, n) * h
        widths = heights * rng.uniform(0.35, 0.5, n)
        x = rng.uniform(0, np.maximum(w - widths, 1))
        y = rng.uniform(0, np.maximum(h - heights, 1))
        return np.stack([x, y, widths, heights], axis=1)
