"""Command-line entry points. ``scripts/*.py`` and the console scripts call these."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path

from mot.errors import UserError

DEMO_OUT = "runs/demo"


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def labelled_items(items, option: str, bare=None) -> dict[str, str]:
    """``LABEL=VALUE`` command-line items as ``{label: value}``, in order.

    Args:
        items: the strings given to ``option``.
        option: the option's name, for the error (``"--det"``).
        bare: labels an item without ``=`` (e.g. a config path by its file stem); None: such an
            item is an error.

    Raises:
        UserError: an item without a label or value, or a label given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep and bare is not None:
            label, value = bare(item), item
        if not label or not value:
            raise UserError(f"{option} {item!r}: expected LABEL=VALUE")
        if label in out:
            raise UserError(f"{option}: label {label!r} given twice")
        out[label] = value
    return out


def _check_out_dir(out: Path) -> None:
    """Fails in one line, before any work, when the output folder cannot be made."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{out}: cannot be an output folder, {p} is a file")
            return


def _report(report, out: Path, quiet: bool = False) -> int:
    for r in report.failed:
        print(f"error: {r.error}", file=sys.stderr)
    ok = [r for r in report.runs if not r.error]
    if ok and not quiet:
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
    parser.add_argument("--resume", action="store_true", help="skip the sequences already complete in --out "
                        "(same config; their result files and scores are kept), run the rest")
    parser.add_argument("--cluster", metavar="ADDRESS", help="run the sequences on this Dask scheduler "
                        "(tcp://host:8786; needs the cluster extra); data and --out on paths the workers share")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no table: errors only "
                        "(the run's events are in OUT/run.jsonl either way)")
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
        if args.workers < 1:
            raise UserError(f"--workers must be at least 1, got {args.workers}")
        with _sigterm_as_interrupt():
            report = run(data, cfg, out, seqs=args.seqs, workers=args.workers, save_video=args.save_video,
                         resume=args.resume, cluster=args.cluster, progress=False if args.quiet else None)
    except UserError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail(f"interrupted: the finished sequences are complete in {out}; "
                     "the same command with --resume runs the rest", 130)
    return _report(report, out, quiet=args.quiet)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a batch system's stop) ends the run as Ctrl-C does: the sequence in progress drops
    its temporary file and the log says the run was interrupted."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:   # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


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
