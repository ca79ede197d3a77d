"""Scene adaptation from the tracker's own confident tracklets: free labels for the scene at hand.

Within one confident tracklet the boxes are the same person; two confident tracklets present in the
same frame (and not overlapping much) are different people. :func:`mine_pairs` turns tracker output
into such pairs; :func:`adapt` fine-tunes the embedding's last layer (the projection, a few thousand
weights) on them with the contrastive loss, so the model leans towards what tells this scene's
people apart (a first pass over the video, then tracking again with the adapted model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mot.geometry import iou_matrix, tlwh_to_xyxy


@dataclass
class AdaptationParams:
    """Switch and thresholds of the scene adaptation (every one from the config)."""

    enabled: bool = False
    min_length: int = 10      # frames a tracklet must hold to be trusted
    min_score: float = 0.5    # its mean detection score
    max_gap: int = 30         # positive pairs at most this many frames apart
    max_iou: float = 0.3      # coexisting tracklets overlapping more than this give no negative
    max_pairs: int = 4000     # of each kind (positive, negative), sampled
    steps: int = 50           # fine-tuning steps
    lr: float = 1e-3
    margin: float = 1.0       # contrastive margin
    batch: int = 64           # pairs per step
    seed: int = 0

    def validate(self):
        if self.min_length < 2:
            return "adaptation min_length must be >= 2"
        if self.max_gap < 1 or self.max_pairs < 1 or self.steps < 0 or self.batch < 2:
            return "adaptation max_gap, max_pairs and batch must be >= 1 (batch >= 2), steps >= 0"
        if not 0 <= self.max_iou <= 1:
            return "adaptation max_iou must be in [0, 1]"
        return None


def confident_tracks(frames: np.ndarray, ids: np.ndarray, scores: np.ndarray, params: AdaptationParams) -> np.ndarray:
    """Track ids whose span is at least ``min_length`` frames and whose mean score is at least ``min_score``."""
    out = []
    for t in np.unique(ids):
        m = ids == t
        span = int(frames[m].max() - frames[m].min() + 1)
        if span >= params.min_length and float(scores[m].mean()) >= params.min_score:
            out.append(t)
    return np.array(out, ids.dtype)


def mine_pairs(frames: np.ndarray, ids: np.ndarray, tlwh: np.ndarray, scores: np.ndarray,
               params: AdaptationParams | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs from tracker output rows.

    Args:
        frames: (M,) int frames; ids: (M,) int track ids; tlwh: (M, 4) float32 boxes; scores: (M,)
            float32 detection scores (one row per track and frame, as the tracker writes them).
        params: thresholds.

    Returns:
        (a (P,) int64, b (P,) int64, same (P,) bool): row indices of pair members and whether they are
        the same person (rows of one confident track, 1 to ``max_gap`` frames apart) or different
        people (two confident tracks in one frame with IoU at most ``max_iou``). At most ``max_pairs``
        of each kind, sampled with ``seed``.
    """
    params = params or AdaptationParams()
    rng = np.random.default_rng(params.seed)
    frames, ids = np.asarray(frames), np.asarray(ids)
    trusted = np.isin(ids, confident_tracks(frames, ids, np.asarray(scores, np.float32), params))
    pos_a, pos_b, neg_a, neg_b = [], [], [], []
    for t in np.unique(ids[trusted]):
        rows = np.flatnonzero(ids == t)
        rows = rows[np.argsort(frames[rows])]
        gap = frames[rows][None, :] - frames[rows][:, None]
        i, j = np.nonzero((gap >= 1) & (gap <= params.max_gap))
        pos_a.append(rows[i])
        pos_b.append(rows[j])
    for f in np.unique(frames[trusted]):
        rows = np.flatnonzero(trusted & (frames == f))
        if len(rows) < 2:
            continue
        xyxy = tlwh_to_xyxy(np.asarray(tlwh, np.float32)[rows])
        iou = iou_matrix(xyxy, xyxy)
        i, j = np.nonzero(np.triu(iou <= params.max_iou, k=1))
        neg_a.append(rows[i])
        neg_b.append(rows[j])

    def sample(a_parts, b_parts):
        a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
        b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
        if len(a) > params.max_pairs:
            keep = rng.choice(len(a), params.max_pairs, replace=False)
            a, b = a[keep], b[keep]
        return a.astype(np.int64), b.astype(np.int64)

    pa, pb = sample(pos_a, pos_b)
    na, nb = sample(neg_a, neg_b)
    same = np.concatenate([np.ones(len(pa), bool), np.zeros(len(na), bool)])
    return np.concatenate([pa, na]), np.concatenate([pb, nb]), same


def adapt(net: torch.nn.Module, inputs: np.ndarray, a: np.ndarray, b: np.ndarray, same: np.ndarray,
          params: AdaptationParams | None = None) -> dict:
    """Fine-tunes the projection layer of an embedding network on mined pairs (in place).

    Args:
        net: a :class:`association.siamese.SiameseNet` (cost-function topology).
        inputs: (M, C, H, W) float32 network inputs of the rows the pairs index.
        a, b, same: from :func:`mine_pairs`.

    Returns:
        ``{"steps": n, "loss_first": x, "loss_last": y}`` (NaN losses when there are no pairs).
    """
    from association.siamese import contrastive_loss, pair_distance

    params = params or AdaptationParams()
    if not len(a) or params.steps == 0 or same.all() or not same.any():
        return {"steps": 0, "loss_first": float("nan"), "loss_last": float("nan")}
    rng = np.random.default_rng(params.seed)
    for p in net.parameters():
        p.requires_grad_(False)
    for p in net.project.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(net.project.parameters(), lr=params.lr)
    net.eval()  # batch norms keep their statistics; only the projection learns
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    losses = []
    for _ in range(params.steps):
        pick = np.concatenate([rng.choice(pos, params.batch // 2), rng.choice(neg, params.batch // 2)])
        xa, xb = torch.from_numpy(inputs[a[pick]]), torch.from_numpy(inputs[b[pick]])
        loss = contrastive_loss(pair_distance(net(xa), net(xb)), torch.from_numpy(same[pick]), params.margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for p in net.parameters():
        p.requires_grad_(True)
    return {"steps": params.steps, "loss_first": losses[0], "loss_last": losses[-1]}
