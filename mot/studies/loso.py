"""Leave-one-sequence-out study of the association ablation (iou_only, context, default).

For every sequence: the matcher of each learned config is trained on the other sequences (pairs from
all their detection files; the number of rounds chosen by leaving each of them out in turn, as the
shipped matcher is trained), then the sequence is tracked and scored on the chosen detection file.
Nothing of the left-out sequence is seen in training the matcher.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mot.errors import UserError
from mot.io import atomic_write_text


def loso(data, configs: dict[str, Path], det_file: str, train_det_files: list[str], out: Path,
         seqs: list[str] | None = None, cache: Path | None = None,
         siamese: dict[str, str] | None = None, settings=None, cv: bool = True) -> dict:
    """Runs the study.

    Args:
        siamese: Siamese weights per left-out sequence (trained without it); a sequence not named
            uses the configured (shipped) weights, which must then not have seen it.
        settings: the matcher's ``TrainSettings`` (default: the defaults).
        cv: the matchers stop at the round that is best leaving each training sequence out in turn
            (``train_matcher_cv``, as the shipped matcher is trained); otherwise the last training
            sequence is held out for early stopping.

    Returns:
        ``{sequence: {config: metrics}}``.
    """
    from mot.training.matcher_cli import collect_many
    from mot.training.matcher import TrainSettings, train_matcher, train_matcher_cv
    from mot.config import load_config
    from mot.pipeline import run
    from mot.sequence import discover

    all_paths = discover(data)
    test_paths = [p for p in discover(data, seqs) if (p / det_file).is_file()]
    table: dict = {}
    for test in test_paths:
        others = [p for p in all_paths if p != test]
        table[test.name] = {}
        for name, cfg_path in configs.items():
            overrides = [f"detector.params.file={det_file}"]
            cfg = load_config(cfg_path, overrides)
            if cfg.association.type == "learned" and test.name in (siamese or {}):
                overrides.append(f"association.params.appearance.weights={siamese[test.name]}")
                cfg = load_config(cfg_path, overrides)
            if cfg.association.type == "learned":
                features = cfg.association.params["features"]
                if cv:
                    per_seq = [collect_many([p], cfg, train_det_files, cache) for p in others]
                    matcher, _ = train_matcher_cv(features, [x for x, _ in per_seq], [y for _, y in per_seq],
                                                  settings or TrainSettings())
                else:
                    x, y = collect_many(others[:-1], cfg, train_det_files, cache)
                    xv, yv = collect_many(others[-1:], cfg, train_det_files, cache)
                    matcher, _ = train_matcher(features, x, y, xv, yv, settings or TrainSettings())
                model = out / "models" / f"{test.name}__{name}.json"
                matcher.save(model)
                cfg = load_config(cfg_path, overrides + [f"association.params.matcher={model}"])
            report = run(test, cfg, out / name / test.name)
            if report.failed:
                raise UserError(report.failed[0].error)
            table[test.name][name] = report.runs[0].score.metrics
            print(f"{test.name} {name}: " + " ".join(f"{k}={table[test.name][name][k]:.1f}"
                                                      for k in ("HOTA", "IDF1", "MOTA")), file=sys.stderr)
    return table


def add_peers(table: dict, data, det_file: str, peers: tuple[str, ...], out: Path) -> dict:
    """Adds the peer trackers to ``table``, run on the same detections, each at the score scaling
    with its best combined HOTA over the table's sequences (tuned on the test data).

    Returns:
        peer -> the scaling it is reported at, or why it did not run.
    """
    from mot.studies.peers import PEER_LABELS, run_peers

    sweep = run_peers(data, peers, det_file, seqs=list(table), out_dir=out / "peers")
    used = {}
    for peer in peers:
        best = sweep.best_scaling(peer)
        used[peer] = best or sweep.status.get(peer) or "failed"
        if best is None:
            continue
        for seq, score in sweep.scores[peer][best].items():
            if seq in table and score is not None:
                table[seq][f"{PEER_LABELS[peer]} ({best})"] = score.metrics
    return used


def markdown(table: dict, keys=("HOTA", "IDF1", "MOTA", "IDSW", "FP", "FN")) -> str:
    """One row per (left-out sequence, tracker)."""
    lines = ["| sequence | tracker | " + " | ".join(keys) + " |", "|" + "---|" * (2 + len(keys))]
    for seq, row in table.items():
        for tracker, metrics in row.items():
            cells = [f"{metrics[k]:.1f}" if isinstance(metrics.get(k), float) else str(metrics.get(k, "-"))
                     for k in keys]
            lines.append(f"| {seq} | {tracker} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="loso", description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--seqs", nargs="+", help="sequences to leave out in turn (default: all with --det-file)")
    parser.add_argument("--configs", nargs="+", default=["configs/iou_only.yaml", "configs/context.yaml",
                                                        "configs/default.yaml"])
    parser.add_argument("--det-file", default="det/det.txt", help="detections the left-out sequence is run on")
    parser.add_argument("--train-det-files", nargs="+", default=["det/det.txt", "det/det_frcnn.txt"])
    parser.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--cache", help="pair cache folder")
    parser.add_argument("--peers", nargs="*", default=["sort", "bytetrack", "ocsort"],
                        help="peer trackers (the bench extra) run on the same detections; none: skip")
    parser.add_argument("--siamese", nargs="+", default=[], metavar="SEQ=WEIGHTS",
                        help="Siamese weights trained without SEQ, used when SEQ is left out")
    parser.add_argument("--parallel-trees", type=int, default=None,
                        help="the matcher's trees per boosting round (default: TrainSettings')")
    parser.add_argument("--seed", type=int, default=0, help="the matchers' training seed")
    parser.add_argument("--stopping", choices=["cv", "last"], default="cv",
                        help="cv: stop at the best round leaving each training sequence out in turn; "
                             "last: hold out the last training sequence")
    parser.add_argument("--learning-rate", type=float, default=None, help="the matchers' eta (default: TrainSettings')")
    parser.add_argument("--monotone", choices=["on", "off"], help="monotone constraints (default: TrainSettings')")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="loso-"))
    configs = {Path(c).stem: Path(c) for c in args.configs}
    try:
        siamese = dict(item.split("=", 1) for item in args.siamese if "=" in item)
        if len(siamese) != len(args.siamese):
            raise UserError("--siamese takes SEQ=WEIGHTS items")
        from mot.training.matcher import TrainSettings
        settings = TrainSettings(seed=args.seed)
        if args.parallel_trees is not None:
            settings.parallel_trees = args.parallel_trees
        if args.learning_rate is not None:
            settings.learning_rate = args.learning_rate
        if args.monotone is not None:
            settings.monotone = args.monotone == "on"
        table = loso(args.data, configs, args.det_file, args.train_det_files, out, args.seqs,
                     Path(args.cache) if args.cache else None, siamese, settings, args.stopping == "cv")
        peers = add_peers(table, args.data, args.det_file, tuple(args.peers), out) if args.peers else {}
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_text(out / "loso.json", json.dumps({"table": table, "peers": peers}, indent=1))
    print(markdown(table))
    if peers:
        print("peers at their best score scaling on these sequences: "
              + ", ".join(f"{k}: {v}" for k, v in peers.items()))
    return 0
