"""Runs the tracker over sequences: detector -> association -> tracker -> results and metrics."""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from detectors import DETECTORS
from mot.config import Config, dump_yaml
from mot.errors import UserError
from mot.evaluation import SequenceScore, combine, format_table, score_sequence
from mot import runtime
from mot.api import Tracker, output_delay
from mot.io import ResultWriter, TrackResults, atomic_write_text, read_ground_truth, read_results
from mot import records
from mot.runlog import Progress, Reporter, RunLog
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
    rows: int = 0                 # rows written to the result file
    max_rss_mb: float | None = None   # the peak memory of the process that ran it, when it finished
    skipped: bool = False         # complete already in the output folder (--resume): read, not run

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


def track_frames(seq: Sequence, cfg: Config, progress: bool | Callable[[int], None] = False,
                 timer: StageTimer | None = None, masks: Callable | None = None) -> Iterator[tuple[int, TrackResults]]:
    """Tracks one sequence, streaming its frames, on the public :class:`mot.Tracker`.

    Yields:
        ``(frame, rows)`` after each frame: the rows that became final then (this frame's tracks
        and up to ``output_delay(cfg)`` frames of delayed ones; 0-based tlwh), and once more at
        the end what the tracker still held. ``timer``, if given, gets the seconds per stage.
        ``progress``: True for a bar on stderr, or a function called with each frame's number (a
        worker's report to the run's progress bars). ``masks`` (``refiner.mask``), if given, is
        called as ``masks(rows, row_masks, frame, image_hw)`` before each yield, with the rows' masks
        (``mot.masks.PastedMask`` or None each).
    """
    timer = timer if timer is not None else StageTimer()
    tracker = Tracker(seq.info.frame_rate, cfg, timer=timer)
    if tracker.adapts:   # a first pass with the model as shipped; its confident tracklets adapt it
        timer.start()
        first = track_sequence(seq, without_adaptation(cfg))
        learned = tracker.adapt(first, seq.frames(prefetch=cfg.runtime.prefetch))
        timer.lap("adaptation")
        for key in ("pairs", "tracks", "steps"):
            timer.count(f"adaptation_{key}", learned[key])
    detector = DETECTORS.build(cfg.detector, sequence=seq)
    embedder = getattr(tracker.association, "embedder", None)
    frames = seq.frames(read_images=detector.needs_image or tracker.needs_image, prefetch=cfg.runtime.prefetch)
    report = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm
        frames = tqdm(frames, total=seq.info.seq_length, desc=seq.name, unit="frame", leave=False)
    timer.start()
    image_hw = None
    for frame, image in frames:
        timer.lap("read")  # the wait for the frame (read ahead in a thread when prefetch > 0)
        dets = detector.detect(image, frame)
        timer.lap("detector")
        timer.count("frames", 1)
        timer.count("people", len(dets))
        now = tracker.update(dets, image, frame)
        if embedder is not None:  # flow, patches, network: measured inside the association's prepare
            timer.split("prepare", embedder.timing)
        rows = TrackResults.concatenate([tracker.late(), now])
        if masks is not None:
            image_hw = image.shape[:2] if image is not None else image_hw
            masks(rows, tracker.masks(rows), frame, image_hw)
        yield frame, rows
        if report is not None:
            report(frame)
        timer.start()
    rows = tracker.flush()   # what the tracker still held at the end
    if masks is not None:
        masks(rows, tracker.masks(rows), tracker.frame, image_hw)
    yield tracker.frame, rows


def without_adaptation(cfg: Config) -> Config:
    """``cfg`` with scene adaptation off (the first pass of an adapted run)."""
    plain = copy.deepcopy(cfg)
    plain.association.params["adaptation"] = dict(plain.association.params.get("adaptation") or {}, enabled=False)
    return plain


def track_sequence(seq: Sequence, cfg: Config, progress: bool = False, timer: StageTimer | None = None) -> TrackResults:
    """All output rows of one sequence (0-based tlwh), sorted by frame and id."""
    return TrackResults.concatenate([rows for _, rows in track_frames(seq, cfg, progress, timer)]).sorted()


def run_one(path: Path, cfg: Config, out_dir: Path, progress: bool | Callable[[int], None] = False,
            video: Path | None = None, config_sha256: str | None = None) -> SequenceRun:
    """Opens, checks, tracks and scores one sequence; a user error becomes ``SequenceRun.error``.

    Writes ``out_dir/<SEQ>.txt`` (streamed, put in place when complete), then its record
    ``<SEQ>.metrics.json`` (:mod:`mot.records`; with ``config_sha256``, the run's config digest).
    With ``refiner.mask``, also ``out_dir/<SEQ>.masks.txt`` (MOTS text, :mod:`mot.masks`), alike.
    With ``video`` (a video file name), the tracks are also drawn on the frames and written there
    (their masks shaded when there are masks).
    """
    name = path.stem if path.is_file() else path.name
    config_sha256 = config_sha256 or records.text_digest(dump_yaml(cfg))
    try:
        seq = open_sequence(path)
        name = seq.name
        records.record_path(out_dir, name).unlink(missing_ok=True)   # the old record no longer vouches
        seq.check_frames()
        gt = read_ground_truth(seq.gt_path) if seq.gt_path is not None else None
        start = time.perf_counter()
        timer = StageTimer()
        result_file = out_dir / f"{name}.txt"
        rows = 0
        mask_file = out_dir / f"{name}.masks.txt" if cfg.refiner.mask else None
        with contextlib.ExitStack() as stack:   # streamed; each file in place when complete
            writer = stack.enter_context(ResultWriter(result_file, output_delay(cfg)))
            sink = None
            if mask_file is not None:
                from mot.masks import MaskWriter
                mask_writer = stack.enter_context(MaskWriter(mask_file, output_delay(cfg)))

                def sink(found, found_masks, frame, image_hw):
                    mask_writer.add(found.frames, found.ids, found.tlwh, found_masks, frame, image_hw)
            for frame, found in track_frames(seq, cfg, progress, timer, masks=sink):
                writer.add(found, frame)
                rows += len(found)
        seconds = time.perf_counter() - start
        frames = int(seq.info.seq_length)
        # Scored as written (2 decimals), so metrics.json always agrees with evaluate.py on the file.
        results = read_results(result_file) if gt is not None or video is not None else None
        score = score_sequence(gt, results, frames) if gt is not None else None
        if video is not None:
            from mot.visualise import render_video
            render_video(seq, results, video, prefetch=cfg.runtime.prefetch, masks=mask_file)
        run = SequenceRun(name, frames, seconds, score, timing=timer.as_dict(), rows=rows, max_rss_mb=_max_rss_mb())
        records.write_record(out_dir, name, {
            "sequence": name, "frames": frames, "seconds": seconds, "rows": rows, "timing": run.timing,
            "score": records.score_to_json(score), "config_sha256": config_sha256,
            "results_sha256": records.file_digest(result_file)})
        return run
    except UserError as exc:
        return SequenceRun(name, error=str(exc))


def _max_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:   # not on Windows
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux (bytes on macOS)
    return round(kib / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def _run_task(threads: int, path: Path, cfg: Config, out_dir: Path, channel, total: int,
              video: Path | None, config_sha256: str) -> SequenceRun:
    """One sequence in a worker process (a local pool's or a cluster's): threads set first."""
    runtime.configure(threads)
    name = path.stem if path.is_file() else path.name
    report = Reporter(channel, name, total) if channel is not None else False
    return run_one(path, cfg, out_dir, report, video, config_sha256)


def _from_record(record: dict) -> SequenceRun:
    """A complete sequence read back from its record (``--resume``)."""
    return SequenceRun(record["sequence"], int(record["frames"]), float(record["seconds"]),
                       records.score_from_json(record["score"]), timing=record.get("timing", {}),
                       rows=int(record.get("rows", 0)), skipped=True)


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
        workers: int = 1, progress: bool | None = None, save_video: str | Path | None = None,
        resume: bool = False, cluster: str | None = None) -> RunReport:
    """Runs every sequence under ``data``, writes ``<SEQ>.txt``, ``config.yaml`` and ``metrics.json``.

    A sequence that fails (missing detections, bad files ...) is reported and the others still run.
    ``save_video`` also writes each sequence's tracks drawn on its frames; a video file name for one
    sequence, named per sequence as :func:`mot.visualise.video_path_for` says for several.

    Args:
        workers: sequences run at once in local processes (1: in this process).
        progress: progress bars on stderr (default: when stderr is a terminal).
        resume: skip the sequences that are complete in ``out_dir`` for this config
            (:mod:`mot.records`); ``out_dir/config.yaml`` must then be this config.
        cluster: a Dask scheduler's address: the sequences run there as tasks (``workers`` is
            ignored); the data and ``out_dir`` must be on paths the workers share.

    Every event goes to ``out_dir/run.jsonl`` (:class:`mot.runlog.RunLog`). ``metrics.json`` is
    removed at the start and written at the end from every sequence's record, so it always
    describes the result files beside it.
    """
    if cfg.refiner.mask:   # fail before any work, not once per sequence
        from mot.masks import require_pycocotools
        require_pycocotools()
    out_dir = Path(out_dir).resolve() if cluster else Path(out_dir)
    paths = [p.resolve() for p in discover(data, seqs)] if cluster else discover(data, seqs)
    names = [p.stem if p.is_file() else p.name for p in paths]
    videos = {p: None for p in paths}
    if save_video is not None:
        from mot.visualise import video_path_for
        videos = {p: video_path_for(save_video, n, len(paths) > 1) for p, n in zip(paths, names)}
    config_text = dump_yaml(cfg)
    config_sha256 = records.text_digest(config_text)
    config_file = out_dir / "config.yaml"
    if resume and config_file.is_file() and config_file.read_text() != config_text:
        raise UserError(f"{config_file}: the output folder was made with another config; --resume needs the "
                        "same config (or use another --out)")
    out_dir.mkdir(parents=True, exist_ok=True)
    records.remove_partial(out_dir, names)
    (out_dir / "metrics.json").unlink(missing_ok=True)
    atomic_write_text(config_file, config_text)
    log = RunLog(out_dir)
    runs: dict[int, SequenceRun] = {}
    for i, (path, name) in enumerate(zip(paths, names)):
        record = records.read_complete(out_dir, name, config_sha256, out_dir / f"{name}.txt", videos[path]) \
            if resume else None
        if record is not None and cfg.refiner.mask and not (out_dir / f"{name}.masks.txt").is_file():
            record = None   # the masks of a complete run are part of it
        if record is not None:
            runs[i] = _from_record(record)
    todo = [i for i in range(len(paths)) if i not in runs]
    log.event("run_start", data=str(data), out=str(out_dir), sequences=names, to_run=[names[i] for i in todo],
              workers=workers, cluster=cluster, resume=resume, config_sha256=config_sha256)
    for i in sorted(runs):
        log.event("sequence_skipped", sequence=names[i], reason="complete", frames=runs[i].frames)
    if progress is None:
        progress = sys.stderr.isatty()
    bars = Progress(len(todo), None, progress)
    start = time.perf_counter()
    try:
        for i, outcome in _execute(paths, names, todo, cfg, out_dir, videos, workers, cluster, config_sha256,
                                   bars, log):
            runs[i] = outcome
            bars.sequence_done(outcome.name, outcome.frames)
            _log_outcome(log, outcome)
    except KeyboardInterrupt:
        log.event("run_interrupted", done=[runs[i].name for i in sorted(runs)],
                  seconds=round(time.perf_counter() - start, 3))
        raise
    finally:
        bars.close()
    report = RunReport(runs=[runs[i] for i in range(len(paths))])
    _finish(report, out_dir)
    log.event("run_end", done=sum(not r.error and not r.skipped for r in report.runs),
              skipped=sum(r.skipped for r in report.runs), failed=len(report.failed),
              seconds=round(time.perf_counter() - start, 3))
    return report


def _execute(paths, names, todo, cfg, out_dir, videos, workers, cluster, config_sha256, bars, log):
    """Runs the sequences ``todo`` (indices) here, in a local pool or on a cluster.

    Yields:
        ``(index, SequenceRun)`` as sequences finish; a worker that died becomes the error of the
        sequences it left undone.
    """
    if not todo:
        return
    totals = {i: _frame_count(paths[i]) for i in todo}
    if cluster:
        from mot.cluster import ClusterRunner
        runner = ClusterRunner(cluster)
        try:
            channel = runner.channel(bars.put) if bars.enabled else None
            threads = runtime.threads_for(cfg.runtime.torch_threads or 1)
            tasks = [(threads, paths[i], cfg, out_dir, channel, totals[i], videos[paths[i]], config_sha256)
                     for i in todo]
            for i in todo:
                log.event("sequence_start", sequence=names[i])
            for k, result in runner.map(_run_task, tasks, [names[i] for i in todo]):
                yield todo[k], _as_run(result, names[todo[k]])
        finally:
            runner.close()
        return
    workers = max(1, min(workers, len(todo)))
    threads = runtime.threads_for(cfg.runtime.torch_threads, workers)
    if workers == 1:
        runtime.configure(threads)
        for i in todo:
            log.event("sequence_start", sequence=names[i])
            report = Reporter(bars, names[i], totals[i]) if bars.enabled else False
            yield i, run_one(paths[i], cfg, out_dir, report, videos[paths[i]], config_sha256)
        return
    # Spawned, not forked: a child forked after PyTorch's thread pools have started in this
    # process can deadlock in them (the learned association runs the Siamese CNN).
    context = multiprocessing.get_context("spawn")
    manager = context.Manager() if bars.enabled else None
    channel = manager.Queue() if manager is not None else None
    bars.drain(channel)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finished = False
    try:
        futures = {}
        for i in todo:
            log.event("sequence_start", sequence=names[i])
            futures[pool.submit(_run_task, threads, paths[i], cfg, out_dir, channel, totals[i], videos[paths[i]],
                                config_sha256)] = i
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except BrokenProcessPool as exc:
                outcome = exc
            yield futures[future], _as_run(outcome, names[futures[future]])
        finished = True
    finally:
        # Interrupted: return at once (the workers got the same Ctrl-C, or finish and write whole files).
        pool.shutdown(wait=finished, cancel_futures=True)
        if manager is not None:
            manager.shutdown()


def _as_run(outcome, name: str) -> SequenceRun:
    """A task's result, or the exception of a worker that died running it, as a SequenceRun."""
    if isinstance(outcome, SequenceRun):
        return outcome
    return SequenceRun(name, error=f"{name}: the worker running it died ({type(outcome).__name__}); "
                                   "rerun with --resume to finish")


def _frame_count(path: Path) -> int:
    try:
        return open_sequence(path).info.seq_length
    except UserError:
        return 0


def _log_outcome(log: RunLog, r: SequenceRun) -> None:
    if r.error:
        log.event("sequence_failed", sequence=r.name, error=r.error)
        return
    log.event("sequence_done", sequence=r.name, frames=r.frames, seconds=round(r.seconds, 3),
              FPS=round(r.fps, 2) if r.fps else None, rows=r.rows, max_rss_mb=r.max_rss_mb, timing=r.timing,
              metrics=r.score.metrics if r.score else None)


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
