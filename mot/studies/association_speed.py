"""Per-frame cost of the learned association (features + XGBoost + Hungarian) at a given crowd size."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from association.features import compute
from association.learned import AppearanceGallery, LearnedAssociation, LearnedParams
from association.linking import link
from mot.tracker import Track
from mot.types import Detections


#: Length of the colour descriptor (two halves x 8^3 LUV bins, association/patches.py).
HIST_DIM = 2 * 8 ** 3
#: Length of the CNN part of the shipped Siamese embedding (read by ``cnn_min``).
CNN_DIM = 128


def _unit_rows(rng, n: int, dim: int) -> np.ndarray:
    x = np.abs(rng.normal(size=(n, dim))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _scene(n: int, emb_dim: int, rng) -> tuple[list, Detections]:
    boxes = np.stack([rng.uniform(0, 1800, n), rng.uniform(0, 700, n), np.full(n, 50.0), np.full(n, 120.0)], 1)
    tracks = []
    for i, b in enumerate(boxes):
        t = Track(i + 1, b.astype(np.float32), 1.0, 1, kalman=True)
        for f in range(2, 6):
            t.update(b + rng.normal(0, 2, 4), 1.0, f, 0.6)
        e = rng.normal(size=(8, emb_dim)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        t.appearance = AppearanceGallery(deque(e), deque(_unit_rows(rng, 8, HIST_DIM)), e.mean(0))
        tracks.append(t)
    extras = {"embeddings": _unit_rows(rng, n, emb_dim), "histograms": _unit_rows(rng, n, HIST_DIM),
              "cnn_embeddings": _unit_rows(rng, n, CNN_DIM)}
    dets = Detections((boxes + rng.normal(0, 3, boxes.shape)).astype(np.float32), np.ones(n), extras)
    return tracks, dets


def association_cost(params: LearnedParams, people=(10, 50), repeats: int = 50, emb_dim: int | None = None) -> list[dict]:
    """Median milliseconds per frame for features, XGBoost and linking with ``n`` tracks x ``n`` detections.

    The stages are :class:`~association.learned.LearnedAssociation`'s own: the features of every pair,
    the matcher on the pairs its gate lets through (``pair_cost``), then linking; ``scored`` is the
    share of pairs the matcher scored. The matcher is loaded from ``params.matcher``; appearance
    embeddings are random unit vectors of the configured embedder's size (``emb_dim`` overrides it;
    the embedding network's own cost is measured by the appearance benchmark).
    """
    assoc = LearnedAssociation(params)
    if emb_dim is None:
        emb_dim = assoc.embedder.embedding_dim if assoc.embedder is not None else 128
    rng = np.random.default_rng(0)
    rows = []
    for n in people:
        tracks, dets = _scene(n, emb_dim, rng)
        times = {"features": [], "xgboost": [], "linking": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            ctx = assoc.context(tracks, dets, 6)
            feats, gate = compute(params.features, ctx), assoc.gate(ctx)
            t1 = time.perf_counter()
            cost = assoc.pair_cost(feats, gate)
            t2 = time.perf_counter()
            link(cost, assoc.max_cost)
            t3 = time.perf_counter()
            times["features"].append(t1 - t0)
            times["xgboost"].append(t2 - t1)
            times["linking"].append(t3 - t2)
        row = {"people": n, "embedding_dim": emb_dim, "scored": float(gate.mean()),
               **{k: 1000 * float(np.median(v)) for k, v in times.items()}}
        row["total"] = row["features"] + row["xgboost"] + row["linking"]
        rows.append(row)
    return rows


def main(argv=None) -> int:
    """``python scripts/benchmark_association.py [--config FILE]``: prints the per-frame association cost."""
    import argparse
    import json
    import sys

    import torch

    from mot.config import load_config
    from mot.errors import UserError

    parser = argparse.ArgumentParser(prog="benchmark_association.py", description=main.__doc__)
    parser.add_argument("--config", default=None, help="a config with a learned association (default: built-ins)")
    parser.add_argument("--people", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config)
        if cfg.association.type != "learned":
            raise UserError("config: association.type must be 'learned'")
        params = LearnedParams(**cfg.association.params)
        rows = association_cost(params, tuple(args.people))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=1))
    return 0

