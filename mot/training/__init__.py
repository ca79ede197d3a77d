"""Everything that fits a model: the Siamese network, the XGBoost matcher, the SiamRPN refiner.

Never imported by a tracking run (``tests/test_layout.py`` checks it); the thin scripts in
``scripts/`` call into it.
"""

from __future__ import annotations

import shlex
import sys
from typing import Callable


def run_training(script: str, argv, train: Callable, params, given: dict) -> dict | None:
    """The common body of a training script: sets the ``given`` options that are not None on
    ``params``, records the command line in the weights (``train(params, command=...)``), and turns
    a ``UserError`` into one line on stderr. Returns the training summary, or None on a user error."""
    from mot.errors import UserError

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
    from mot.errors import UserError
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
