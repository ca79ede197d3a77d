"""The benchmark (issue 6): our configs and the peer trackers on the same detections, accuracy and speed.

:func:`benchmark` runs each of our configs through :func:`mot.pipeline.run` (per-stage seconds from
its :class:`mot.timing.StageTimer`), the peers through :func:`mot.studies.peers.run_peers` on the same
detection file, the density curve on generated 1080p sequences, and returns one JSON-ready dict
that :func:`mot.studies.report.write_report` turns into Markdown, PNG plots and JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from mot.errors import UserError

#: Our configs run by default, relative to the repository (the issue's "default, context, iou_only").
DEFAULT_CONFIGS = ("configs/default.yaml", "configs/context.yaml", "configs/iou_only.yaml")
#: People per frame of the density curve, and its frame size.
DENSITY_PEOPLE = (10, 50, 150)
DENSITY_SIZE = (1920, 1080)


def machine() -> dict:
    """The machine the numbers come from: CPU model, cores, load, library versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    import numpy
    import torch
    return {"cpu": model, "cores": os.cpu_count(), "load_average_1_5_15min": load,
            "python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
            "platform": platform.platform()}


def _our_config(path: str, det_file: str, threads: int, overrides: list[str]):
    """Loads one of our configs, on CPU with ``threads`` torch threads, on ``det_file`` if it reads
    public detections."""
    from mot.config import load_config
    base = list(overrides) + ["runtime.device=cpu", f"runtime.torch_threads={threads}"]
    cfg = load_config(path, base)
    if cfg.detector.type == "public":
        cfg = load_config(path, base + [f"detector.params.file={det_file}"])
    return cfg


def speed_summary(timings: list[dict], frames: int, seconds: float) -> dict:
    """ms per frame per stage, frames per second and people (detections) per frame of a set of runs.

    Args:
        timings: :meth:`StageTimer.as_dict` of each run.
        frames: frames over all runs; seconds: their wall-clock seconds end to end.
    """
    stage_s: dict[str, float] = {}
    people = 0
    for t in timings:
        for k, v in t.get("seconds", {}).items():
            stage_s[k] = stage_s.get(k, 0.0) + v
        people += t.get("counts", {}).get("people", 0)
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds else 0.0,
            "people_per_frame": round(people / frames, 1) if frames else 0.0,
            "ms_per_frame": {k: round(1000 * v / frames, 3) for k, v in stage_s.items()} if frames else {}}


def run_ours(data, configs: dict, out_dir: Path, seqs, log) -> dict:
    """Each config through the pipeline: metrics per sequence, combined, failures and speed.

    Args:
        configs: name -> (file, loaded :class:`mot.config.Config`).
    """
    from mot.pipeline import run
    out = {}
    for name, (path, cfg) in configs.items():
        log(f"ours: {name}")
        folder = out_dir / "ours" / name
        for stale in [*folder.glob("*.txt"), folder / "metrics.json"]:  # an earlier run's, not this one's
            stale.unlink(missing_ok=True)
        report = run(data, cfg, out_dir / "ours" / name, seqs=seqs, progress=False)
        ok = [r for r in report.runs if not r.error]
        data_json = report.metrics_json()
        out[name] = {"config": str(path), "detector": cfg.detector.type, "association": cfg.association.type,
                     "combined": report.combined, "sequences": data_json["sequences"],
                     "failed": data_json["failed"],
                     "speed": speed_summary([getattr(r, "timing", {}) for r in ok], sum(r.frames for r in ok),
                                            sum(r.seconds for r in ok))}
    return out


def density_curve(config: str, out_dir: Path, people=DENSITY_PEOPLE, frames: int = 20, repeats: int = 3,
                  threads: int = 1, overrides: list[str] = (), log=print, cfg=None) -> dict:
    """Our pipeline on generated 1920x1080 sequences with ``people`` persons per frame, on CPU.

    Each sequence is tracked ``repeats`` times; the medians over the repeats are reported. ``cfg``:
    the config already loaded from ``config`` (else it is loaded here).
    """
    from mot.pipeline import track_sequence
    from mot.sequence import open_folder
    from mot.synthetic import SyntheticSpec, generate_sequence
    from mot.timing import StageTimer

    cfg = cfg or _our_config(config, "det/det.txt", threads, list(overrides))
    w, h = DENSITY_SIZE
    rows = []
    for n in people:
        spec = SyntheticSpec(name=f"DENSE-{n:03d}", num_frames=frames, width=w, height=h, num_people=n,
                             height_range=(0.08, 0.16), stay=True, seed=1000 + n, false_alarms=0.0)
        folder = out_dir / "density" / "data" / spec.name
        if not (folder / "seqinfo.ini").is_file():
            log(f"density: generating {n} people x {frames} frames at {w}x{h}")
            generate_sequence(folder.parent, spec)
        seq = open_folder(folder)
        fps, stages, people_seen = [], {}, 0.0
        for r in range(repeats):
            log(f"density: {n} people, run {r + 1}/{repeats}")
            timer = StageTimer()
            start = time.perf_counter()
            try:
                track_sequence(seq, cfg, timer=timer)
            except UserError as exc:  # the config cannot run (a missing model ...): reported, not fatal
                return {"config": str(config), "error": str(exc), "rows": [], "frames": frames,
                        "repeats": repeats, "threads": threads}
            wall = time.perf_counter() - start
            s = speed_summary([timer.as_dict()], frames, wall)
            fps.append(s["fps"])
            people_seen = s["people_per_frame"]
            for k, v in s["ms_per_frame"].items():
                stages.setdefault(k, []).append(v)
        rows.append({"people": n, "detections_per_frame": people_seen, "fps": statistics.median(fps),
                     "fps_runs": fps, "ms_per_frame": {k: round(statistics.median(v), 3) for k, v in stages.items()}})
    return {"config": str(config), "frames": frames, "repeats": repeats, "size": [w, h], "threads": threads,
            "rows": rows}


def detector_costs(config_dir: Path | None = None, repeats: int = 3, log=print) -> dict:
    """Per-detector cost (ms per ``detect`` call at 768x576 and 1920x1080) from ``mot/studies/detector_speed.py``.

    One row per image detector that a config in ``config_dir`` (default: the shipped
    ``configs/``) uses, with that config's params; a detector that cannot be built (a placeholder
    model path ...) gets its one-line error. OpenCV keeps its default thread count.

    Returns:
        ``{"status": "ok", "rows": [{"detector", "config", "<W>x<H> ms", ...}]}``.
    """
    from importlib import resources

    from mot.config import load_config
    from mot.studies.detector_speed import detector_cost
    config_dir = Path(config_dir) if config_dir else Path(str(resources.files("mot.configs")))
    rows, seen = [], set()
    for path in sorted(config_dir.glob("*.yaml")):
        try:
            det = load_config(path).detector
        except UserError:
            continue
        key = (det.type, json.dumps(det.params, sort_keys=True, default=str))   # one row per distinct detector
        if det.type in ("public", "gt") or key in seen:
            continue
        seen.add(key)
        log(f"detector cost: {det.type} ({path.name})")
        row = {"detector": det.type, "config": path.name}
        try:
            row.update({f"{size} ms": round(ms, 1) for size, ms in
                        detector_cost(det.type, det.params, repeats=repeats).items()})
        except UserError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return {"status": "ok", "rows": rows}


def benchmark(data, out_dir, configs=DEFAULT_CONFIGS, peers=None, det_file: str = "det/det.txt", seqs=None,
              scalings=None, peer_python: str | None = None, density=DENSITY_PEOPLE, density_frames: int = 20,
              repeats: int = 3, threads: int = 1, overrides: list[str] = (), detectors: bool = True,
              density_config: str | None = None, reuse_peers: str | None = None, log=print) -> dict:
    """Runs everything and returns the report data (see :mod:`mot.studies.report`).

    The density curve runs ``density_config`` (default: the first of ``configs``); ``detectors=False``
    skips timing the image detectors; ``reuse_peers`` (an earlier ``report.json`` on the same data and
    detections) takes the peers' results from there instead of running them again.
    """
    from mot.studies import peers as peer_mod
    out_dir = Path(out_dir)
    density_config = density_config or configs[0]
    for c in list(configs) + [density_config]:
        if not Path(c).is_file():
            raise UserError(f"{c}: config file not found")
    # Every input is read before any work: files edited while the benchmark runs change nothing in it.
    loaded = {Path(c).stem: (str(c), _our_config(c, det_file, threads, list(overrides))) for c in configs}
    density_cfg = _our_config(density_config, "det/det.txt", threads, list(overrides)) if density else None
    earlier = _earlier_peers(reuse_peers, data, det_file) if reuse_peers else None
    started = time.perf_counter()
    result = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "data": str(data),
              "det_file": det_file, "machine": machine()}
    result["ours"] = run_ours(data, loaded, out_dir, seqs, log)
    chosen = tuple(peer_mod.PEERS if peers is None else peers)
    if reuse_peers:
        result["peers"] = earlier
    elif chosen:
        sweep = peer_mod.run_peers(data, chosen, det_file, tuple(scalings or peer_mod.SCALINGS), seqs, peer_python,
                                   out_dir / "peers", log=log)
        result["peers"] = sweep.to_json()
    else:
        result["peers"] = None
    result["density"] = (density_curve(density_config, out_dir, density, density_frames, repeats, threads,
                                       overrides, log, density_cfg) if density else None)
    result["detector_costs"] = detector_costs(log=log) if detectors else {"status": "not measured (--no-detector-cost)"}
    result["machine"]["load_average_at_end"] = machine()["load_average_1_5_15min"]
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _earlier_peers(path: str, data, det_file: str) -> dict:
    """The peers section of an earlier report, checked to be on the same data and detections."""
    import json
    try:
        old = json.loads(Path(path).read_text())
        peers, old_data, old_det = old["peers"], old["data"], old["det_file"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a benchmark report.json with peer results") from None
    if peers is None or Path(old_data).resolve() != Path(data).resolve() or old_det != det_file:
        raise UserError(f"{path}: its peers ran on {old_data} {old_det}, not {data} {det_file}")
    # Where the numbers come from (and when: their speed was measured under that run's load).
    return dict(peers, reused_from=peers.get("reused_from") or f"{path} (run of {old.get('started')})")


def main(argv: list[str] | None = None) -> int:
    """``scripts/benchmark.py``: runs the benchmark and writes the report; 0 ok, 1 some sequences failed,
    2 bad arguments."""
    from mot.studies import peers as peer_mod
    p = argparse.ArgumentParser(prog="benchmark", description="Our configs and peer trackers (SORT, ByteTrack, "
                                "OC-SORT, BoT-SORT, DeepSORT) on the same detections: accuracy, speed, report.")
    p.add_argument("--data", required=True, help="a folder of MOTChallenge sequences (with gt/gt.txt)")
    p.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), help="our configs (YAML)")
    p.add_argument("--out", default="runs/bench", help="output folder (report.md, report.json, PNGs)")
    p.add_argument("--seqs", nargs="+", help="sequence names or patterns (default: all)")
    p.add_argument("--det-file", default="det/det.txt", help="detections, relative to each sequence folder")
    p.add_argument("--peers", nargs="*", default=list(peer_mod.PEERS), help="peers to run (none: no peers)")
    p.add_argument("--scalings", nargs="+", default=list(peer_mod.SCALINGS), help="score scalings swept")
    p.add_argument("--peer-python", help=f"interpreter with deep-sort-realtime (default ${peer_mod.PEER_PYTHON_ENV})")
    p.add_argument("--density", nargs="*", type=int, default=list(DENSITY_PEOPLE),
                   help="people per frame of the density curve (none: skip it)")
    p.add_argument("--density-frames", type=int, default=20, help="frames per density sequence")
    p.add_argument("--density-config", help="the config of the density curve (default: the first of --configs)")
    p.add_argument("--repeats", type=int, default=3, help="runs per density point (medians)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for our pipeline")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value in all our configs")
    p.add_argument("--detector-cost", action=argparse.BooleanOptionalAction, default=True,
                   help="time the image detectors of configs/*.yaml (HOG at 1080p takes a while)")
    p.add_argument("--reuse-peers", metavar="REPORT_JSON", help="take the peers from an earlier report.json "
                   "(same data and detections) instead of running them")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    from mot.studies.report import write_report

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        unknown = sorted(set(args.peers) - set(peer_mod.PEERS) - {"none"})
        if unknown:
            raise UserError(f"unknown peer {unknown[0]!r} (valid: {', '.join(peer_mod.PEERS)}, none)")
        if args.repeats < 1 or args.density_frames < 2 or args.threads < 1:
            raise UserError("--repeats and --threads must be >= 1, --density-frames >= 2")
        result = benchmark(args.data, args.out, args.configs, [x for x in args.peers if x != "none"], args.det_file,
                           args.seqs, args.scalings, args.peer_python, args.density, args.density_frames,
                           args.repeats, args.threads, args.overrides, args.detector_cost, args.density_config,
                           args.reuse_peers, log)
        report = write_report(result, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = failures(result)
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"report: {report}")
    return 1 if failed else 0


def failures(result: dict) -> list[str]:
    """Every failure the report lists, one line each (sequences that could not run, peers that failed)."""
    lines = [f"{name}: {err if err.startswith(seq) else f'{seq}: {err}'}"
             for name, r in result["ours"].items() for seq, err in r["failed"].items()]
    if (result.get("density") or {}).get("error"):
        lines.append(f"density: {result['density']['error']}")
    if result.get("peers"):
        lines += [f"peers: {err}" for err in result["peers"]["failed"].values()]
        lines += [f"{p}: {err}" for p, r in result["peers"]["peers"].items() for err in r["failed"].values()]
    return lines
