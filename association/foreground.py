"""Which pixels of a person's patch are that person: a small foreground-map network.

A patch cut at a box holds the person and whatever else the box covers: background, and in a crowd
other people. :class:`ForegroundNet` maps a normalised LUV patch to per-pixel logits, at half the
patch's resolution, of belonging to the person the box is centred on (others count as background).
It is trained on pedestrian instance masks (Penn-Fudan; MOTS on MOT17-05 and MOT17-09). A
:class:`association.siamese.SiameseNet` built with ``foreground_floor`` adds a second colour layer
whose votes are weighted by this map: the person's colours without the background, which one frame
later is the same and helps, but after 30 frames has changed and misleads. The shipped weights
carry a map and use it from two frames on (since 5 December 2026; docs/appearance.md, "Shipped: the
foreground map from two frames on"; its trials in docs/appearance-last-cell.md).
:class:`ForegroundByGap` gives the weighted colours their share by the frames between two boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ForegroundNet(nn.Module):
    """(B, 3, H, W) normalised LUV -> (B, H/2, W/2) logits of the centred person (45k parameters).

    An encoder down to stride 8 with a whole-patch context vector (which person is the centred one
    depends on all of it), decoded with 1x1 convolutions at stride 4 and upsampled to stride 2, the
    resolution :class:`association.siamese.SoftHistogram` votes at. About 7 ms for 50 patches of
    64x32 on one CPU thread; a U-Net decoding to stride 2 (128k parameters) cost 37-63 ms and
    scored the same on the appearance benchmark (docs/appearance-last-cell.md, session 22).
    """

    def __init__(self):
        super().__init__()
        self.e1 = _cbr(3, 16, 2)
        self.e2 = _cbr(16, 32, 2)
        self.e3 = nn.Sequential(_cbr(32, 48, 2), _cbr(48, 48))
        self.g = nn.Linear(48, 48)
        self.d = nn.Sequential(nn.Conv2d(48 + 32, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(32, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.e2(self.e1(x))
        c = self.e3(b)
        c = c + self.g(c.mean((2, 3)))[:, :, None, None]
        u = F.interpolate(c, size=b.shape[2:], mode="bilinear", align_corners=False)
        y = self.out(self.d(torch.cat([u, b], 1)))
        return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)[:, 0]


@dataclass(frozen=True)
class ForegroundByGap:
    """The foreground-weighted colours' share of the colour distance by frame gap.

    Weights with a foreground map embed ``[sqrt(s) * [sqrt(1 - a0) * plain, sqrt(a0) * weighted],
    sqrt(1 - s) * cnn]`` (each part of unit length; ``SiameseNet.colour``), so the cosine distance of
    two embeddings is ``1 - (s (1 - a0) p.p' + s a0 w.w' + (1 - s) c.c')``. Here a pair is compared
    at the share ``a`` of its gap instead of ``a0``: 0 at one frame keeps the plain colours, whose
    background is still the same one frame later, and the person's own colours count once it has
    changed (docs/appearance-last-cell.md, "A foreground map").

    Attributes:
        gaps: (K,) float64 increasing frame gaps of the table; shares: (K,) float64 the weighted
            colours' share there (interpolated in log gap, the nearest end's outside).
        trained: ``a0``, the share the embeddings carry (in (0, 1)).
        hist_dim: one colour layer's width (the embeddings' first ``2 * hist_dim`` columns are the
            plain and the weighted layers).
    """

    gaps: np.ndarray
    shares: np.ndarray
    trained: float
    hist_dim: int

    @classmethod
    def from_table(cls, table: dict, trained: float, hist_dim: int) -> "ForegroundByGap":
        """From ``{gap: share}`` (checked like a crowd share's table; raises ``ValueError``)."""
        from association.crowd import check_table, sorted_table

        problem = check_table(table, "foreground_share", "foreground shares") or (
            None if table else "foreground_share is empty")
        if problem:
            raise ValueError(problem)
        if not 0 < trained < 1 or hist_dim < 1:
            raise ValueError(f"foreground_share needs weights with a foreground layer, got a trained share "
                             f"{trained:g} and a colour layer of {hist_dim}")
        return cls(*sorted_table(table), float(trained), int(hist_dim))

    def distances(self, gallery: np.ndarray, gaps: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """Cosine distances of gallery rows to detections, each pair at its gap's share.

        Args:
            gallery: (G, E) float32 unit embeddings, each seen ``gaps`` (G,) frames before the
                detections; emb: (D, E) float32 unit embeddings of the detections.

        Returns:
            (G, D) float32 ``1 - (s (1 - a) p.p' + s a w.w' + (1 - s) c.c')``, ``a`` the row's share.
        """
        from association.crowd import share_at

        k = self.hist_dim
        plain = gallery[:, :k] @ emb[:, :k].T
        weighted = gallery[:, k:2 * k] @ emb[:, k:2 * k].T
        rest = gallery[:, 2 * k:] @ emb[:, 2 * k:].T
        w_plain, w_weighted = self._weights(share_at(gaps, self.gaps, self.shares)[:, None])
        return (1.0 - plain * w_plain - weighted * w_weighted - rest).astype(np.float32)

    def _weights(self, a):
        """The plain and the weighted colours' dot products' factors at share ``a`` (1 at the trained one)."""
        return (1 - a) / (1 - self.trained), a / self.trained

    def at_gap(self, emb: np.ndarray, gap: int) -> np.ndarray:
        """(M, E) float32 unit embeddings as compared at ``gap``: the plain and the weighted colour
        columns rescaled to that gap's share, so the rows stay of unit length and their dot products
        are ``1 -`` :meth:`distances` at that gap (for benchmarks that compare whole embeddings)."""
        from association.crowd import share_at

        w_plain, w_weighted = self._weights(float(share_at([gap], self.gaps, self.shares)[0]))
        k = self.hist_dim
        out = np.array(emb, np.float32)
        out[:, :k] *= np.sqrt(w_plain)
        out[:, k:2 * k] *= np.sqrt(w_weighted)
        return out
