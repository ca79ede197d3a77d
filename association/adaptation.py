"""Scene adaptation from the tracker's own confident tracklets: free labels for the scene at hand.

Within one confident tracklet the boxes are the same person; two confident tracklets present in the
same frame (and not overlapping much) are different people. :func:`mine_pairs` turns tracker output
into such pairs; :func:`adapt` fine-tunes the embedding's last layer (the projection, a few thousand
weights) on them with the contrastive loss, so the model leans towards what tells this scene's
people apart. :func:`adapt_embedder` does both for a run: the tracker's first pass over the video
gives the rows, the frames are read again for their patches, and the second pass tracks with the
adapted model (``association.params.adaptation``; ``mot.pipeline`` runs the two passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from mot.geometry import iou_matrix, tlwh_to_xyxy


@dataclass
class AdaptationParams:
    """Switch and thresholds of the scene adaptation (every one from the config)."""

    enabled: bool = False
    min_length: int = 10      # frames a tracklet must span to be trusted
    min_rank: float = 0.5     # ... and the mean rank of its scores among all the first pass's rows (any detector)
    max_gap: int = 30         # positive pairs at most this many frames apart
    max_iou: float = 0.3      # coexisting tracklets overlapping more than this give no negative
    max_pairs: int = 1000     # of each kind (positive, negative), sampled
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
        if not 0 <= self.max_iou <= 1 or not 0 <= self.min_rank <= 1:
            return "adaptation max_iou and min_rank must be in [0, 1]"
        if self.lr <= 0 or self.margin <= 0:
            return "adaptation lr and margin must be > 0"
        return None


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """(M,) float32: each score's rank among all of them in (0, 1] (ties share their mean rank)."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, np.float64)
    return (rankdata(scores) / max(len(scores), 1)).astype(np.float32)


def confident_tracks(frames: np.ndarray, ids: np.ndarray, ranks: np.ndarray, params: AdaptationParams) -> np.ndarray:
    """Track ids spanning at least ``min_length`` frames whose scores' mean rank is at least ``min_rank``."""
    out = []
    for t in np.unique(ids):
        m = ids == t
        span = int(frames[m].max() - frames[m].min() + 1)
        if span >= params.min_length and float(ranks[m].mean()) >= params.min_rank:
            out.append(t)
    return np.array(out, ids.dtype)


def mine_pairs(frames: np.ndarray, ids: np.ndarray, tlwh: np.ndarray, scores: np.ndarray,
               params: AdaptationParams | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs from tracker output rows.

    Args:
        frames: (M,) int frames; ids: (M,) int track ids; tlwh: (M, 4) float32 boxes; scores: (M,)
            float32 scores (one row per track and frame, as the tracker writes them; any scale: only
            their ranks are used).
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
    trusted = np.isin(ids, confident_tracks(frames, ids, score_ranks(scores), params))
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

    Everything before the projection stays fixed, so it runs once per patch
    (:meth:`association.siamese.SiameseNet.trunk`); each step is the projection alone.

    Args:
        net: a :class:`association.siamese.SiameseNet` (cost-function topology, or an in-network
            model's branch).
        inputs: (M, C, H, W) float32 network inputs of the rows the pairs index.
        a, b, same: from :func:`mine_pairs`.

    Returns:
        ``{"pairs": n, "steps": n, "loss_first": x, "loss_last": y}`` (no steps, NaN losses, when
        there are no positive or no negative pairs).
    """
    from association.siamese import contrastive_loss, pair_distance

    params = params or AdaptationParams()
    result = {"pairs": int(len(a)), "steps": 0, "loss_first": float("nan"), "loss_last": float("nan")}
    if not len(a) or params.steps == 0 or same.all() or not same.any():
        return result
    rng = np.random.default_rng(params.seed)
    was_training = net.training
    net.eval()  # batch norms keep their statistics; only the projection learns
    with torch.no_grad():
        parts = [net.trunk(torch.from_numpy(np.ascontiguousarray(inputs[i:i + 256])))
                 for i in range(0, len(inputs), 256)]
    pooled = torch.cat([p for p, _ in parts])
    hist = torch.cat([h for _, h in parts]) if parts[0][1] is not None else None
    opt = torch.optim.Adam(net.project.parameters(), lr=params.lr)
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    losses = []
    for _ in range(params.steps):
        pick = np.concatenate([rng.choice(pos, params.batch // 2), rng.choice(neg, params.batch // 2)])
        ia, ib = torch.from_numpy(a[pick]), torch.from_numpy(b[pick])
        ea = net.join(pooled[ia], hist[ia] if hist is not None else None)
        eb = net.join(pooled[ib], hist[ib] if hist is not None else None)
        loss = contrastive_loss(pair_distance(ea, eb), torch.from_numpy(same[pick]), params.margin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.train(was_training)
    return result | {"steps": params.steps, "loss_first": losses[0], "loss_last": losses[-1]}


def adapt_embedder(embedder, rows, frames: Iterable, params: AdaptationParams) -> dict:
    """Adapts a run's embedder to a video from its first pass (in place).

    Args:
        embedder: the run's :class:`association.siamese.AppearanceModel`.
        rows: the first pass's output (:class:`mot.io.TrackResults`).
        frames: ``(frame, image)`` of the same video, in order (read again for the rows' patches;
            the reading stops after the last frame a pair needs).
        params: thresholds and the fine-tuning schedule.

    Returns:
        :func:`adapt`'s summary plus ``tracks`` (confident tracklets used) and ``patches``.
    """
    a, b, same = mine_pairs(rows.frames, rows.ids, rows.tlwh, rows.scores, params)
    used = np.unique(np.concatenate([a, b]))
    summary = {"tracks": int(len(np.unique(rows.ids[used]))), "patches": int(len(used))}
    if not len(used):
        return adapt(embedder.net, np.zeros(0), a, b, same, params) | summary
    inputs = None
    last = int(rows.frames[used].max())
    previous = None
    for frame, image in frames:
        here = used[rows.frames[used] == frame]
        if len(here):
            x = embedder.inputs(image, rows.tlwh[here], previous)
            if inputs is None:
                inputs = np.zeros((len(used),) + x.shape[1:], np.float32)
            inputs[np.searchsorted(used, here)] = x
        previous = image
        if frame >= last:
            break
    if inputs is None:
        return adapt(embedder.net, np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.zeros(0, bool), params) | summary
    return adapt(embedder.net, inputs, np.searchsorted(used, a), np.searchsorted(used, b), same, params) | summary
