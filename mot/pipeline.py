"""Runs the tracker over sequences: detector -> association -> tracker -> results and metrics."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from detectors import DETECTORS
from mot.config import Config, dump_yaml
from mot.errors import UserError
from mot.evaluation import SequenceScore, combine, format_table, score_sequence
from mot import runtime
from mot.api import Tracker, output_delay
from mot.io import ResultWriter, TrackResults, atomic_write_text, read_ground_truth, read_results
from mot.sequence import Sequence, discover, open_sequence
from mot.timing import StageTimer


@dataclass
class SequenceRun:
    """The outcome of one sequence: results and timing, or the one-line error that stopped it."""

    name: str
    frames: int = 0
    seconds: float | None = 0.0   # None: not timed (scoring files made elsewhere)
    score: SequenceScore | None = None
    error: str | None = None
    timing: dict = field(default_factory=dict)  # StageTimer.as_dict(): seconds per stage, frames, people

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


def track_frames(seq: Sequence, cfg: Config, progress: bool = False,
                 timer: StageTimer | None = None) -> Iterator[tuple[int, TrackResults]]:
    """Tracks one sequence, streaming its frames, on the public :class:`mot.Tracker`.

    Yields:
        ``(frame, rows)`` after each frame: the rows that became final then (this frame's tracks
        and up to ``output_delay(cfg)`` frames of delayed ones; 0-based tlwh), and once more at
        the end what the tracker still held. ``timer``, if given, gets the seconds per stage.
    """
    timer = timer if timer is not None else StageTimer()
    detector = DETECTORS.build(cfg.detector, sequence=seq)
    tracker = Tracker(seq.info.frame_rate, cfg, timer=timer)
    embedder = getattr(tracker._association, "embedder", None)
    frames = seq.frames(read_images=detector.needs_image or tracker.needs_image, prefetch=cfg.runtime.prefetch)
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
        now = tracker.update(dets, image, frame)
        if embedder is not None:  # flow, patches, network: measured inside the association's prepare
            timer.split("prepare", embedder.timing)
        yield frame, TrackResults.concatenate([tracker.late(), now])
        timer.start()
    yield tracker.frame, tracker.flush()   # what the tracker still held at the end


def track_sequence(seq: Sequence, cfg: Config, progress: bool = False, timer: StageTimer | None = None) -> TrackResults:
    """All output rows of one sequence (0-based tlwh), sorted by frame and id."""
    return TrackResults.concatenate([rows for _, rows in track_frames(seq, cfg, progress, timer)]).sorted()


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
        result_file = out_dir / f"{name}.txt"
        with ResultWriter(result_file, output_delay(cfg)) as writer:   # streamed; in place when complete
            for frame, rows in track_frames(seq, cfg, progress, timer):
                writer.add(rows, frame)
        seconds = time.perf_counter() - start
        frames = int(seq.info.seq_length)
        # Scored as written (2 decimals), so metrics.json always agrees with evaluate.py on the file.
        results = read_results(result_file) if gt is not None or video is not None else None
        score = score_sequence(gt, results, frames) if gt is not None else None
        if video is not None:
            from mot.visualise import render_video
            render_video(seq, results, video, prefetch=cfg.runtime.prefetch)
        return SequenceRun(name, frames, seconds, score, timing=timer.as_dict())
    except UserError as exc:
        return SequenceRun(name, error=str(exc))


def _speed(frames: int, seconds: float | None) -> dict:
    """``seconds`` and ``FPS`` of a timed run; nothing for an untimed one (scoring files only)."""
    if seconds is None:
        return {}
    return {"seconds": round(seconds, 3), "FPS": round(frames / seconds, 2) if seconds else None}


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
        frames = sum(r.frames for r in ok)
        timed = all(r.seconds is not None for r in ok)
        seconds = sum(r.seconds for r in ok) if timed else None
        per_seq = {r.name: {**(r.score.metrics if r.score else {}), "frames": r.frames, **_speed(r.frames, r.seconds)}
                   for r in ok}
        combined = {**(self.combined or {}), "frames": frames, **_speed(frames, seconds)}
        return {"sequences": per_seq, "combined": combined,
                "failed": {r.name: r.error for r in self.failed}}

    def table(self) -> str:
        data = self.metrics_json()
        rows = dict(data["sequences"])
        if len(rows) > 1 or not rows:
            rows["COMBINED"] = data["combined"]
        timed = any("FPS" in m for m in rows.values())
        return format_table(rows, extra=("frames", "FPS") if timed else ("frames",))


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
    workers = min(workers, len(paths))
    threads = runtime.threads_for(cfg.runtime.torch_threads, workers)
    if workers > 1:
        # Spawned, not forked: a child forked after PyTorch's thread pools have started in this
        # process can deadlock in them (the learned association runs the Siamese CNN).
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=runtime.configure, initargs=(threads,)) as pool:
            futures = [pool.submit(run_one, p, cfg, out_dir, False, videos[p]) for p in paths]
            report.runs = [f.result() for f in futures]
    else:
        runtime.configure(threads)
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
            report.runs.append(SequenceRun(name, seq.info.seq_length, None, score))
        except UserError as exc:
            report.runs.append(SequenceRun(name, error=str(exc)))
    _finish(report, Path(out_dir) if out_dir else results_dir)
    return report
