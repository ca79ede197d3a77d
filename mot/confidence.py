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
and from how well its height fits its image row (:class:`RowHeights`: in a scene seen from one
height, a person's box height grows with the row of its feet, and clutter rarely follows that line);
``mot/training/confidence.py`` trains it on annotated sequences of several detectors.
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


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(a, b)`` minimising ``sum(w * (y - a - b * x) ** 2)``: the 2 x 2 normal equations, solved in
    closed form (half the cost of a least-squares solver on the row fit's 4,096 boxes); when every
    ``x`` is the same (no slope to fit), the minimum-norm solution."""
    sw, sx, sxx, sy, sxy = w.sum(), w @ x, w @ (x * x), w @ y, w @ (x * y)
    det = sw * sxx - sx * sx
    if det <= 1e-9 * sw * sxx:
        design = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
        return np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)[0]
    return np.array([(sxx * sy - sx * sxy) / det, (sw * sxy - sx * sy) / det])


class RowHeights:
    """Online fit of a person's box height to the image row of its feet, for one sequence.

    Seen from one camera height over flat ground, a standing person's box height is close to linear
    in the row of its bottom edge (zero at the horizon). The fit ``height = a + b * bottom`` is made
    on the confident boxes seen so far (the last ``memory`` of them), robustly (iteratively
    reweighted least squares with Cauchy weights on the log residual, ``scale`` wide), so the
    clutter among them pulls little. :meth:`misfit` says how far a box is from it: ``|log(height /
    fitted height)|``, NaN while fewer than ``min_boxes`` boxes were seen (a model reads NaN as
    unknown). Only geometry goes in, so it is the same for any detector's score scale.
    """

    ITERATIONS = 4

    def __init__(self, memory: int = 4096, min_boxes: int = 20, scale: float = 0.2):
        if memory < 2 or min_boxes < 2 or scale <= 0:
            raise ValueError("RowHeights needs memory >= 2, min_boxes >= 2 and scale > 0")
        self.memory, self.min_boxes, self.scale = int(memory), int(min_boxes), float(scale)
        self._boxes = np.zeros((0, 2))   # (bottom row, height)
        self._coef: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._boxes)

    def observe(self, tlwh: np.ndarray) -> None:
        """Adds confident (N, 4) tlwh boxes and refits."""
        tlwh = np.asarray(tlwh, np.float64).reshape(-1, 4)
        if not len(tlwh):
            return
        new = np.stack([tlwh[:, 1] + tlwh[:, 3], tlwh[:, 3]], axis=1)
        self._boxes = np.concatenate([self._boxes, new])[-self.memory:]
        self._coef = self._fit() if len(self._boxes) >= self.min_boxes else None

    def _fit(self) -> np.ndarray:
        bottom, height = self._boxes[:, 0], self._boxes[:, 1]
        weights = np.ones_like(bottom)
        for _ in range(self.ITERATIONS):
            coef = _weighted_line(bottom, height, weights)
            residual = np.log(height / np.maximum(coef[0] + coef[1] * bottom, 1.0))
            weights = 1.0 / (1.0 + (residual / self.scale) ** 2)
        return coef

    def misfit(self, tlwh: np.ndarray) -> np.ndarray:
        """(N,) float32 ``|log(height / fitted height)|`` of (N, 4) tlwh boxes (NaN before the fit)."""
        tlwh = np.asarray(tlwh, np.float64).reshape(-1, 4)
        if self._coef is None:
            return np.full(len(tlwh), np.nan, np.float32)
        fitted = np.maximum(self._coef[0] + self._coef[1] * (tlwh[:, 1] + tlwh[:, 3]), 1.0)
        return np.abs(np.log(np.maximum(tlwh[:, 3], 1.0) / fitted)).astype(np.float32)


class ConfidenceModel(BoosterModel):
    """P(a detection is a person) from its rank and its place in the sequence's score range so far,
    and from how far its height is from its row's (:class:`RowHeights`).

    The inputs are free of any change ``a * s + b`` (``a > 0``) of the score scale, so the model is
    too; it is trained with monotone constraints (never less confident for a higher rank or place,
    or for a box closer to its row's height). Detectors differ in where their boxes sit in the
    rank-place plane: one that piles its scores near its top has low ranks at high places, one that
    spreads them has the two close. The row says, per scene, which of the low-ranked boxes are
    shaped like the people there.
    """

    KIND = "confidence model"
    META_KEY = "siamese_mot_confidence"
    VERSION = 2
    FEATURES = ("rank", "position", "row_misfit")
    MONOTONE = (1, 1, -1)

    def confidence(self, inputs: np.ndarray) -> np.ndarray:
        """(N,) float32 P(person) of detections from their (N, 3) inputs (:class:`ConfidenceInputs`)."""
        return self.predict(inputs)


class ConfidenceInputs:
    """One sequence's online inputs of the :class:`ConfidenceModel`, frame after frame.

    Each frame's scores are observed before they are ranked, and its boxes ranked at least
    ``fit_rank`` join the row fit before any box is measured against it, so the tracker and the
    training (``mot/training/confidence.py``) see the same values.

    Args:
        ranks: the sequence's :class:`ScoreRanks` (the tracker shares it with its other users).
        fit_rank: boxes ranked at least this feed :class:`RowHeights`.
        rows: the row fit; None: no row fit, every misfit is NaN (unknown), for scenes whose people's
            heights do not follow their image row.
    """

    def __init__(self, ranks: ScoreRanks, fit_rank: float = 0.5, rows: RowHeights | None = None):
        self.ranks = ranks
        self.fit_rank = float(fit_rank)
        self.rows = rows

    @classmethod
    def from_config(cls, cfg, ranks: ScoreRanks | None = None) -> "ConfidenceInputs":
        """The inputs as a ``TrackerConfig`` sets them (a new :class:`ScoreRanks` unless given)."""
        return cls(ranks if ranks is not None else ScoreRanks(cfg.confidence_memory), cfg.row_fit_rank,
                   RowHeights(min_boxes=cfg.row_fit_min_boxes) if cfg.row_fit else None)

    def __call__(self, tlwh: np.ndarray, scores: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) float32 inputs of one frame's (N, 4) boxes and (N,) scores: rank, place in the
        score range and row misfit.

        Args:
            rank: the scores' ranks, when the caller already observed this frame's scores in
                ``ranks`` and ranked them (the tracker does); None: observed and ranked here.
        """
        tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
        if rank is None:
            self.ranks.observe(scores)
            rank = self.ranks.rank(scores)
        if self.rows is None:
            misfit = np.full(len(tlwh), np.nan, np.float32)
        else:
            self.rows.observe(tlwh[rank >= self.fit_rank])
            misfit = self.rows.misfit(tlwh)
        return np.stack([rank, self.ranks.position(scores), misfit], axis=1).astype(np.float32)
