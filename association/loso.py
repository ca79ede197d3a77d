"""Leave-one-sequence-out study of the association ablation (iou_only, context, default).

For every sequence: the matcher of each learned config is trained on the other sequences (pairs from
all their detection files; the last other sequence held out for early stopping), then the sequence
is tracked and scored on the chosen detection file. Nothing of the left-out sequence is seen in
training the matcher.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mot.errors import UserError


def loso(data, configs: dict[str, Path], det_file: str, train_det_files: list[str], out: Path,
         seqs: list[str] | None = None, cache: Path | None = None) -> dict:
    """Runs the study.

    Returns:
        ``{sequence: {config: metrics}}``.
    """
    from association.train_cli import collect_many
    from association.training import TrainSettings, train_matcher
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
            if cfg.association.type == "learned":
                x, y = collect_many(others[:-1], cfg, train_det_files, cache)
                xv, yv = collect_many(others[-1:], cfg, train_det_files, cache)
                matcher, _ = train_matcher(cfg.association.params["features"], x, y, xv, yv, TrainSettings())
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


def markdown(table: dict, keys=("HOTA", "IDF1", "MOTA", "IDSW")) -> str:
    configs = list(next(iter(table.values())).keys()) if table else []
    head = "| sequence | " + " | ".join(f"{c} {k}" for k in keys for c in configs) + " |"
    lines = [head, "|" + "---|" * (1 + len(keys) * len(configs))]
    for seq, row in table.items():
        cells = []
        for k in keys:
            for c in configs:
                v = row[c][k]
                cells.append(f"{v:.1f}" if isinstance(v, float) else str(v))
        lines.append(f"| {seq} | " + " | ".join(cells) + " |")
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
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="loso-"))
    configs = {Path(c).stem: Path(c) for c in args.configs}
    try:
        table = loso(args.data, configs, args.det_file, args.train_det_files, out, args.seqs,
                     Path(args.cache) if args.cache else None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (out / "loso.json").write_text(json.dumps(table, indent=1))
    print(markdown(table))
    return 0
