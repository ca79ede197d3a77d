"""Detector-agnostic confidence: a raw detection score's rank among the scores seen so far.

Detectors score on unrelated scales (2DMOT2015's ACF margins run about -1 to 130, Faster R-CNN and
YOLOX probabilities pile up just below 1), so no fixed score threshold means the same for two of
them. The rank of a score among all scores the sequence has produced so far does: 0.5 is the
sequence's median detection whatever the detector. :class:`ScoreRanks` keeps a sorted sample of
the scores (bounded memory) and maps scores to mid-ranks in [0, 1]; any strictly increasing change
of the score scale (``x * 50``, ``log x`` ...) leaves every rank unchanged.

Warm-up: a frame's scores are observed before that frame is ranked, so the first frame's
detections are ranked among themselves, and the scale settles as the sequence goes on.

A rank still assumes a share of the detections is false. :class:`TrackedPrecision` recalibrates
the ranks per sequence by the tracker's own outcome (which ranks the confirmed tracks cover), so a
clean detector's low ranks become confident and a noisy one's stay low. :class:`ConfidenceModel`
learns the chance that a detection is a person from its rank and its place in the score range
(``mot/training/confidence.py`` trains it on annotated sequences of several detectors).
"""

from __future__ import annotations

import numpy as np

from association.matcher import BoosterModel


class ScoreRanks:
    """Online score -> rank mapping for one sequence.

    Args:
        memory: the most scores kept. Past it every second one of the sorted sample is dropped,
            which keeps the ranks to within one in ``memory / 2``, on any sequence length.
    """

    def __init__(self, memory: int = 1 << 16):
        if memory < 2:
            raise ValueError("memory must be >= 2")
        self.memory = int(memory)
        self._sorted = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return len(self._sorted)

    def observe(self, scores: np.ndarray) -> None:
        """Adds a frame's raw scores ((N,) any float) to the sample."""
        new = np.sort(np.asarray(scores, np.float32).reshape(-1))
        if not len(new):
            return
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)
        if len(self._sorted) > self.memory:
            self._sorted = self._sorted[::2].copy()

    def rank(self, scores) -> np.ndarray:
        """(N,) float32 mid-ranks in [0, 1] of raw scores among those observed: 0 below all of them,
        ties counted half, and 1 for a score at or above the highest seen (so a detector that gives
        every box the same score, or one box in the first frame, is fully confident, not half).
        Before any score was observed every rank is 1 (nothing to be less confident than)."""
        values = np.asarray(scores, np.float64).reshape(-1)   # compared exactly with the float32 sample
        if not len(self._sorted):
            return np.ones(len(values), np.float32)
        below = np.searchsorted(self._sorted, values, "left") + np.searchsorted(self._sorted, values, "right")
        ranks = below / (2.0 * len(self._sorted))
        ranks[values >= self._sorted[-1]] = 1.0
        return ranks.astype(np.float32)

    def position(self, scores) -> np.ndarray:
        """(N,) float32 positions of raw scores in the range of those observed, in [0, 1]:
        ``(s - lowest) / (highest - lowest)``, clipped (1 when every observed score is equal, or
        before any was observed). Any change ``a * s + b`` with ``a > 0`` leaves it unchanged."""
        values = np.asarray(scores, np.float64).reshape(-1)
        if not len(self._sorted) or self._sorted[-1] <= self._sorted[0]:
            return np.ones(len(values), np.float32)
        lo, hi = float(self._sorted[0]), float(self._sorted[-1])
        return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    def rank_one(self, score: float) -> float:
        """The rank of one raw score (see :meth:`rank`)."""
        return float(self.rank(np.array([score], np.float32))[0])


class TrackedPrecision:
    """Per-sequence calibration of the ranks by the tracker's own outcome.

    A rank says how a score compares with the sequence's other scores, not whether the detection is
    a person: a clean detector's lowest-ranked tenth are still people, a noisy one's are clutter.
    The tracker finds out as it goes. After every frame each detection (kept or dropped) is labelled
    *supported* if it overlaps a confirmed track's box of that frame, and counted in its rank's bin
    (``bins`` equal bins of [0, 1]). A rank's confidence is then the share of supported detections
    in its bin, pulled towards the rank itself by ``prior`` pseudo-detections (so an unseen sequence
    starts exactly as with plain ranks), made non-decreasing over the bins and interpolated between
    the bin centres. Any increasing change of the score scale still changes nothing: only ranks go
    in. Memory is two arrays of ``bins`` counts.
    """

    def __init__(self, bins: int = 10, prior: float = 50.0):
        if bins < 2 or prior <= 0:
            raise ValueError("TrackedPrecision needs bins >= 2 and prior > 0")
        self.centres = (np.arange(bins) + 0.5) / bins
        self.counts = np.zeros(bins)
        self.supported = np.zeros(bins)
        self.prior = float(prior)

    def observe(self, ranks: np.ndarray, supported: np.ndarray) -> None:
        """Counts one frame's detections: (N,) ranks and (N,) bool whether each was supported."""
        ranks = np.asarray(ranks, np.float64).reshape(-1)
        if not len(ranks):
            return
        bins = np.minimum((ranks * len(self.centres)).astype(np.int64), len(self.centres) - 1)
        np.add.at(self.counts, bins, 1.0)
        np.add.at(self.supported, bins, np.asarray(supported, np.float64).reshape(-1))

    def confidence(self, ranks: np.ndarray) -> np.ndarray:
        """(N,) float32 calibrated confidences in [0, 1] of (N,) ranks."""
        share = (self.supported + self.prior * self.centres) / (self.counts + self.prior)
        share = np.maximum.accumulate(share)
        return np.interp(np.asarray(ranks, np.float64).reshape(-1), self.centres, share).astype(np.float32)


class ConfidenceModel(BoosterModel):
    """P(a detection is a person) from its rank and its place in the sequence's score range so far.

    Both inputs are free of any change ``a * s + b`` (``a > 0``) of the score scale, so the model is
    too; it is trained with monotone constraints (never less confident for a higher rank or
    place). Detectors differ in where their boxes sit in that plane: one that piles its scores near
    its top has low ranks at high places, one that spreads them has the two close.
    """

    KIND = "confidence model"
    META_KEY = "siamese_mot_confidence"
    VERSION = 1
    FEATURES = ("rank", "position")
    MONOTONE = (1, 1)

    def confidence(self, ranks: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(N,) float32 P(person) of detections from their (N,) ranks and (N,) places in the score
        range (``ScoreRanks.rank`` and ``ScoreRanks.position``)."""
        return self.predict(np.stack([ranks, positions], axis=1))
