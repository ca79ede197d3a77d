"""Detector-agnostic confidence: a raw detection score's rank among the scores seen so far.

Detectors score on unrelated scales (2DMOT2015's ACF margins run about -1 to 130, Faster R-CNN and
YOLOX probabilities pile up just below 1), so no fixed score threshold means the same for two of
them. The rank of a score among all scores the sequence has produced so far does: 0.5 is the
sequence's median detection whatever the detector. :class:`ScoreRanks` keeps a sorted sample of
the scores (bounded memory) and maps scores to mid-ranks in [0, 1]; any strictly increasing change
of the score scale (``x * 50``, ``log x`` ...) leaves every rank unchanged.

Warm-up: a frame's scores are observed before that frame is ranked, so the first frame's
detections are ranked among themselves, and the scale settles as the sequence goes on.
"""

from __future__ import annotations

import numpy as np


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

    def rank_one(self, score: float) -> float:
        """The rank of one raw score (see :meth:`rank`)."""
        return float(self.rank(np.array([score], np.float32))[0])
