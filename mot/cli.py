"""Command-line entry points. ``scripts/*.py`` and the console scripts call these."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mot.errors import UserError

DEMO_OUT = "runs/demo"


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _check_out_dir(out: Path) -> None:
    """Fails in one line, before any work, when the output folder cannot be made."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{out}: cannot be an output folder, {p} is a file")
            return


def _report(report, out: Path) -> int:
    for r in report.failed:
        print(f"error: {r.error}", file=sys.stderr)
    ok = [r for r in report.runs if not r.error]
    if ok:
        print(report.table())
        print(f"results in {out}")
    if report.failed:
        print(f"{len(report.failed)} of {len(report.runs)} sequences failed", file=sys.stderr)
        return 1
    return 0


def run_main(argv: list[str] | None = None) -> int:
    """``run_mot``: tracks sequences and scores them; with no arguments, runs the embedded demo."""
    parser = argparse.ArgumentParser(
        description="Track people in MOTChallenge sequences or videos and score the results. "
        "With no --data, generates and runs the embedded synthetic demo.")
    parser.add_argument("--data", help="a sequence folder, a folder of sequences, a MOT17 download or a video")
    parser.add_argument("--seqs", nargs="+", help="sequence names or shell patterns to run (default: all)")
    parser.add_argument("--config", help="a YAML file or a shipped config's name (default, iou_only, hog, ...; "
                        "default: the built-in defaults = configs/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set detector.params.file=det/det_frcnn.txt")
    parser.add_argument("--out", help=f"output folder (default: {DEMO_OUT} for the demo)")
    parser.add_argument("--workers", type=int, default=1, help="sequences run in parallel processes")
    parser.add_argument("--save-video", metavar="PATH", help="also draw the tracks on the frames: PATH.mp4 (or "
                        ".avi) for one sequence, <stem>_<SEQ>.mp4 beside it for several; a PATH without a "
                        "video extension is a folder that gets <SEQ>.mp4")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    from mot.config import load_config
    from mot.pipeline import run

    try:
        cfg = load_config(args.config, args.overrides)
        data = args.data
        out = Path(args.out or DEMO_OUT)
        if data is None:
            from mot.synthetic import ensure_demo_data
            data = ensure_demo_data(out / "data")
            print(f"demo: synthetic sequences in {data}")
        elif args.out is None:
            return _fail("--out is required with --data")
        _check_out_dir(out)
        report = run(data, cfg, out, seqs=args.seqs, workers=args.workers, save_video=args.save_video)
    except UserError as exc:
        return _fail(str(exc))
    return _report(report, out)


def evaluate_main(argv: list[str] | None = None) -> int:
    """``evaluate``: scores existing MOTChallenge result files against ground truth."""
    parser = argparse.ArgumentParser(description="Score result files <SEQ>.txt with the "
                                     "MOTChallenge protocol (CLEAR and IDF1 by motmetrics, HOTA by TrackEval).")
    parser.add_argument("--data", required=True, help="sequences with gt/gt.txt (same forms as run_mot)")
    parser.add_argument("--results", required=True, help="folder holding <SEQ>.txt result files")
    parser.add_argument("--seqs", nargs="+", help="sequence names or shell patterns (default: all)")
    parser.add_argument("--out", help="where metrics.json goes (default: the results folder)")
    args = parser.parse_args(argv)

    from mot.pipeline import evaluate

    try:
        if not Path(args.results).is_dir():
            raise UserError(f"{args.results}: results folder not found")
        _check_out_dir(Path(args.out or args.results))
        report = evaluate(args.data, args.results, args.seqs, args.out)
    except UserError as exc:
        return _fail(str(exc))
    return _report(report, Path(args.out or args.results))
