"""Single-object check of the refiner: OTB one-pass success AUC beside OpenCV's TrackerMIL.

Each target is initialised on its first ground-truth box and followed to its last frame without
any re-initialisation (OTB's one-pass evaluation). The refiner runs as a plain SiamRPN tracker:
the first-frame template, the search centred on the previous box. Targets are the single objects
of OTB/VOT sequences and the longest ground-truth people of MOT sequences; all the targets of a
sequence are followed together (one batched refiner pass per frame), each frame decoded once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError
from mot.geometry import iou_matrix_tlwh
from mot.training.siamrpn_data import TargetTrack, is_sot, mot_tracks, sot_tracks

#: OTB success plot: overlap thresholds 0, 0.05, ..., 1; the AUC is the mean success rate.
THRESHOLDS = np.linspace(0.0, 1.0, 21)


@dataclass
class SotParams:
    """Which targets and how many."""

    max_people: int = 8          # MOT sequences: the longest this many identities
    min_frames: int = 20         # ... seen in at least this many frames
    max_frames: int = 300        # frames followed per target (from its first)


def success_auc(ious: np.ndarray) -> float:
    """OTB success AUC in percent: (F,) per-frame IoU (NaN frames, without ground truth, skipped)."""
    v = np.asarray(ious, np.float64)
    v = v[np.isfinite(v)]
    return float(np.mean([(v > t).mean() for t in THRESHOLDS]) * 100) if len(v) else float("nan")


def _targets(folder: Path, p: SotParams) -> tuple[list[TargetTrack], dict[int, Path]]:
    tracks, paths = sot_tracks(folder) if is_sot(folder) else mot_tracks(folder)
    if not is_sot(folder):
        tracks = sorted([t for t in tracks if len(t.frames) >= p.min_frames], key=lambda t: -len(t.frames))
        tracks = tracks[:p.max_people]
    return tracks, paths


class _Mil:
    def __init__(self):
        if not hasattr(cv2, "TrackerMIL_create"):
            raise UserError("this OpenCV build has no TrackerMIL")
        self.trackers = {}

    def start(self, key, image, tlwh):
        # TrackerMIL needs a box inside the image (it fails with bad_alloc on one reaching out).
        h, w = image.shape[:2]
        x0, y0 = max(int(round(tlwh[0])), 0), max(int(round(tlwh[1])), 0)
        x1, y1 = min(int(round(tlwh[0] + tlwh[2])), w), min(int(round(tlwh[1] + tlwh[3])), h)
        t = cv2.TrackerMIL_create()
        try:
            t.init(image, (x0, y0, max(x1 - x0, 2), max(y1 - y0, 2)))
        except cv2.error:
            t = None                  # counted as lost: its box stays where it started
        self.trackers[key] = t

    def step(self, key, image, prev):
        if self.trackers[key] is None:
            return prev
        ok, box = self.trackers[key].update(image)
        return np.asarray(box, np.float32) if ok else prev


def run_sequence(folder: Path, searcher, p: SotParams) -> dict:
    """Follows every target of one sequence with the refiner and with TrackerMIL.

    Returns:
        ``{"targets", "frames", "refiner": {"ious", "seconds"}, "mil": {...}}`` with per-frame IoU
        arrays concatenated over targets.
    """
    tracks, paths = _targets(Path(folder), p)
    if not tracks:
        raise UserError(f"{folder}: no target long enough to follow")
    spans = []
    for t in tracks:
        end = min(int(t.frames[-1]), int(t.frames[0]) + p.max_frames - 1)
        spans.append((int(t.frames[0]), end, {int(f): b for f, b in zip(t.frames, t.tlwh)}))
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    mil = _Mil()
    state = {"refiner": {}, "mil": {}}
    templates = {}
    ious = {"refiner": [], "mil": []}
    seconds = {"refiner": 0.0, "mil": 0.0}
    frames = 0
    for f in range(first, last + 1):
        active = [i for i, s in enumerate(spans) if s[0] <= f <= s[1]]
        path = paths.get(f)
        if not active or path is None:
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{path}: unreadable image")
        frames += 1
        starting = [i for i in active if f == spans[i][0]]
        following = [i for i in active if f != spans[i][0] and i in state["refiner"]]
        if following:
            t0 = time.perf_counter()
            z = _stack([templates[i] for i in following])
            boxes, _ = searcher.search(image, z, np.array([state["refiner"][i] for i in following], np.float32))
            seconds["refiner"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for i, b in zip(following, boxes):
                state["refiner"][i] = b
                state["mil"][i] = mil.step(i, image, state["mil"][i])
            seconds["mil"] += time.perf_counter() - t0
            for i in following:
                gt = spans[i][2].get(f)
                for name in ("refiner", "mil"):
                    ious[name].append(np.nan if gt is None else iou_matrix_tlwh(state[name][i][None], gt[None])[0, 0])
        if starting:
            t0 = time.perf_counter()
            z = searcher.templates(image, np.array([spans[i][2][f] for i in starting], np.float32))
            seconds["refiner"] += time.perf_counter() - t0
            for i, feat in zip(starting, z):
                templates[i] = feat
                state["refiner"][i] = spans[i][2][f].copy()
                t0 = time.perf_counter()
                mil.start(i, image, spans[i][2][f])
                seconds["mil"] += time.perf_counter() - t0
                state["mil"][i] = spans[i][2][f].copy()
    return {"targets": len(tracks), "frames": frames,
            **{k: {"ious": np.asarray(ious[k], np.float64), "seconds": seconds[k]} for k in ious}}


def _stack(feats):
    import torch
    return torch.stack(feats)


@dataclass
class SotReport:
    rows: dict = field(default_factory=dict)

    def table(self) -> str:
        lines = ["| sequence | targets | scored frames | refiner AUC | TrackerMIL AUC | refiner s | MIL s |",
                 "|---|---|---|---|---|---|---|"]
        for name, r in self.rows.items():
            lines.append(f"| {name} | {r['targets']} | {r['scored']} | {r['refiner']:.1f} | {r['mil']:.1f} | "
                         f"{r['refiner_s']:.1f} | {r['mil_s']:.1f} |")
        return "\n".join(lines)


def benchmark(folders: list[str | Path], weights=None, params: SotParams | None = None, device: str = "auto",
              threads: int = 1) -> SotReport:
    """Success AUC of the refiner and TrackerMIL on each sequence, plus all sequences pooled."""
    from mot.config import RefinerConfig
    from mot.refiner import SiamRPN

    cfg = RefinerConfig()
    searcher = SiamRPN(weights, device, cfg.penalty_k, cfg.window_influence, cfg.size_lr, cfg.batch_size, threads)
    params = params or SotParams()
    report, pooled = SotReport(), {"refiner": [], "mil": []}
    total = {"targets": 0, "refiner_s": 0.0, "mil_s": 0.0}
    for folder in folders:
        r = run_sequence(Path(folder), searcher, params)
        report.rows[Path(folder).name] = {
            "targets": r["targets"], "scored": int(np.isfinite(r["refiner"]["ious"]).sum()),
            "refiner": success_auc(r["refiner"]["ious"]), "mil": success_auc(r["mil"]["ious"]),
            "refiner_s": r["refiner"]["seconds"], "mil_s": r["mil"]["seconds"]}
        for k in pooled:
            pooled[k].append(r[k]["ious"])
        total["targets"] += r["targets"]
        total["refiner_s"] += r["refiner"]["seconds"]
        total["mil_s"] += r["mil"]["seconds"]
    if len(folders) > 1:
        allr, allm = np.concatenate(pooled["refiner"]), np.concatenate(pooled["mil"])
        report.rows["all (pooled frames)"] = {**total, "scored": int(np.isfinite(allr).sum()),
                                              "refiner": success_auc(allr), "mil": success_auc(allm)}
    return report


def refiner_cost(image_bgr: np.ndarray, weights=None, counts=(1, 10, 50), repeats: int = 10, device: str = "cpu",
                 threads: int = 1, seed: int = 0) -> list[dict]:
    """Per-frame cost of refining N live tracks in one batch (search + new templates for all).

    Boxes are person-shaped (height 8-30% of the frame, width 0.4 x height) at random places.

    Returns:
        One row per N: wall and process-CPU milliseconds per frame (median over ``repeats``), both
        for the whole refiner step and per track.
    """
    from mot.config import RefinerConfig
    from mot.refiner import SiamRPN

    cfg = RefinerConfig()
    searcher = SiamRPN(weights, device, cfg.penalty_k, cfg.window_influence, cfg.size_lr, cfg.batch_size, threads)
    rng = np.random.default_rng(seed)
    h_img, w_img = image_bgr.shape[:2]
    rows = []
    for n in counts:
        h = rng.uniform(0.08, 0.3, n) * h_img
        boxes = np.stack([rng.uniform(0, w_img - 0.4 * h), rng.uniform(0, h_img - h), 0.4 * h, h], 1).astype(np.float32)
        z = searcher.templates(image_bgr, boxes)
        searcher.search(image_bgr, z, boxes)                            # warm-up
        wall, cpu = [], []
        for _ in range(repeats):
            frame = image_bgr.copy()                  # a new frame: its pyramid is built again
            t0, c0 = time.perf_counter(), time.process_time()
            searcher.search(frame, z, boxes + 3)
            z = searcher.templates(frame, boxes)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        w, c = float(np.median(wall)) * 1000, float(np.median(cpu)) * 1000
        rows.append({"tracks": n, "wall_ms": round(w, 1), "cpu_ms": round(c, 1),
                     "wall_ms_per_track": round(w / n, 2), "cpu_ms_per_track": round(c / n, 2),
                     "device": str(searcher.device)})
    return rows
