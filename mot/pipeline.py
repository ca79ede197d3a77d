"""Runs the tracker over sequences: detector -> association -> tracker -> results and metrics."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from association import ASSOCIATIONS
from detectors import DETECTORS
from mot.config import Config, dump_yaml
from mot.errors import UserError
from mot.evaluation import SequenceScore, combine, format_table, score_sequence
from mot.io import TrackResults, atomic_write_text, read_ground_truth, read_results, write_results
from mot.sequence import Sequence, discover, open_sequence
from mot.timing import StageTimer
from mot.tracker import TrackManager


@dataclass
class SequenceRun:
    """The outcome of one sequence: results and timing, or the one-line error that stopped it."""

    name: str
    frames: int = 0
    seconds: float = 0.0
    score: SequenceScore | None = None
    error: str | None = None
    timing: dict = field(default_factory=dict)  # StageTimer.as_dict(): seconds per stage, frames, people

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def track_sequence(seq: Sequence, cfg: Config, progress: bool = False, timer: StageTimer | None = None) -> TrackResults:
    """Tracks one sequence, streaming its frames (``timer``, if given, gets the seconds per stage).

    Returns:
        All output rows of the sequence (0-based tlwh).
    """
    detector = DETECTORS.build(cfg.detector, sequence=seq)
    association = ASSOCIATIONS.build(cfg.association, sequence=seq, runtime=cfg.runtime)
    refiner = None
    if cfg.refiner.enabled:
        from mot.refiner import build_refiner  # torch is imported only when the refiner is on
        refiner = build_refiner(cfg.refiner, cfg.runtime)
    timer = timer if timer is not None else StageTimer()
    from mot.validity import build_validity
    tracker = TrackManager(cfg.tracker, association, refiner, timer=timer, validity=build_validity(cfg.tracker))
    embedder = getattr(association, "embedder", None)
    read_images = detector.needs_image or association.needs_image or refiner is not None or tracker.needs_image
    parts = []
    frames = seq.frames(read_images=read_images, prefetch=cfg.runtime.prefetch)
    if progress:
        from tqdm import tqdm
        frames = tqdm(frames, total=seq.info.seq_length, desc=seq.name, unit="frame", leave=False)
    timer.start()
    for frame, image in frames:
        timer.lap("read")  # the wait for the frame (read ahead in a thread when prefetch > 0)
        dets = detector.detect(image, frame)
        timer.lap("detector")
        timer.count("frames", 1)
        timer.count("people", len(dets))
        parts.append(tracker.update(dets, frame, image))
        if embedder is not None:  # flow, patches, network: measured inside the association's prepare
            timer.split("prepare", embedder.timing)
        timer.start()
    parts.append(tracker.flush())
    return TrackResults.concatenate(parts)


def run_one(path: Path, cfg: Config, out_dir: Path, progress: bool = False,
            video: Path | None = None) -> SequenceRun:
    """Opens, checks, tracks and scores one sequence; a user error becomes ``SequenceRun.error``.

    With ``video`` (a video file name), the tracks are also drawn on the frames and written there.
    """
    name = path.stem if path.is_file() else path.name
    try:
        seq = open_sequence(path)
        name = seq.name
        seq.check_frames()
        gt = read_ground_truth(seq.gt_path) if seq.gt_path is not None else None
        start = time.perf_counter()
        timer = StageTimer()
        results = track_sequence(seq, cfg, progress, timer)
        seconds = time.perf_counter() - start
        result_file = out_dir / f"{name}.txt"
        write_results(result_file, results)
        frames = int(seq.info.seq_length)
        # Scored as written (2 decimals), so metrics.json always agrees with evaluate.py on the file.
        score = score_sequence(gt, read_results(result_file), frames) if gt is not None else None
        if video is not None:
            from mot.visualise import render_video
            render_video(seq, results, video, prefetch=cfg.runtime.prefetch)
        return SequenceRun(name, frames, seconds, score, timing=timer.as_dict())
    except UserError as exc:
        return SequenceRun(name, error=str(exc))


@dataclass
class RunReport:
    """Every sequence's outcome and the combined metrics."""

    runs: list[SequenceRun] = field(default_factory=list)
    combined: dict | None = None

    @property
    def failed(self) -> list[SequenceRun]:
        return [r for r in self.runs if r.error]

    def metrics_json(self) -> dict:
        ok = [r for r in self.runs if not r.error]
        frames, seconds = sum(r.frames for r in ok), sum(r.seconds for r in ok)
        per_seq = {r.name: {**(r.score.metrics if r.score else {}), "frames": r.frames,
                            "seconds": round(r.seconds, 3), "FPS": round(r.fps, 2)} for r in ok}
        combined = {**(self.combined or {}), "frames": frames, "seconds": round(seconds, 3),
                    "FPS": round(frames / seconds, 2) if seconds else 0.0}
        return {"sequences": per_seq, "combined": combined,
                "failed": {r.name: r.error for r in self.failed}}

    def table(self) -> str:
        data = self.metrics_json()
        rows = dict(data["sequences"])
        if len(rows) > 1 or not rows:
            rows["COMBINED"] = data["combined"]
        return format_table(rows, extra=("frames", "FPS"))


def run(data: str | Path, cfg: Config, out_dir: str | Path, seqs: list[str] | None = None,
        workers: int = 1, progress: bool | None = None, save_video: str | Path | None = None) -> RunReport:
    """Runs every sequence under ``data``, writes ``<SEQ>.txt``, ``config.yaml`` and ``metrics.json``.

    A sequence that fails (missing detections, bad files ...) is reported and the others still run.
    ``save_video`` also writes each sequence's tracks drawn on its frames; a video file name for one
    sequence, named per sequence as :func:`mot.visualise.video_path_for` says for several.
    """
    out_dir = Path(out_dir)
    paths = discover(data, seqs)
    videos = {p: None for p in paths}
    if save_video is not None:
        from mot.visualise import video_path_for
        videos = {p: video_path_for(save_video, p.stem if p.is_file() else p.name, len(paths) > 1) for p in paths}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", dump_yaml(cfg))
    if progress is None:
        progress = sys.stderr.isatty() and workers <= 1
    report = RunReport()
    if workers > 1 and len(paths) > 1:
        # Spawned, not forked: a child forked after PyTorch's thread pools have started in this
        # process can deadlock in them (the learned association runs the Siamese CNN).
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_one, p, cfg, out_dir, False, videos[p]) for p in paths]
            report.runs = [f.result() for f in futures]
    else:
        report.runs = [run_one(p, cfg, out_dir, progress, videos[p]) for p in paths]
    _finish(report, out_dir)
    return report


def _finish(report: RunReport, out_dir: Path) -> None:
    scored = [r.score for r in report.runs if r.score is not None]
    if scored:
        report.combined = combine(scored)
        atomic_write_text(out_dir / "metrics.json", json.dumps(report.metrics_json(), indent=2) + "\n")


def evaluate(data: str | Path, results_dir: str | Path, seqs: list[str] | None = None,
             out_dir: str | Path | None = None) -> RunReport:
    """Scores existing result files ``results_dir/<SEQ>.txt`` against the ground truth under ``data``."""
    results_dir = Path(results_dir)
    report = RunReport()
    for path in discover(data, seqs):
        name = path.name
        try:
            seq = open_sequence(path)
            name = seq.name
            if seq.gt_path is None:
                raise UserError(f"{seq.name}: no gt/gt.txt to score against")
            result_file = results_dir / f"{name}.txt"
            results = read_results(result_file) if result_file.exists() else None
            if results is None:
                raise UserError(f"{result_file}: result file not found")
            score = score_sequence(read_ground_truth(seq.gt_path), results, seq.info.seq_length)
            report.runs.append(SequenceRun(name, seq.info.seq_length, 0.0, score))
        except UserError as exc:
            report.runs.append(SequenceRun(name, error=str(exc)))
    _finish(report, Path(out_dir) if out_dir else results_dir)
    return report
