"""The learned detection confidence, detection by detection, on scenes it never saw.

For every scene left out in turn, confidence models are trained on the other scenes' detections
(every detection file) with the first ``k`` of :data:`mot.confidence.ConfidenceModel.FEATURES` for
each ``k`` asked (2: rank and place; 3: and the row misfit), and every detection of the left-out
scene is scored: log-loss and AUC of P(person) per (sequence, detection file), and pooled. No
image is read; a run takes about a minute.

    python scripts/confidence_loso.py --data ../data/mot15 ../data/MOT17/MOT17-05 \\
        --same-scene PETS09-S3-MF1=PETS09-S2L1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mot.cli import labelled_items
from mot.errors import UserError
from mot.io import atomic_write_text
from mot.studies.appearance import roc_auc
from mot.studies.loso import scene_of
from mot.training import BoosterSettings, fit_booster_cv
from mot.training.confidence import DET_FILES, collect_files


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve of probabilities ``p`` for labels ``y`` (the appearance benchmark's
    :func:`mot.studies.appearance.roc_auc`, which ranks distances: lower is more alike)."""
    return roc_auc(-np.asarray(p, np.float64), np.asarray(y, bool))


def held_out(paths: list[Path], det_files, same_scene: dict[str, str], inputs=(2, 3), seed: int = 0) -> dict:
    """Per left-out (sequence, detection file) and pooled: log-loss and AUC for each input count.

    Returns:
        ``{"rows": [{"sequence", "det", "detections", "log_loss": {k: ...}, "auc": {k: ...}}],
        "pooled": {"log_loss": {k: ...}, "auc": {k: ...}}}``.
    """
    from mot.confidence import ConfidenceModel

    data = {(path.name, det_file): xy for path in paths for det_file, xy in collect_files(path, det_files).items()}
    rows, pooled = [], {k: ([], []) for k in inputs}
    for scene in dict.fromkeys(scene_of(p.name, same_scene) for p in paths):
        train = [p.name for p in paths if scene_of(p.name, same_scene) != scene]
        models = {}
        for k in inputs:
            per_seq = [(np.concatenate([x[:, :k] for (s, _), (x, _) in data.items() if s == name]),
                        np.concatenate([y for (s, _), (_, y) in data.items() if s == name]))
                       for name in train if any(s == name for s, _ in data)]
            models[k], _ = fit_booster_cv(per_seq, ConfidenceModel.FEATURES[:k], BoosterSettings(seed=seed),
                                          "detections", ConfidenceModel.MONOTONE[:k])
        for (name, det_file), (x, y) in data.items():
            if scene_of(name, same_scene) != scene or not len(y):
                continue
            row = {"sequence": name, "det": det_file, "detections": len(y), "log_loss": {}, "auc": {}}
            for k in inputs:
                p = models[k].inplace_predict(x[:, :k])
                row["log_loss"][k], row["auc"][k] = log_loss(y, p), auc(y, p)
                pooled[k][0].append(y)
                pooled[k][1].append(p)
            rows.append(row)
    total = {"log_loss": {}, "auc": {}}
    for k, (ys, ps) in pooled.items():
        if ys:
            y, p = np.concatenate(ys), np.concatenate(ps)
            total["log_loss"][k], total["auc"][k] = log_loss(y, p), auc(y, p)
    return {"rows": rows, "pooled": total}


def report(result: dict, inputs) -> str:
    head = (["sequence", "det", "detections"] + [f"log-loss ({k} inputs)" for k in inputs]
            + [f"AUC % ({k} inputs)" for k in inputs])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"] + [{"sequence": "pooled", "det": "", "detections": "", **result["pooled"]}]:
        cells = [str(r["sequence"]), str(r["det"]), str(r["detections"])]
        cells += [f"{r['log_loss'][k]:.3f}" for k in inputs] + [f"{100 * r['auc'][k]:.1f}" for k in inputs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from mot.sequence import discover

    parser = argparse.ArgumentParser(prog="confidence_loso", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, nargs="+", help="annotated sequences (data roots or folders)")
    parser.add_argument("--det-files", nargs="+", default=list(DET_FILES))
    parser.add_argument("--same-scene", nargs="*", default=["MOT17-09=ADL-Rundle-6"], metavar="SEQ=SEQ",
                        help="sequences of the same footage: one scene in every split")
    parser.add_argument("--inputs", nargs="+", type=int, default=[2, 3],
                        help="models with the first k inputs of the confidence model, one per k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        from mot.confidence import ConfidenceModel

        if any(not 1 <= k <= len(ConfidenceModel.FEATURES) for k in args.inputs):
            raise UserError(f"--inputs: each k must be in 1..{len(ConfidenceModel.FEATURES)}")
        paths = discover(list(args.data))
        same = labelled_items(args.same_scene, "--same-scene")
        result = held_out(paths, args.det_files, same, args.inputs, args.seed)
    except UserError as err:
        print(f"error: {err}")
        return 2
    print(report(result, args.inputs))
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1))
    return 0
