"""Typed data passed between stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mot.geometry import xyxy_to_tlwh


@dataclass(frozen=True)
class Detections:
    """The detections of one frame.

    Attributes:
        tlwh: (N, 4) float32 boxes, top-left x, y, width, height in 0-based pixels.
        scores: (N,) float32 detector scores (their range depends on the detector).
        extras: optional per-detection arrays of length N (for example ``embeddings``).
    """

    tlwh: np.ndarray
    scores: np.ndarray
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        tlwh = np.asarray(self.tlwh, dtype=np.float32)
        if tlwh.size == 0:
            tlwh = tlwh.reshape(0, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if tlwh.ndim != 2 or tlwh.shape[1] != 4:
            raise ValueError(f"Detections.tlwh must be (N, 4), got {tlwh.shape}")
        if scores.shape[0] != tlwh.shape[0]:
            raise ValueError(f"Detections.scores has {scores.shape[0]} entries for {tlwh.shape[0]} boxes")
        for name, arr in self.extras.items():
            if len(arr) != tlwh.shape[0]:
                raise ValueError(f"Detections.extras[{name!r}] has {len(arr)} rows for {tlwh.shape[0]} boxes")
        object.__setattr__(self, "tlwh", tlwh)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return self.tlwh.shape[0]

    @classmethod
    def from_xyxy(cls, xyxy, scores) -> "Detections":
        """Detections from (N, 4) x1, y1, x2, y2 boxes (0-based pixels) and (N,) scores, as most
        detectors give them."""
        return cls(xyxy_to_tlwh(xyxy), scores)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def select(self, mask_or_index) -> "Detections":
        """Returns the subset given by a boolean mask or an index array (extras follow)."""
        return Detections(self.tlwh[mask_or_index], self.scores[mask_or_index],
                          {k: np.asarray(v)[mask_or_index] for k, v in self.extras.items()})

    def with_extras(self, **extras) -> "Detections":
        return Detections(self.tlwh, self.scores, {**self.extras, **extras})
