"""Everything that fits a model: the Siamese network, the XGBoost matcher, the SiamRPN refiner, the
small XGBoost classifiers (track validity, detection confidence) and what they share.

Never imported by a tracking run (``tests/test_layout.py`` checks it); the thin scripts in
``scripts/`` call into it.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from typing import Callable

import numpy as np

from mot.errors import UserError


def run_training(script: str, argv, train: Callable, params, given: dict) -> dict | None:
    """The common body of a training script: sets the ``given`` options that are not None on
    ``params``, records the command line in the weights (``train(params, command=...)``), and turns
    a ``UserError`` into one line on stderr. Returns the training summary, or None on a user error."""
    for name, value in given.items():
        if value is not None:
            setattr(params, name, value)
    command = f"python scripts/{script} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        return train(params, command=command)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def open_annotated(seq_path):
    """An annotated sequence for training: ``(sequence, ground truth, keep, frame index)``, where
    ``keep`` marks the rows that count (the consider flag; pedestrians under the MOT17 protocol).

    Raises:
        UserError: the sequence has no ``gt/gt.txt``.
    """
    from mot.io import PEDESTRIAN, read_ground_truth
    from mot.sequence import open_sequence

    seq = open_sequence(seq_path)
    if seq.gt_path is None:
        raise UserError(f"{seq.name}: training needs gt/gt.txt")
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider if gt.classes is None else gt.consider & (gt.classes == PEDESTRIAN)
    return seq, gt, keep, gt.index()


def file_detector(cfg, det_file: str, seq):
    """The config's detector reading ``det_file`` of ``seq`` (a stored detection file)."""
    from detectors import DETECTORS
    from mot.config import DetectorSection

    return DETECTORS.build(DetectorSection(cfg.detector.type, {**cfg.detector.params, "file": det_file}), sequence=seq)


@dataclasses.dataclass
class BoosterSettings:
    """Training settings of the small XGBoost classifiers (track validity, detection confidence)."""

    rounds: int = 200
    max_depth: int = 3
    learning_rate: float = 0.1
    early_stopping: int = 20
    seed: int = 0
    threads: int = 1


def fit_booster_cv(per_seq: list[tuple[np.ndarray, np.ndarray]], features, settings, what: str,
                   monotone: tuple[int, ...] | None = None):
    """An XGBoost classifier fitted on all sequences' rows, for the rounds that minimise the log-loss
    of leaving each sequence out in turn.

    Args:
        per_seq: per sequence, ``(x (N, F) float32, y (N,) bool)``.
        settings: rounds, depth, learning rate, early stopping, seed, threads (:class:`BoosterSettings`).
        what: the rows' name for errors ("tracks", "detections").
        monotone: per feature +1 / -1 / 0 monotone constraints (None: none).

    Returns:
        ``(booster, facts)``.
    """
    import xgboost as xgb

    keep = [(x, y) for x, y in per_seq if len(y)]
    if len(keep) < 2:
        raise UserError(f"training needs {what} from two or more sequences")
    x = np.concatenate([k[0] for k in keep])
    y = np.concatenate([k[1] for k in keep])
    if y.all() or not y.any():
        raise UserError(f"training needs both true and false {what}")
    bounds = np.cumsum([0] + [len(k[1]) for k in keep])
    index = np.arange(len(y))
    folds = [(np.concatenate([index[:a], index[b:]]), index[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": settings.max_depth,
              "eta": settings.learning_rate, "subsample": 0.8, "tree_method": "hist", "seed": settings.seed,
              "nthread": settings.threads}
    if monotone is not None:
        params["monotone_constraints"] = "(" + ",".join(str(int(m)) for m in monotone) + ")"
    data = xgb.DMatrix(x, label=y.astype(np.float32), feature_names=list(features))
    history = xgb.cv(params, data, settings.rounds, folds=folds, early_stopping_rounds=settings.early_stopping,
                     verbose_eval=False, seed=settings.seed)
    booster = xgb.train(params, data, len(history))
    booster.feature_names = None
    facts = {what: int(len(y)), "true": int(y.sum()), "rounds": len(history),
             "cv_logloss": float(history["test-logloss-mean"].iloc[-1]), "folds": len(folds)}
    return booster, facts


def fit_and_write(fit, data, det_files, out) -> int:
    """The body of a small model's training command: finds the sequences under ``data``, fits
    (``fit(paths) -> (model, facts)``), writes the model with its training facts and prints them;
    a ``UserError`` is one line on stderr and exit code 2."""
    from mot.sequence import discover

    try:
        paths = discover(list(data))
        start = time.perf_counter()
        model, facts = fit(paths)
        facts.update(train=[p.name for p in paths], det_files=list(det_files),
                     seconds=round(time.perf_counter() - start, 1))
        model.save(out, {"training": facts})
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(facts, indent=1))
    return 0
