"""The appearance benchmark on the boxes the tracker embeds: detections, not ground truth.

Every other appearance table scores embeddings of ground-truth boxes. The tracker embeds detector
boxes, which miss the person mostly in width, and a recipe's order can flip between the two (the
finer colour stripes of docs/appearance-last-cell.md, "Finer colour stripes"). Here each considered
ground-truth box (the MOTChallenge protocol of :func:`mot.evaluation.preprocess`) is matched to a
detection of a stored file (Hungarian, IoU >= 0.5, per frame), and the matched rows are embedded
twice, on the ground-truth box and on the detection's box: same rows, same identities, so the two
scores differ only by the boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from mot.errors import UserError
from mot.evaluation import IOU_THRESHOLD, preprocess
from mot.io import TrackResults, read_detections, read_ground_truth
from mot.sequence import Sequence
from mot.studies.appearance import Embedder, score

#: The two kinds of box each matched row is embedded on.
KINDS = ("ground truth", "detection")


def matched_boxes(seq: Sequence, det_file: str | Path) -> dict:
    """Considered ground-truth boxes matched one-to-one to detections (IoU >= 0.5, per frame).

    Returns:
        ``frames (M,)``, ``ids (M,)``, ``tlwh (M, 4)`` the ground-truth boxes and ``det_tlwh (M, 4)``
        the matched detections' boxes, frame by frame.

    Raises:
        UserError: the sequence has no ground truth, or the detection file is missing or malformed.
    """
    if seq.gt_path is None:
        raise UserError(f"{seq.path}: no gt/gt.txt to match detections to")
    path = seq.path / det_file
    if not path.is_file():
        raise UserError(f"{path}: detection file not found")
    gt, det = read_ground_truth(seq.gt_path), read_detections(path, seq.info.seq_length)
    as_results = TrackResults(det.frames, np.arange(len(det.frames), dtype=np.int64), det.tlwh, det.scores)
    index = gt.index()
    out = {"frames": [], "ids": [], "tlwh": [], "det_tlwh": []}
    for f, fr in enumerate(preprocess(gt, as_results, seq.info.seq_length), 1):
        if not len(fr.gt_ids) or not len(fr.trk_ids):
            continue
        iou = np.where(fr.iou >= IOU_THRESHOLD, fr.iou, 0.0)
        rows, cols = linear_sum_assignment(-iou)
        hit = iou[rows, cols] > 0
        gt_rows = index.rows(f)
        by_id = dict(zip(gt.ids[gt_rows].tolist(), gt_rows.tolist()))
        g = np.array([by_id[i] for i in fr.gt_ids[rows[hit]].tolist()], dtype=np.int64)
        out["frames"].append(gt.frames[g])
        out["ids"].append(gt.ids[g])
        out["tlwh"].append(gt.tlwh[g])
        out["det_tlwh"].append(det.tlwh[fr.trk_ids[cols[hit]]])
    if not sum(map(len, out["frames"])):
        raise UserError(f"{path}: no detection overlaps a ground-truth box by IoU >= {IOU_THRESHOLD}")
    return {k: np.concatenate(v) for k, v in out.items()}


def box_misfit(boxes: dict) -> dict:
    """Medians of how the matched detections miss their ground-truth boxes: centre offsets over the
    box's width and height, and |log| of the height and width ratios."""
    g, d = boxes["tlwh"].astype(np.float64), boxes["det_tlwh"].astype(np.float64)
    return {"dx/w": float(np.median(np.abs(d[:, 0] + d[:, 2] / 2 - g[:, 0] - g[:, 2] / 2) / g[:, 2])),
            "dy/h": float(np.median(np.abs(d[:, 1] + d[:, 3] / 2 - g[:, 1] - g[:, 3] / 2) / g[:, 3])),
            "log h": float(np.median(np.abs(np.log(d[:, 3] / g[:, 3])))),
            "log w": float(np.median(np.abs(np.log(d[:, 2] / g[:, 2]))))}


def score_on_detections(seq: Sequence, det_file: str | Path, embedders: dict[str, Embedder],
                        gaps=(1, 10, 30)) -> dict:
    """Each embedder scored (:func:`mot.studies.appearance.score`) on the matched rows, once per kind
    of box.

    Returns:
        ``{"boxes": M, "misfit": box_misfit, "scores": {kind: {method: row}}}``.
    """
    boxes = matched_boxes(seq, det_file)
    wanted = {int(f) for f in np.unique(boxes["frames"])}
    emb = {kind: {name: [] for name in embedders} for kind in KINDS}
    for frame, image in seq.frames():
        if frame not in wanted:
            continue
        rows = boxes["frames"] == frame
        for kind, key in zip(KINDS, ("tlwh", "det_tlwh")):
            for name, fn in embedders.items():
                emb[kind][name].append(fn(image, boxes[key][rows]))
    scored = {kind: score(boxes, {n: np.concatenate(v) for n, v in by_name.items()}, gaps)
              for kind, by_name in emb.items()}
    return {"boxes": int(len(boxes["frames"])), "misfit": box_misfit(boxes), "scores": scored}


def detection_boxes_text(results: dict[str, dict], gaps=(1, 10, 30)) -> str:
    """One markdown table per sequence: AUC and rank-1 per gap, each method on both kinds of box."""
    lines = []
    for name, r in results.items():
        m = r["misfit"]
        lines += [f"{name}: {r['boxes']} matched boxes; detections miss by median |dx|/w {m['dx/w']:.3f}, "
                  f"|dy|/h {m['dy/h']:.3f}, |log h| {m['log h']:.3f}, |log w| {m['log w']:.3f}",
                  "| method | boxes | " + " | ".join(f"AUC@{g}" for g in gaps) + " | "
                  + " | ".join(f"R1@{g}" for g in gaps) + " |",
                  "|---" * (2 + 2 * len(gaps)) + "|"]
        for method in r["scores"][KINDS[0]]:
            for kind in KINDS:
                row = r["scores"][kind][method]
                lines.append(f"| {method} | {kind} | " + " | ".join(f"{100 * row[g]['auc']:.2f}" for g in gaps)
                             + " | " + " | ".join(f"{100 * row[g]['rank1']:.2f}" for g in gaps) + " |")
        lines.append("")
    return "\n".join(lines)
