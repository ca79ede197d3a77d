"""Scoring with the MOTChallenge protocol: CLEAR and IDF1 through motmetrics, HOTA through TrackEval.

The protocol (as TrackEval's ``MotChallenge2DBox`` applies it):
- MOT16/17 ground truth (files with a class column): only pedestrians (class 1) with the consider
  flag count; tracker boxes matched (Hungarian, IoU >= 0.5) to a distractor class (2, 7, 8, 12) are
  removed before scoring, as are the ground-truth boxes that are not counted.
- 2DMOT2015 ground truth (no classes): rows with the consider flag 0 are dropped; nothing else.

motmetrics 1.4.0's own IoU helper does not run on numpy 2, so the distance matrices are computed
here and fed to ``MOTAccumulator.update``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mot.geometry import iou_matrix_tlwh
from mot.io import DISTRACTOR_CLASSES, PEDESTRIAN, GroundTruth, TrackResults

log = logging.getLogger(__name__)

#: Reported per sequence and combined; rates in percent, counts as integers.
METRICS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "FP", "FN", "MT", "ML")
IOU_THRESHOLD = 0.5

_CLEAR_METRICS = ["num_frames", "num_matches", "num_switches", "num_false_positives", "num_misses",
                  "num_objects", "mostly_tracked", "mostly_lost", "motp"]
_ID_METRICS = ["idtp", "idfp", "idfn"]
_MM_METRICS = _CLEAR_METRICS + _ID_METRICS


@dataclass
class FrameEval:
    """One frame after the protocol's preprocessing.

    Attributes:
        gt_ids: (G,) int64.
        trk_ids: (K,) int64.
        iou: (G, K) float64 IoU between the kept ground truth and the kept tracker boxes.
    """

    gt_ids: np.ndarray
    trk_ids: np.ndarray
    iou: np.ndarray


def preprocess(gt: GroundTruth, results: TrackResults, num_frames: int) -> list[FrameEval]:
    """Applies the MOTChallenge protocol frame by frame (frames 1..num_frames; others are ignored)."""
    gt_index, res_index = gt.index(), results.index()
    frames = []
    for f in range(1, num_frames + 1):
        g, r = gt_index.rows(f), res_index.rows(f)
        iou = iou_matrix_tlwh(gt.tlwh[g], results.tlwh[r])
        keep_trk = np.ones(len(r), bool)
        if gt.classes is not None and len(g) and len(r):
            scores = np.where(iou >= IOU_THRESHOLD - np.finfo(float).eps, iou, 0.0)
            rows, cols = linear_sum_assignment(-scores)
            hit = scores[rows, cols] > np.finfo(float).eps
            distractor = np.isin(gt.classes[g][rows[hit]], DISTRACTOR_CLASSES)
            keep_trk[cols[hit][distractor]] = False
        keep_gt = gt.consider[g].copy()
        if gt.classes is not None:
            keep_gt &= gt.classes[g] == PEDESTRIAN
        frames.append(FrameEval(gt.ids[g][keep_gt], results.ids[r][keep_trk], iou[keep_gt][:, keep_trk]))
    return frames


def _clear_matches(frames: list[FrameEval]) -> list[np.ndarray]:
    """Per frame, the (G, K) bool CLEAR matches chosen by the MOTChallenge rule.

    TrackEval (the MOTChallenge devkit) prefers, among pairs with IoU >= 0.5, the pairs that were
    matched in the previous frame, then the largest total IoU. motmetrics instead keeps a match from
    any earlier frame; fed only these pairs, it counts exactly the devkit's TP, FP, FN and IDSW.
    """
    eps = np.finfo(float).eps
    previous: dict[int, int] = {}
    chosen = []
    for fr in frames:
        score = fr.iou.copy()
        if score.size:
            prev = np.array([previous.get(int(g), -1) for g in fr.gt_ids])
            score += 1000.0 * (fr.trk_ids[None, :] == prev[:, None])
            score[fr.iou < IOU_THRESHOLD - eps] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > eps
        mask = np.zeros(fr.iou.shape, bool)
        mask[rows[ok], cols[ok]] = True
        previous = {int(fr.gt_ids[r]): int(fr.trk_ids[c]) for r, c in zip(rows[ok], cols[ok])}
        chosen.append(mask)
    return chosen


def _clear_identity(frames: list[FrameEval]) -> dict:
    """motmetrics counts for one sequence: CLEAR on the devkit's matches, IDF1 on all pairs."""
    import motmetrics as mm

    clear_acc = mm.MOTAccumulator(auto_id=True)
    id_acc = mm.MOTAccumulator(auto_id=True)
    for fr, chosen in zip(frames, _clear_matches(frames)):
        dist = 1.0 - fr.iou
        dist[fr.iou < IOU_THRESHOLD] = np.nan
        gt_ids, trk_ids = fr.gt_ids.tolist(), fr.trk_ids.tolist()
        id_acc.update(gt_ids, trk_ids, dist)
        clear_acc.update(gt_ids, trk_ids, np.where(chosen, dist, np.nan))
    mh = mm.metrics.create()
    clear = mh.compute(clear_acc, metrics=_CLEAR_METRICS, name="seq").loc["seq"]
    ident = mh.compute(id_acc, metrics=_ID_METRICS, name="seq").loc["seq"]
    counts = {**{k: float(clear[k]) for k in _CLEAR_METRICS}, **{k: float(ident[k]) for k in _ID_METRICS}}
    if not np.isfinite(counts["motp"]):
        counts["motp"] = 0.0
    return counts


def _hota_data(frames: list[FrameEval]) -> dict:
    """The data dict TrackEval's metrics take: ids relabelled 0..n-1 as its datasets do."""
    gt_u = np.unique(np.concatenate([f.gt_ids for f in frames])) if frames else np.zeros(0, int)
    trk_u = np.unique(np.concatenate([f.trk_ids for f in frames])) if frames else np.zeros(0, int)
    return {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_u),
        "num_tracker_ids": len(trk_u),
        "num_gt_dets": int(sum(len(f.gt_ids) for f in frames)),
        "num_tracker_dets": int(sum(len(f.trk_ids) for f in frames)),
        "gt_ids": [np.searchsorted(gt_u, f.gt_ids) for f in frames],
        "tracker_ids": [np.searchsorted(trk_u, f.trk_ids) for f in frames],
        "similarity_scores": [f.iou for f in frames],
    }


def _hota_metric():
    """TrackEval's HOTA, or None when TrackEval is not installed (HOTA is then reported as missing)."""
    try:
        # TrackEval prints notices about optional datasets on import; keep them off our output.
        with contextlib.redirect_stdout(io.StringIO()):
            from trackeval.metrics import HOTA
    except ImportError:
        log.warning("TrackEval is not installed: HOTA, DetA and AssA are not computed "
                    "(pip install --no-deps trackeval==1.3.0)")
        return None
    return HOTA()


@dataclass
class SequenceScore:
    """A sequence's metrics and the raw counts needed to combine sequences."""

    metrics: dict
    counts: dict
    hota_raw: dict | None


def score_sequence(gt: GroundTruth, results: TrackResults, num_frames: int) -> SequenceScore:
    """Scores one sequence.

    Returns:
        Metrics named in :data:`METRICS` (HOTA, DetA, AssA are None without TrackEval installed).
    """
    frames = preprocess(gt, results, num_frames)
    counts = _clear_identity(frames)
    hota = _hota_metric()
    hota_raw = hota.eval_sequence(_hota_data(frames)) if hota is not None else None
    return SequenceScore(_summarise(counts, hota_raw), counts, hota_raw)


def combine(scores: list[SequenceScore]) -> dict:
    """Combined metrics over sequences, as the benchmarks compute them (summed counts, not means)."""
    total = {k: sum(s.counts[k] for s in scores) for k in _MM_METRICS if k != "motp"}
    matches = total["num_matches"]
    total["motp"] = (sum(s.counts["motp"] * s.counts["num_matches"] for s in scores) / matches) if matches else 0.0
    hota_raw = None
    if scores and all(s.hota_raw is not None for s in scores):
        hota_raw = _hota_metric().combine_sequences({str(i): s.hota_raw for i, s in enumerate(scores)})
    return _summarise(total, hota_raw)


def _summarise(c: dict, hota_raw: dict | None) -> dict:
    objects = c["num_objects"]
    id_denominator = 2 * c["idtp"] + c["idfp"] + c["idfn"]
    mota = 1.0 - (c["num_misses"] + c["num_false_positives"] + c["num_switches"]) / objects if objects else 0.0
    out = {
        "HOTA": None, "DetA": None, "AssA": None,
        "MOTA": 100 * mota,
        "MOTP": 100 * (1.0 - c["motp"]) if c["num_matches"] else 0.0,
        "IDF1": 100 * 2 * c["idtp"] / id_denominator if id_denominator else 0.0,
        "IDSW": int(c["num_switches"]),
        "FP": int(c["num_false_positives"]),
        "FN": int(c["num_misses"]),
        "MT": int(c["mostly_tracked"]),
        "ML": int(c["mostly_lost"]),
    }
    if hota_raw is not None:
        for k in ("HOTA", "DetA", "AssA"):
            out[k] = 100 * float(np.mean(hota_raw[k]))
    return out


def format_table(rows: dict[str, dict], extra: tuple[str, ...] = ()) -> str:
    """A plain-text table: one row per name, columns :data:`METRICS` plus ``extra``."""
    cols = list(METRICS) + list(extra)
    width = max([len(n) for n in rows] + [8])
    lines = [f"{'':<{width}} " + " ".join(f"{c:>7}" for c in cols)]
    for name, m in rows.items():
        cells = []
        for c in cols:
            v = m.get(c)
            cells.append(f"{'-':>7}" if v is None else f"{v:>7d}" if isinstance(v, int) else f"{v:>7.1f}")
        lines.append(f"{name:<{width}} " + " ".join(cells))
    return "\n".join(lines)
