"""Training the learned detection confidence (``tracker.confidence: learned``, mot/confidence.py).

Every detection of every annotated sequence and detection file is replayed through the same
online :class:`mot.confidence.ConfidenceInputs` the tracker keeps (a frame's scores observed, then
ranked; its confident boxes added to the height-for-row fit, then measured), giving its rank, its
place in the score range so far and its height's misfit to its row; it is labelled a person when it
covers a ground-truth pedestrian (IoU >= 0.5; the consider flag, and class 1 under the MOT17
protocol). An XGBoost classifier, monotone in every input, learns P(person); its rounds are chosen
by leaving each sequence out in turn. No image is read, so collecting takes seconds.

Example (the shipped ``mot/weights/confidence.json``)::

    python scripts/train_confidence.py --data ../data/mot15 ../data/MOT17/MOT17-05 \\
        --out mot/weights/confidence.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from mot.training import BoosterSettings, fit_and_write, fit_booster_cv

LABEL_IOU = 0.5
DET_FILES = ("det/det.txt", "det/det_frcnn.txt", "det/det_yolox.txt")


def collect_detections(seq_path: Path, det_file: str, cfg=None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels of one sequence's detections from one file.

    Returns:
        x: (N, 3) float32 rank, place in the score range and row misfit, as the tracker sees them online.
        y: (N,) bool, True for a detection on a person.
    """
    from mot.config import load_config
    from mot.confidence import ConfidenceInputs
    from mot.geometry import iou_matrix_tlwh
    from mot.tracker import usable_mask
    from mot.training import file_detector, open_annotated

    cfg = cfg or load_config(None)
    seq, gt, keep, index = open_annotated(seq_path)
    detector = file_detector(cfg, det_file, seq)
    inputs = ConfidenceInputs.from_config(cfg.tracker)
    xs, ys = [], []
    for frame, _ in seq.frames(read_images=False):
        dets = detector.detect(None, frame)
        dets = dets.select(usable_mask(dets))   # as the tracker filters them
        if not len(dets):
            continue
        xs.append(inputs(dets.tlwh, dets.scores))
        rows = index.rows(int(frame))
        rows = rows[keep[rows]]
        best = iou_matrix_tlwh(dets.tlwh, gt.tlwh[rows]).max(axis=1) if len(rows) else np.zeros(len(dets))
        ys.append(best >= LABEL_IOU)
    if not xs:
        return np.zeros((0, 3), np.float32), np.zeros(0, bool)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def collect_files(path: Path, det_files, cfg=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One sequence's inputs and labels per detection file it has (a file with the same content as
    one already read, like MOT17's det.txt and det_yolox.txt, counts once)."""
    out, seen = {}, set()
    for det_file in det_files:
        if not (path / det_file).is_file():
            continue
        content = hashlib.sha1((path / det_file).read_bytes()).hexdigest()
        if content not in seen:
            seen.add(content)
            out[det_file] = collect_detections(path, det_file, cfg)
    return out


def collect_many(paths, det_files, cfg=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sequence: its detections' inputs and labels over every detection file it has
    (:func:`collect_files`, concatenated)."""
    per_seq = []
    for path in paths:
        files = collect_files(path, det_files, cfg).values()
        per_seq.append((np.concatenate([x for x, _ in files]) if files else np.zeros((0, 3), np.float32),
                        np.concatenate([y for _, y in files]) if files else np.zeros(0, bool)))
    return per_seq


def train_confidence(per_seq, settings: BoosterSettings | None = None):
    """Fits the model (monotone in each input), rounds by leaving each sequence out.

    Returns:
        The :class:`mot.confidence.ConfidenceModel` and a dict of training facts.
    """
    from mot.confidence import ConfidenceModel

    booster, facts = fit_booster_cv(per_seq, ConfidenceModel.FEATURES, settings or BoosterSettings(),
                                    "detections", ConfidenceModel.MONOTONE)
    return ConfidenceModel(booster), facts


def fold_model(others, dets: dict[str, str], models: Path, scene: str, seed: int = 0) -> Path:
    """The confidence model of one leave-one-scene-out fold, trained on ``others`` (reused if present)."""
    files = sorted(set(dets.values()))
    from mot.confidence import ConfidenceModel

    digest = hashlib.sha1(json.dumps([files, ConfidenceModel.VERSION]).encode()).hexdigest()[:10]
    path = models / f"confidence__{scene}__{digest}__s{seed}.json"
    if not path.is_file():
        model, facts = train_confidence(collect_many(others, files), BoosterSettings(seed=seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path, {"training": {**facts, "train": [p.name for p in others], "det_files": files}})
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_confidence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, nargs="+", help="annotated sequences (data roots or folders)")
    parser.add_argument("--det-files", nargs="+", default=list(DET_FILES))
    parser.add_argument("--out", required=True, help="the model JSON to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return fit_and_write(lambda paths: train_confidence(collect_many(paths, args.det_files),
                                                        BoosterSettings(seed=args.seed)),
                         args.data, args.det_files, args.out)
