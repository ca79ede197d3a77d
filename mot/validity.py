"""Learned track validity: is a track a real person? Decided once per track, from its evidence.

A track's evidence (:func:`evidence`) is a fixed list of named numbers the track manager keeps
anyway: its detections' confidence ranks, length and hits, how well its motion was predicted, how
steady its height is, and how its size fits its image row compared with the sequence's confident
detections. An XGBoost classifier (``mot/training/validity.py`` trains it) gives P(real); the track
manager asks it once per track, ``validity_frames`` frames after its birth (or when it ends), and
holds the track's rows until then: a rejected track is never output, an accepted one streams on.

The model is XGBoost's own JSON with our metadata (feature names and order, format version) as a
model attribute, checked on load like the matcher's (``association/matcher.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from association.matcher import BoosterModel

FORMAT_VERSION = 1
_META_KEY = "siamese_mot_validity"

#: The evidence, in the model's column order.
FEATURES = ("rank_median", "rank_mean", "rank_min", "rank_max", "rank_now", "hits", "frames", "hit_ratio",
            "motion_error", "height_change", "size_row")


@dataclass
class TrackEvidence:
    """What the track manager accumulates per track for the validity model (``track.evidence``).

    Attributes:
        motion_errors: per matched detection after the first, the distance between the predicted
            and the detected centre, in box heights.
        heights: per matched detection, its box height in pixels.
        size_rows: per matched detection, log(height / bottom row) (people further away are higher
            in the image and smaller).
    """

    motion_errors: list = field(default_factory=list)
    heights: list = field(default_factory=list)
    size_rows: list = field(default_factory=list)

    def add(self, predicted_tlwh: np.ndarray | None, tlwh: np.ndarray) -> None:
        """Records a matched detection ((4,) tlwh) and the track's predicted box for it (None at birth)."""
        h = max(float(tlwh[3]), 1.0)
        if predicted_tlwh is not None:
            dc = (tlwh[:2] + tlwh[2:] / 2) - (predicted_tlwh[:2] + predicted_tlwh[2:] / 2)
            self.motion_errors.append(float(np.hypot(*dc)) / max(float(predicted_tlwh[3]), 1.0))
        self.heights.append(h)
        self.size_rows.append(size_row(tlwh))


def size_row(tlwh: np.ndarray) -> float | np.ndarray:
    """log(height / bottom row) of (4,) or (N, 4) tlwh boxes."""
    tlwh = np.asarray(tlwh, np.float64)
    return np.log(np.maximum(tlwh[..., 3], 1.0) / np.maximum(tlwh[..., 1] + tlwh[..., 3], 1.0))


def evidence(track, confidence, size_ranks) -> np.ndarray:
    """(F,) float32 the track's evidence in :data:`FEATURES` order (NaN where undefined).

    Args:
        track: a ``mot.tracker.Track`` with its ``evidence``.
        confidence: the sequence's ``ScoreRanks`` of detection scores.
        size_ranks: the sequence's ``ScoreRanks`` of :func:`size_row` of its confident detections.
    """
    ranks = np.asarray(track.ranks, np.float64)
    ev = track.evidence
    frames = track.last_detected - track.start_frame + 1
    motion = float(np.median(ev.motion_errors)) if ev.motion_errors else np.nan
    heights = np.asarray(ev.heights, np.float64)
    height_change = float(np.median(np.abs(np.diff(np.log(heights))))) if len(heights) > 1 else np.nan
    row = abs(size_ranks.rank_one(float(np.median(ev.size_rows))) - 0.5) * 2 if len(size_ranks) else np.nan
    values = [np.median(ranks), ranks.mean(), ranks.min(), ranks.max(),
              confidence.rank_one(float(np.median(track.scores))), track.hits, frames, track.hits / frames,
              motion, height_change, row]
    return np.asarray(values, np.float32)


class ValidityModel(BoosterModel):
    """A trained track classifier: P(real) from a track's :func:`evidence`."""

    KIND = "validity model"
    META_KEY = _META_KEY
    VERSION = FORMAT_VERSION
    FEATURES = FEATURES


class TrackValidity:
    """The track manager's validity stage: accepts or rejects a track from its evidence.

    Args:
        model: a :class:`ValidityModel` (None: accept every track; used to record evidence).
        min_prob: tracks less likely real than this are rejected.
        frames: the decision is taken this many frames after the track's birth (or when it ends).
    """

    def __init__(self, model: ValidityModel | None, min_prob: float = 0.5, frames: int = 10):
        self.model = model
        self.min_prob = min_prob
        self.frames = frames

    def accept(self, track, confidence, size_ranks) -> bool:
        if self.model is None:
            return True
        return bool(self.model.predict(evidence(track, confidence, size_ranks)[None])[0] >= self.min_prob)


def build_validity(cfg) -> TrackValidity | None:
    """The validity stage of a ``TrackerConfig``, or None when ``validity`` is off."""
    if not cfg.validity:
        return None
    from mot.weights import resolve
    return TrackValidity(ValidityModel.load(resolve(cfg.validity_model)), cfg.validity_min_prob,
                         cfg.validity_frames)
