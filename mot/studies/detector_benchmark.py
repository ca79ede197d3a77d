"""Detection quality and cost of detectors: precision, recall and AP at IoU 0.5 against the ground truth,
and milliseconds per frame (one thread), for the image detectors that configs name and for stored
detection files (``det.txt`` ACF, ``det_frcnn.txt``, ``det_yolox.txt`` ...).

Matching follows the MOTChallenge protocol of :func:`mot.evaluation.preprocess`: with MOT16/17
ground truth (a class column) only pedestrians with the consider flag count, and a detection that
the protocol's Hungarian step matches (IoU >= 0.5) to a distractor class (2, 7, 8, 12) is dropped,
neither true nor false positive; with 2DMOT2015 ground truth, rows with consider 0 are dropped.
Then, frame by frame, detections in descending score each take the unmatched ground-truth box they
overlap most, if by IoU >= 0.5 (the PASCAL VOC / COCO rule). AP is the area under the precision-
recall curve with all-point interpolation (VOC 2010 onwards: precision at recall r is the best
precision at any recall >= r), over all detections pooled across frames and sequences.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mot.cli import labelled_items
from mot.errors import UserError
from mot.evaluation import IOU_THRESHOLD, preprocess
from mot.io import (DetectionTable, TrackResults, atomic_write_text, read_detections, read_ground_truth,
                    write_results)
from mot.sequence import Sequence, discover, open_sequence

#: Stored detection files measured by default (relative to each sequence folder), as the issue names them.
#: MOT17/ here: det.txt there is YOLOX-nano, and ACF is det/det_acf.txt (pass --public).
DEFAULT_PUBLIC = ("ACF=det/det.txt", "FRCNN=det/det_frcnn.txt", "YOLOX-file=det/det_yolox.txt")


@dataclass
class Matched:
    """Detections scored against the ground truth (pooled over frames, and over sequences by :meth:`add`).

    Attributes:
        scores: (N,) float64 the counted detections' scores.
        tp: (N,) bool whether each is a true positive.
        n_gt: ground-truth boxes that count.
        frames: frames evaluated.
    """

    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tp: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_gt: int = 0
    frames: int = 0

    def add(self, other: "Matched") -> "Matched":
        return Matched(np.concatenate([self.scores, other.scores]), np.concatenate([self.tp, other.tp]),
                       self.n_gt + other.n_gt, self.frames + other.frames)


def match_detections(gt, table: DetectionTable, num_frames: int, frames: list[int] | None = None) -> Matched:
    """Scores a sequence's detections against its ground truth (see the module docstring).

    Args:
        gt: the sequence's :class:`mot.io.GroundTruth`.
        table: its detections (0-based tlwh).
        num_frames: the sequence length.
        frames: the 1-based frames evaluated (None: all); detections on other frames are ignored.
    """
    as_results = TrackResults(table.frames, np.arange(len(table.frames), dtype=np.int64), table.tlwh, table.scores)
    per_frame = preprocess(gt, as_results, num_frames)
    chosen = range(1, num_frames + 1) if frames is None else frames
    scores, tp, n_gt = [], [], 0
    for f in chosen:
        fr = per_frame[f - 1]
        n_gt += len(fr.gt_ids)
        order = np.argsort(-table.scores[fr.trk_ids], kind="stable")
        taken = np.zeros(len(fr.gt_ids), bool)
        for k in order:
            iou = np.where(taken, -1.0, fr.iou[:, k]) if len(fr.gt_ids) else np.zeros(0)
            best = int(np.argmax(iou)) if iou.size else -1
            hit = best >= 0 and iou[best] >= IOU_THRESHOLD
            if hit:
                taken[best] = True
            tp.append(hit)
        scores.append(table.scores[fr.trk_ids][order])
    return Matched(np.concatenate(scores) if scores else np.zeros(0), np.asarray(tp, bool), n_gt, len(chosen))


def quality(m: Matched) -> dict:
    """Precision and recall of all the detections, all-point-interpolated AP, and the best F1 with its score.

    Returns:
        ``{"P", "R", "AP", "F1max", "at_score", "dets_per_frame", "gt", "dets"}``, rates in percent.
    """
    order = np.argsort(-m.scores, kind="stable")
    tp = m.tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = ctp / max(m.n_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1)
    ap = average_precision(recall, precision)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    # The best F1 is taken where a threshold can fall: after the last detection of equal score.
    last = np.r_[m.scores[order][1:] != m.scores[order][:-1], True] if len(order) else np.zeros(0, bool)
    best = int(np.argmax(np.where(last, f1, -1))) if len(order) else None
    n = len(order)
    return {
        "P": 100 * float(precision[-1]) if n else 0.0,
        "R": 100 * float(recall[-1]) if n else 0.0,
        "AP": 100 * ap,
        "F1max": 100 * float(f1[best]) if n else 0.0,
        "at_score": float(m.scores[order][best]) if n else None,
        "dets_per_frame": n / max(m.frames, 1),
        "gt": m.n_gt,
        "dets": n,
    }


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve, all-point interpolation (PASCAL VOC 2010+).

    Args:
        recall: (N,) non-decreasing recall after each detection, best score first.
        precision: (N,) precision after each detection.

    Returns:
        AP in [0, 1]: sum over recall steps of the step times the best precision at that recall or beyond.
    """
    if len(recall) == 0:
        return 0.0
    r = np.concatenate([[0.0], recall, [recall[-1]]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]   # the precision envelope
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def agreement(a: DetectionTable, b: DetectionTable) -> dict:
    """How far two detection tables of the same frames agree (e.g. a live detector and its stored file).

    Per frame, boxes are paired one to one (Hungarian on IoU, pairs at IoU >= 0.5).

    Returns:
        Box counts, the share of each side paired, the share of pairs at IoU >= 0.99, the mean IoU
        and the largest score difference of the pairs.
    """
    from scipy.optimize import linear_sum_assignment

    from mot.geometry import iou_matrix_tlwh
    ia, ib = a.index(), b.index()
    ious, dscore = [], []
    for f in np.union1d(a.frames, b.frames):
        ra, rb = ia.rows(int(f)), ib.rows(int(f))
        iou = iou_matrix_tlwh(a.tlwh[ra], b.tlwh[rb])
        if not iou.size:
            continue
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= IOU_THRESHOLD
        ious.append(iou[rows[ok], cols[ok]])
        dscore.append(np.abs(a.scores[ra][rows[ok]] - b.scores[rb][cols[ok]]))
    iou = np.concatenate(ious) if ious else np.zeros(0)
    ds = np.concatenate(dscore) if dscore else np.zeros(0)
    return {"boxes_a": len(a.frames), "boxes_b": len(b.frames), "paired": len(iou),
            "paired_of_a": 100 * len(iou) / max(len(a.frames), 1),
            "paired_of_b": 100 * len(iou) / max(len(b.frames), 1),
            "iou_ge_0.99": 100 * float(np.mean(iou >= 0.99)) if len(iou) else 0.0,
            "mean_iou": float(np.mean(iou)) if len(iou) else 0.0,
            "max_score_diff": float(np.max(ds)) if len(ds) else 0.0}


def run_detector(cfg_path: str, seq: Sequence, frames: list[int], overrides: list[str] | None = None):
    """Runs a config's image detector on the given frames of a sequence folder.

    Returns:
        The detections as a :class:`DetectionTable` and the mean milliseconds per ``detect`` call.
    """
    from detectors import DETECTORS
    from mot.config import load_config
    cfg = load_config(cfg_path, overrides or [])
    det = DETECTORS.build(cfg.detector, sequence=seq)
    parts, seconds = [], 0.0
    for f in frames:
        path = seq.frame_path(f)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{path}: cannot read image (missing or corrupt)")
        start = time.perf_counter()
        d = det.detect(image, f)
        seconds += time.perf_counter() - start
        parts.append((np.full(len(d), f, np.int64), d.tlwh, d.scores))
    table = DetectionTable(*(np.concatenate([p[i] for p in parts]) if parts else empty
                             for i, empty in enumerate((np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                                                        np.zeros(0, np.float32)))))
    return table, 1000 * seconds / max(len(frames), 1)


def benchmark_detectors(data, configs: list[str], public: list[str], out_dir, seqs=None, frame_step: int = 1,
                        compare: list[str] = (), sizes=((768, 576), (1920, 1080)), repeats: int = 3,
                        log=print) -> dict:
    """Measures every source on every sequence; writes ``detectors.json``, ``detectors.md`` and the live
    detectors' detections (``<label>/<SEQ>.txt``, MOTChallenge det format) to ``out_dir``.

    Args:
        data: a sequence folder or a folder of sequences, with ``gt/gt.txt``.
        configs: YAML configs whose image detector is run (``LABEL=PATH`` or ``PATH``).
        public: stored detection files, ``LABEL=FILE`` relative to each sequence folder; a sequence without
            the file gets no row for it.
        out_dir: output folder.
        seqs: sequence names or patterns (None: all).
        frame_step: evaluate frames 1, 1 + step, ... only (for slow detectors).
        compare: ``LABEL_A:LABEL_B`` pairs whose detections are compared box by box (:func:`agreement`).
        sizes: (width, height) sizes at which each live detector is timed (``mot/studies/detector_speed.py``).
        repeats: timed calls per size.

    Returns:
        The JSON-ready result.
    """
    from mot.studies.detector_speed import detector_cost
    from mot.config import load_config
    if frame_step < 1:
        raise UserError("--frame-step must be >= 1")
    cfgs = labelled_items(configs, "--configs", bare=lambda item: Path(item).stem)
    files = labelled_items(public, "--public")
    clash = sorted(set(cfgs) & set(files))
    if clash:
        raise UserError(f"label {clash[0]!r} names both a config and a public file")
    pairs = []
    for item in compare:
        a, sep, b = item.partition(":")
        if not sep or a not in {**cfgs, **files} or b not in {**cfgs, **files}:
            raise UserError(f"--compare {item!r}: expected LABEL_A:LABEL_B with labels from --configs/--public")
        pairs.append((a, b))
    for path in cfgs.values():
        load_config(path)  # a bad config fails before any work
    out_dir = Path(out_dir)
    cv2.setNumThreads(1)
    sequences = [open_sequence(p) for p in discover(data, seqs)]
    rows, pooled, tables, first_image = [], {}, {}, None
    for seq in sequences:
        if seq.gt_path is None:
            raise UserError(f"{seq.name}: no gt/gt.txt; the detector benchmark needs ground truth")
        gt = read_ground_truth(seq.gt_path)
        n = seq.info.seq_length
        frames = list(range(1, n + 1, frame_step))
        if first_image is None:
            first_image = cv2.imread(str(seq.frame_path(1)), cv2.IMREAD_COLOR)
        sources: dict[str, tuple[DetectionTable, float | None]] = {}
        for label, rel in files.items():
            if (seq.path / rel).is_file():
                sources[label] = (read_detections(seq.path / rel, n), None)
        for label, path in cfgs.items():
            log(f"{seq.name}: {label} on {len(frames)} frames")
            table, ms = run_detector(path, seq, frames)
            no_ids = np.full(len(table.frames), -1, np.int64)  # det.txt form: frame,-1,x,y,w,h,score
            write_results(out_dir / label / f"{seq.name}.txt",
                          TrackResults(table.frames, no_ids, table.tlwh, table.scores))
            sources[label] = (table, ms)
        for label, (table, ms) in sources.items():
            m = match_detections(gt, table, n, frames)
            pooled[label] = pooled.get(label, Matched()).add(m)
            rows.append({"sequence": seq.name, "protocol": gt.protocol, "source": label,
                         "ms_per_frame_here": ms, **quality(m)})
            tables[(seq.name, label)] = _only(table, frames)
    combined = [{"sequence": "combined", "source": label, **quality(m)} for label, m in pooled.items()]
    agree = []
    for a, b in pairs:
        for seq in sequences:
            if (seq.name, a) in tables and (seq.name, b) in tables:
                agree.append({"sequence": seq.name, "a": a, "b": b,
                              **agreement(tables[(seq.name, a)], tables[(seq.name, b)])})
    costs = {}
    for label, path in cfgs.items():
        cfg = load_config(path)
        log(f"timing {label} at {', '.join(f'{w}x{h}' for w, h in sizes)}")
        costs[label] = detector_cost(cfg.detector.type, cfg.detector.params, sizes=sizes, repeats=repeats,
                                     image=first_image)
    result = {"data": str(data), "sequences": [s.name for s in sequences], "frame_step": frame_step,
              "configs": cfgs, "public": files, "rows": rows, "combined": combined, "agreement": agree,
              "ms_per_frame": costs, "threads": 1,
              "timing_image": f"frame 1 of {sequences[0].name}, resized" if sequences else None}
    atomic_write_text(out_dir / "detectors.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out_dir / "detectors.md", format_markdown(result))
    return result


def _only(table: DetectionTable, frames: list[int]) -> DetectionTable:
    keep = np.isin(table.frames, frames)
    return DetectionTable(table.frames[keep], table.tlwh[keep], table.scores[keep])


def format_markdown(result: dict) -> str:
    """The result as Markdown tables: quality per sequence and combined, agreement, cost."""
    def num(v, fmt=".1f"):
        return "-" if v is None else format(v, fmt)

    lines = [f"Frames: every {result['frame_step']}th" if result["frame_step"] > 1 else "Frames: all", "",
             "| sequence | source | P | R | AP | F1max | at score | dets/frame | gt | ms/frame (own size) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"] + result["combined"]:
        lines.append(f"| {r['sequence']} | {r['source']} | {num(r['P'])} | {num(r['R'])} | {num(r['AP'])} | "
                     f"{num(r['F1max'])} | {num(r['at_score'], '.3g')} | {num(r['dets_per_frame'])} | {r['gt']} | "
                     f"{num(r.get('ms_per_frame_here'), '.0f')} |")
    if result["agreement"]:
        lines += ["", "| sequence | a | b | boxes a | boxes b | paired % of a | % of b | IoU >= 0.99 % | mean IoU | "
                  "max score diff |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["agreement"]:
            lines.append(f"| {r['sequence']} | {r['a']} | {r['b']} | {r['boxes_a']} | {r['boxes_b']} | "
                         f"{r['paired_of_a']:.2f} | {r['paired_of_b']:.2f} | {r['iou_ge_0.99']:.2f} | "
                         f"{r['mean_iou']:.4f} | {r['max_score_diff']:.4f} |")
    if result["ms_per_frame"]:
        sizes = list(next(iter(result["ms_per_frame"].values())))
        lines += ["", "| detector | " + " | ".join(f"ms/frame {s}" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        for label, c in result["ms_per_frame"].items():
            lines.append(f"| {label} | " + " | ".join(f"{c[s]:.0f}" for s in sizes) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``scripts/benchmark_detectors.py``; 0 ok, 2 bad input."""
    p = argparse.ArgumentParser(prog="benchmark_detectors", description="Precision, recall and AP at IoU 0.5 "
                                "(MOTChallenge protocol) and ms per frame of configs' detectors and stored det files.")
    p.add_argument("--data", required=True, help="a sequence folder or a folder of sequences with gt/gt.txt")
    p.add_argument("--seqs", nargs="+", help="sequence names or patterns (default: all)")
    p.add_argument("--configs", nargs="*", default=[], metavar="[LABEL=]YAML", help="configs whose detector is run")
    p.add_argument("--public", nargs="*", default=list(DEFAULT_PUBLIC), metavar="LABEL=FILE",
                   help="stored detection files relative to each sequence (default: %(default)s)")
    p.add_argument("--compare", nargs="*", default=[], metavar="A:B", help="compare two sources box by box")
    p.add_argument("--frame-step", type=int, default=1, help="evaluate every Nth frame (slow detectors)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per image size")
    p.add_argument("--out", required=True, help="output folder (detectors.md, detectors.json, detections)")
    args = p.parse_args(argv)
    try:
        result = benchmark_detectors(args.data, args.configs, args.public, args.out, args.seqs, args.frame_step,
                                     args.compare, repeats=args.repeats,
                                     log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_markdown(result))
    return 0
