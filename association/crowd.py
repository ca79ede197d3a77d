"""The colour share of crowded pairs: the appearance distance re-weighted where boxes overlap.

A Siamese embedding with a colour layer is ``[sqrt(s0) * histogram, sqrt(1 - s0) * cnn]`` (both
parts of unit length, ``s0`` the share it was trained with, ``association.siamese.SiameseNet``), so
the cosine distance of two embeddings is ``1 - (s0 h.h' + (1 - s0) c.c')``. Where one of the two
boxes overlaps another box of its frame, the crops of different people share pixels, and the best
mix of the two parts moves: on held-out scenes (``mot.studies.appearance_loso.crowd_share_study``)
such a pair is better compared at a colour share ``s`` that depends on the frames between the two
boxes, ``1 - (s h.h' + (1 - s) c.c')``; every other pair keeps ``s0``. :class:`CrowdShare` holds
that table and re-weights a gallery's distances. A table can be carried in the weights' metadata
(``crowd_share``, written by ``scripts/set_appearance_meta.py``) or given in the config. The shipped
weights carry none: in the held-out tracker study it cost HOTA and IDF1 (docs/appearance-last-cell.md,
"The crowd share in the tracker"), so it is an option, off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mot.geometry import iou_matrix_tlwh


def check_table(table, name: str = "crowd_share", what: str = "colour shares") -> str | None:
    """A one-line problem with a ``{gap: share}`` table (gaps integers >= 1, shares in [0, 1]), or None;
    ``name`` is the setting the message names, ``what`` the values."""
    if not isinstance(table, dict):
        return f"{name} must be a mapping of frame gaps to {what}, got {table!r}"
    for gap, share in table.items():
        if isinstance(gap, bool) or not isinstance(gap, (int, str)) or not str(gap).isdigit() or int(gap) < 1:
            return f"{name} gap {gap!r} is not an integer >= 1"
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            return f"{name} at gap {gap}: share {share!r} is not in [0, 1]"
    return None


def sorted_table(table: dict) -> tuple[np.ndarray, np.ndarray]:
    """A checked ``{gap: share}`` table as (K,) float64 increasing gaps and (K,) float64 shares."""
    items = sorted((int(g), float(s)) for g, s in table.items())
    return np.array([g for g, _ in items], np.float64), np.array([s for _, s in items], np.float64)


def share_at(gaps, table_gaps: np.ndarray, table_shares: np.ndarray) -> np.ndarray:
    """(N,) float64 shares at frame ``gaps``: interpolated in log gap between the table's gaps, the
    nearest end's outside them (gaps below 1 count as 1)."""
    g = np.log(np.maximum(np.asarray(gaps, np.float64), 1.0))
    return np.interp(g, np.log(table_gaps), table_shares)


def overlapped_boxes(tlwh: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """(N,) bool: each box of one frame ((N, 4) float tlwh) overlaps another of them by IoU > ``iou``."""
    tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
    if len(tlwh) < 2:
        return np.zeros(len(tlwh), bool)
    m = iou_matrix_tlwh(tlwh, tlwh)
    np.fill_diagonal(m, 0.0)
    return m.max(1) > iou


@dataclass(frozen=True)
class CrowdShare:
    """The colour share of crowded pairs by frame gap, for embeddings of one colour layer.

    Attributes:
        gaps: (K,) float64 increasing frame gaps of the table.
        shares: (K,) float64 colour shares at those gaps; between them the share is interpolated in
            log gap, outside them it is the nearest end's.
        trained: ``s0``, the colour share the embeddings carry (in (0, 1)).
        hist_dim: the colour part's width (the embeddings' first ``hist_dim`` columns).
        iou: a box is crowded when it overlaps another box of its frame by more than this.
    """

    gaps: np.ndarray
    shares: np.ndarray
    trained: float
    hist_dim: int
    iou: float = 0.5

    @classmethod
    def from_table(cls, table: dict, trained: float, hist_dim: int, iou: float = 0.5) -> "CrowdShare":
        """From ``{gap: share}`` (checked with :func:`check_table`; raises ``ValueError``)."""
        problem = check_table(table) or (None if table else "crowd_share is empty")
        if problem:
            raise ValueError(problem)
        if not 0 < trained < 1 or hist_dim < 1 or not 0 <= iou < 1:
            raise ValueError(f"crowd_share needs a trained share in (0, 1), a colour part and an IoU in "
                             f"[0, 1), got {trained:g}, {hist_dim}, {iou:g}")
        return cls(*sorted_table(table), float(trained), int(hist_dim), float(iou))

    def crowded(self, tlwh: np.ndarray, tracks_tlwh: np.ndarray | None = None) -> np.ndarray:
        """(N,) bool: which of a frame's detections are crowded, as far as a tracker can tell.

        The benchmark calls a box crowded when another person's box overlaps it by more than
        ``iou``; the tracker knows the people of a frame as its detections and its tracks' predicted
        boxes. A detection is crowded when another detection overlaps it (:func:`overlapped_boxes`)
        or when two or more tracks do (one of them may be its own person; a second is someone else,
        who may be hidden, undetected, behind it).

        Args:
            tlwh: (N, 4) float detections of one frame; tracks_tlwh: (T, 4) float predicted boxes
                of the live tracks, or None.
        """
        out = overlapped_boxes(tlwh, self.iou)
        if tracks_tlwh is not None and len(tracks_tlwh) > 1 and len(out):
            m = iou_matrix_tlwh(np.asarray(tlwh, np.float32).reshape(-1, 4),
                                np.asarray(tracks_tlwh, np.float32).reshape(-1, 4))
            out |= (m > self.iou).sum(1) >= 2
        return out

    def share(self, gaps) -> np.ndarray:
        """(N,) float64 colour shares at frame gaps ``gaps`` (gaps below 1 count as 1)."""
        return share_at(gaps, self.gaps, self.shares)

    def distances(self, gallery: np.ndarray, gallery_frames: np.ndarray, gallery_crowded: np.ndarray,
                  emb: np.ndarray, crowded: np.ndarray, frame: int) -> np.ndarray:
        """Cosine distances of gallery rows to detections, crowded pairs at their gap's share.

        Args:
            gallery: (G, E) float32 unit embeddings, seen in frames ``gallery_frames`` (G,) int and
                crowded there or not, ``gallery_crowded`` (G,) bool.
            emb: (D, E) float32 unit embeddings of the detections of ``frame``, ``crowded`` (D,) bool.

        Returns:
            (G, D) float32: ``1 - (s h.h' + (1 - s) c.c')`` with ``s`` the share at the pair's gap when
            either box is crowded, else the trained share (the plain cosine distance).
        """
        k = self.hist_dim
        colour = gallery[:, :k] @ emb[:, :k].T             # s0 h.h'
        cnn = gallery[:, k:] @ emb[:, k:].T                # (1 - s0) c.c'
        s = self.share(frame - np.asarray(gallery_frames))[:, None]
        pair = np.asarray(gallery_crowded, bool)[:, None] | np.asarray(crowded, bool)[None, :]
        w_colour = np.where(pair, s / self.trained, 1.0)
        w_cnn = np.where(pair, (1 - s) / (1 - self.trained), 1.0)
        return (1.0 - w_colour * colour - w_cnn * cnn).astype(np.float32)
