"""Leave-one-sequence-out study of the SiamRPN refiner: the tracker with the refiner off and on.

For every sequence of ``--data`` a SiamRPN model is trained without it: on the other sequences but
one (plus any ``--extra`` sequences, such as single-object ones), validated on that one (the next
in name order), then the left-out sequence is tracked on every detection file it has, with the
refiner off and on. Nothing of the left-out sequence is seen in training or in choosing the epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mot.errors import UserError
from mot.io import atomic_write_text

KEYS = ("HOTA", "MOTA", "IDF1", "FN", "FP", "IDSW")


def fold_models(paths: list[Path], extra: list[Path], out: Path, epochs: int, steps: int,
                tests: set[str], seed: int = 0) -> dict[str, Path]:
    """Trains (or reuses, if ``out/models/<SEQ>.pt`` exists) one model per left-out sequence named
    in ``tests``."""
    from mot.training.siamrpn import TrainParams, train

    models = {}
    for i, test in enumerate(paths):
        if test.name not in tests:
            continue
        val = paths[(i + 1) % len(paths)]
        train_on = [p for p in paths if p not in (test, val)] + list(extra)
        model = out / "models" / f"{test.name}.pt"
        if not model.is_file():
            model.parent.mkdir(parents=True, exist_ok=True)
            p = TrainParams(train=[str(p) for p in train_on], val=[str(val)], epochs=epochs, steps_per_epoch=steps,
                            seed=seed)
            summary = train(p, model, command=f"refiner_loso fold {test.name}", progress=False)
            print(f"{test.name}: model trained on {[p.name for p in train_on]}, val {val.name} "
                  f"IoU {summary['best_val_iou']} (epoch {summary['best_epoch']}, {summary['seconds']:.0f} s)",
                  file=sys.stderr)
        models[test.name] = model
    return models


def study(data, config: Path, det_files: list[str], out: Path, extra: list[Path], overrides: list[str],
          epochs: int = 12, steps: int = 150, seqs: list[str] | None = None, seed: int = 0) -> dict:
    """Runs the study.

    Returns:
        ``{det_file: {sequence: {"off": metrics, "on": metrics}}}``, and for a detection file that
        more than one sequence has, a ``"combined"`` row: the metrics over those sequences together,
        as the benchmarks combine them (summed counts, not means of the rows).
    """
    from mot.config import load_config
    from mot.evaluation import combine
    from mot.pipeline import run
    from mot.sequence import discover

    paths = discover(data)
    if len(paths) + len(extra) < 3 or len(paths) < 2:
        raise UserError("the study needs three or more sequences (one left out, one to validate, the rest to train "
                        f"on), or --extra ones; got {len(paths)}")
    load_config(config, ["refiner.enabled=true"] + overrides)   # a bad --set fails before any training
    tests = {p.name for p in discover(data, seqs)}
    models = fold_models(paths, extra, out, epochs, steps, tests, seed)
    table: dict = {}
    for det_file in det_files:
        tag = Path(det_file).stem
        table[det_file] = {}
        scores: dict = {"off": [], "on": []}
        for path in paths:
            if path.name not in tests or not (path / det_file).is_file():
                continue
            row = {}
            for mode in ("off", "on"):
                sets = [f"detector.params.file={det_file}"]
                if mode == "on":
                    sets += ["refiner.enabled=true", f"refiner.weights={models[path.name]}"] + overrides
                report = run(path, load_config(config, sets), out / tag / mode, progress=False)
                if report.failed:
                    raise UserError(report.failed[0].error)
                score = report.runs[0].score
                row[mode] = dict(score.metrics, GT=int(score.counts["num_objects"]))
                scores[mode].append(score)
            table[det_file][path.name] = row
            print(f"{tag} {path.name}: " + ", ".join(f"{k} {row['off'][k]:.1f} -> {row['on'][k]:.1f}"
                                                     for k in ("MOTA", "FN", "HOTA", "IDF1")), file=sys.stderr)
        if len(scores["off"]) > 1:
            table[det_file]["combined"] = {mode: dict(combine(s), GT=sum(int(x.counts["num_objects"]) for x in s))
                                           for mode, s in scores.items()}
    return table


def nested(studies: dict[str, dict], key: str = "MOTA") -> tuple[dict, dict]:
    """Settings chosen for each sequence by the other sequences (leave-one-sequence-out selection).

    Args:
        studies: ``{name: table}``, one :func:`study` table per candidate setting, all over the same
            rows (their ``"off"`` runs are the same tracker).
        key: the metric whose gain (on minus off) is averaged over the other sequences' rows, on
            every detection file; the highest mean gain wins (ties: the first candidate).

    Returns:
        ``(table, chosen)``: a :func:`study`-style table whose row for sequence S holds the "on"
        metrics of the candidate chosen without S's rows, and ``{sequence: candidate}``.
    """
    names = list(studies)
    first = studies[names[0]]
    rows = _rows(first)
    for name in names[1:]:
        other = _rows(studies[name])
        if other != rows:
            raise UserError(f"study '{name}' has other rows than '{names[0]}': {sorted(set(other) ^ set(rows))}")

    def gain(name, det, seq):
        row = studies[name][det][seq]
        return row["on"][key] - row["off"][key]

    chosen = {}
    for seq in sorted({s for _, s in rows}):
        others = [(d, s) for d, s in rows if s != seq]
        if not others:
            raise UserError("nested selection needs two or more sequences")
        means = [sum(gain(n, d, s) for d, s in others) / len(others) for n in names]
        chosen[seq] = names[means.index(max(means))]
    table = {det: {seq: {"off": row["off"], "on": studies[chosen[seq]][det][seq]["on"]}
                   for seq, row in by_seq.items() if seq != "combined"} for det, by_seq in first.items()}
    for by_seq in table.values():
        if len(by_seq) > 1:
            by_seq["combined"] = {mode: _combined_counts([r[mode] for r in by_seq.values()]) for mode in ("off", "on")}
    return table, chosen


def _rows(table: dict) -> list[tuple[str, str]]:
    """The (detection file, sequence) rows of a study table, without its combined rows."""
    return sorted((det, seq) for det, by_seq in table.items() for seq in by_seq if seq != "combined")


def _check_table(name: str, table) -> None:
    """A one-line error unless every row of a loaded study holds off and on numbers."""
    need = ("MOTA", "FN", "FP", "IDSW")
    try:
        ok = bool(table) and all(
            isinstance(row[mode][k], (int, float)) for by_seq in table.values() for row in by_seq.values()
            for mode in ("off", "on") for k in need)
    except (KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise UserError(f"{name}: not a refiner_loso.json (every row needs off and on {', '.join(need)})")


def _combined_counts(rows: list[dict]) -> dict:
    """FN, FP, IDSW and GT (ground-truth boxes) summed and MOTA over them; HOTA and IDF1 need raw
    counts, which a table does not keep. A row without GT (older studies) has it recovered from its
    MOTA, which needs some error in the row."""
    def objects(r):
        if "GT" in r:
            return r["GT"]
        errors = r["FN"] + r["FP"] + r["IDSW"]
        if r["MOTA"] >= 100:
            raise UserError("a row without its GT count and with no errors cannot be combined")
        return errors / (1 - r["MOTA"] / 100)

    out = {k: sum(r[k] for r in rows) for k in ("FN", "FP", "IDSW")}
    out["GT"] = sum(objects(r) for r in rows)
    out["MOTA"] = 100 * (1 - (out["FN"] + out["FP"] + out["IDSW"]) / out["GT"]) if out["GT"] else 0.0
    return out


def markdown(table: dict) -> str:
    """One row per (detection file, sequence): off -> on."""
    lines = ["| det | sequence | " + " | ".join(KEYS) + " |", "|" + "---|" * (2 + len(KEYS))]
    for det_file, rows in table.items():
        for seq, row in rows.items():
            cells = []
            for k in KEYS:
                a, b = row["off"].get(k), row["on"].get(k)
                fmt = (lambda v: f"{v:.1f}") if isinstance(a, float) else str
                cells.append("-" if a is None else f"{fmt(a)} -> {fmt(b)}")
            lines.append(f"| {Path(det_file).stem} | {seq} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="refiner_loso", description=__doc__)
    parser.add_argument("--nested", nargs="+", metavar="JSON",
                        help="instead: choose among finished studies (their refiner_loso.json; several of the same "
                             "settings, such as seeds, are averaged) for each sequence by the others' mean MOTA "
                             "gain, and print the chosen rows")
    parser.add_argument("--data", help="annotated MOT sequences (each is left out in turn)")
    parser.add_argument("--extra", nargs="*", default=[], help="more training sequences (SOT or MOT), never tested")
    parser.add_argument("--config", default="configs/iou_only.yaml", help="the tracker the refiner is added to")
    parser.add_argument("--det-files", nargs="+", default=["det/det.txt", "det/det_frcnn.txt"])
    parser.add_argument("--seqs", nargs="+", help="sequences to leave out and test (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="refiner settings for the 'on' runs, e.g. refiner.carry_min_agreement=0.5")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=150, help="steps per epoch")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the fold models")
    parser.add_argument("--out", help="working folder (fold models are reused from out/models)")
    args = parser.parse_args(argv)
    if args.nested:
        return _nested_main(args.nested)
    if not args.data or not args.out:
        parser.error("--data and --out are required (or --nested)")
    out = Path(args.out)
    try:
        table = study(args.data, Path(args.config), args.det_files, out, [Path(p) for p in args.extra],
                      args.overrides, args.epochs, args.steps, args.seqs, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_text(out / "refiner_loso.json", json.dumps({"overrides": args.overrides, "table": table}, indent=1))
    print(markdown(table))
    return 0


def average(tables: list[dict]) -> dict:
    """The mean of :func:`study` tables over the same rows (for example one per training seed)."""
    first = tables[0]
    for t in tables[1:]:
        if _rows(t) != _rows(first):
            raise UserError("studies of the same settings have other rows")
    return {det: {seq: {mode: {k: sum(t[det][seq][mode][k] for t in tables) / len(tables)
                               for k in row[mode]
                               if all(isinstance(t[det][seq][mode].get(k), (int, float)) for t in tables)}
                        for mode in ("off", "on")}
                  for seq, row in by_seq.items() if seq != "combined"}
            for det, by_seq in first.items()}


def _nested_main(files: list[str]) -> int:
    try:
        groups: dict[str, list] = {}
        for f in files:
            try:
                doc = json.loads(Path(f).read_text())
                name, table = " ".join(doc["overrides"]) or "defaults", doc["table"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{f}: not a refiner_loso.json ({exc})") from None
            _check_table(f, table)
            groups.setdefault(name, []).append(table)
        studies = {name: average(tables) for name, tables in groups.items()}
        table, chosen = nested(studies)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, tables in groups.items():
        print(f"{name}: {len(tables)} stud{'y' if len(tables) == 1 else 'ies'} (seeds) averaged")
    for seq, name in chosen.items():
        print(f"{seq}: {name}")
    print(markdown(table))
    return 0
