"""How two Siamese embeddings are compared by the frames between them.

Weights with a colour layer embed ``[sqrt(s0) * colour, sqrt(1 - s0) * cnn]`` and, with a foreground
map, ``colour = [sqrt(1 - a0) * plain, sqrt(a0) * weighted]`` (each layer of unit length;
``association.siamese.SiameseNet``), so the cosine similarity of two embeddings is
``s0 ((1 - a0) p.p' + a0 w.w') + (1 - s0) c.c'``. :class:`SharesByGap` compares a pair at the shares
``s`` and ``a`` of its gap instead of the trained ``s0`` and ``a0``:

- the foreground colours' share ``a`` (``appearance.foreground_share``): 0 at one frame keeps the plain
  colours, whose background is still the same one frame later; the person's own colours count once
  it has changed (docs/appearance-last-cell.md, "A foreground map");
- the colour layer's share ``s`` (``appearance.hist_share_by_gap``): colour alone at one frame
  (``{1: 1, 2: 0.5}``) wins every one-frame rank-1 cell of the appearance benchmark, and the CNN
  counts from two frames on (docs/appearance-last-cell.md, "The moving average at its age").

Both are ``{gap: share}`` tables, interpolated in log gap (``association.crowd.share_at``), from the
config or the weights' metadata (the shipped weights carry both: colour ``{1: 1, 2: 0.5}``,
foreground ``{1: 0, 2: 0.5}``). A gap need not be whole: the tracker compares a track's moving
average at the mean age of what it holds (``association.learned.AppearanceGallery.ema_age``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GapTable:
    """A share by frame gap and the share the embeddings carry.

    Attributes:
        gaps: (K,) float64 increasing frame gaps; shares: (K,) float64 the share there (interpolated
            in log gap, the nearest end's outside); trained: the share embedded, in (0, 1).
    """

    gaps: np.ndarray
    shares: np.ndarray
    trained: float

    @classmethod
    def from_table(cls, table: dict, trained: float, name: str) -> "GapTable":
        """From ``{gap: share}``, checked as :func:`association.crowd.check_table` (raises ``ValueError``
        naming the setting ``name``)."""
        from association.crowd import check_table, sorted_table

        problem = check_table(table, name, "shares") or (None if table else f"{name} is empty")
        if problem:
            raise ValueError(problem)
        if not 0 < trained < 1:
            raise ValueError(f"{name} needs weights whose layer has a share in (0, 1), got {trained:g}")
        return cls(*sorted_table(table), float(trained))

    def at(self, gaps) -> np.ndarray:
        """(N,) float64 the share at each of ``gaps``."""
        from association.crowd import share_at
        return share_at(gaps, self.gaps, self.shares)


@dataclass(frozen=True)
class SharesByGap:
    """The colour layer's and the foreground colours' shares of the distance by frame gap.

    Attributes:
        hist_dim: one colour layer's width: the embeddings start with the plain colour layer, then
            (with a foreground map) the weighted one, then the CNN part.
        colour: the colour layer's share ``s`` by gap, or None (``s0`` at every gap).
        foreground: the foreground colours' share ``a`` by gap, or None (no such layer, or ``a0`` at
            every gap).
        weighted: whether the embeddings hold the weighted colour layer.
    """

    hist_dim: int
    colour: GapTable | None = None
    foreground: GapTable | None = None
    weighted: bool = False

    def __post_init__(self):
        if self.foreground is not None and not self.weighted:
            raise ValueError("foreground_share needs weights with a foreground layer")

    def _factors(self, gaps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) factors of the plain colours', the weighted colours' and the CNN's dot products at each
        gap (all 1 at the trained shares)."""
        n = len(gaps)
        colour, cnn = np.ones(n), np.ones(n)
        if self.colour is not None:
            s, s0 = self.colour.at(gaps), self.colour.trained
            colour, cnn = s / s0, (1 - s) / (1 - s0)
        plain, weighted = colour, colour
        if self.foreground is not None:
            a, a0 = self.foreground.at(gaps), self.foreground.trained
            plain, weighted = colour * (1 - a) / (1 - a0), colour * a / a0
        return plain, weighted, cnn

    def _parts(self) -> tuple[slice, slice, slice]:
        k = self.hist_dim
        end = 2 * k if self.weighted else k
        return slice(0, k), slice(k, end), slice(end, None)

    def distances(self, gallery: np.ndarray, gaps: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """Cosine distances of gallery rows to detections, each pair at its gap's shares.

        Args:
            gallery: (G, E) float32 unit embeddings, each seen ``gaps`` (G,) frames before the
                detections; emb: (D, E) float32 unit embeddings of the detections.

        Returns:
            (G, D) float32 ``1 - (s ((1 - a) p.p' + a w.w') + (1 - s) c.c')``, ``s`` and ``a`` the
            row's shares.
        """
        out = np.ones((len(gallery), len(emb)), np.float64)
        for part, factor in zip(self._parts(), self._factors(np.asarray(gaps))):
            if part.stop != part.start:
                out -= (gallery[:, part] @ emb[:, part].T) * factor[:, None]
        return out.astype(np.float32)

    def at_gap(self, emb: np.ndarray, gap: int) -> np.ndarray:
        """(M, E) float32 unit embeddings as compared at ``gap``: each part rescaled to that gap's
        shares, so the rows stay of unit length and their dot products are ``1 -`` :meth:`distances`
        at that gap (for benchmarks that compare whole embeddings)."""
        out = np.array(emb, np.float32)
        for part, factor in zip(self._parts(), self._factors([gap])):
            out[:, part] *= np.sqrt(factor[0])
        return out

    def table(self) -> dict[str, np.ndarray]:
        """The arrays :meth:`from_arrays` rebuilds this from (saved beside a benchmark's embeddings)."""
        out = {"gap_layout": np.array([self.hist_dim, self.weighted], np.float64)}
        for key, t in (("colour", self.colour), ("fg", self.foreground)):
            if t is not None:
                out.update({f"{key}_gaps": t.gaps, f"{key}_shares": t.shares, f"{key}_trained": np.float64(t.trained)})
        return out

    @classmethod
    def from_arrays(cls, z) -> "SharesByGap | None":
        """From :meth:`table`'s arrays (``z`` a mapping such as an ``np.load``), or None without them.
        Reads the older layout too (``fg_layer``: a foreground share only)."""
        keys = set(getattr(z, "files", z))
        if "fg_layer" in keys:                     # saved before the colour share by gap (5 December 2026)
            trained, hist_dim = z["fg_layer"].tolist()
            return cls(int(hist_dim), None, GapTable(z["fg_gaps"], z["fg_shares"], trained), True)
        if "gap_layout" not in keys:
            return None
        hist_dim, weighted = z["gap_layout"].tolist()
        tables = {key: GapTable(z[f"{key}_gaps"], z[f"{key}_shares"], float(z[f"{key}_trained"]))
                  if f"{key}_gaps" in keys else None for key in ("colour", "fg")}
        return cls(int(hist_dim), tables["colour"], tables["fg"], bool(weighted))
