"""What a run tells while it runs: ``OUT/run.jsonl`` (one JSON object per event) and progress bars.

The log is appended to, one line per event, and the file is opened, written, flushed and closed
for each line: a run killed at any point leaves whole lines, and a resumed run appends its own.
Only the process that started the run writes it (workers report back to it), so lines from
several workers never interleave, on one machine or on a cluster.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

LOG_NAME = "run.jsonl"
#: Least seconds between two progress reports of one sequence (workers report frames done).
REPORT_EVERY = 0.5


class RunLog:
    """Appends events to ``OUT/run.jsonl``.

    Each line: ``{"time": ISO-8601 UTC, "event": name, ...fields}``. Events: ``run_start``,
    ``sequence_skipped`` (complete already, ``--resume``), ``sequence_start``, ``sequence_done``
    (frames, seconds, FPS, rows written, stage seconds and counts, metrics), ``sequence_failed``
    (the one-line error), ``run_interrupted``, ``run_end``.
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOG_NAME

    def event(self, event: str, **fields) -> None:
        line = json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                           "event": event, **fields}, default=_plain)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _plain(value):
    """numpy scalars and other odd values as JSON (``float(np.float32)`` ...)."""
    try:
        return value.item()
    except AttributeError:
        return str(value)


class Progress:
    """A bar for the run (sequences done, frames per second over the sequences so far) and one per
    sequence in flight (frames), on stderr. Workers report ``(name, frames_done, total)`` through
    :meth:`put` (in the same process) or a queue drained by :meth:`drain` (other processes).

    With ``enabled=False`` every method is a no-op.
    """

    def __init__(self, sequences: int, frames_total: int | None, enabled: bool):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._done_frames: dict[str, int] = {}
        self._bars: dict[str, object] = {}
        self._free_slots: list[int] = []
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if enabled:
            from tqdm import tqdm
            self._tqdm = tqdm
            self.run_bar = tqdm(total=sequences, desc="sequences", unit="seq", position=0, dynamic_ncols=True)

    def put(self, item: tuple[str, int, int]) -> None:
        """A worker's report: ``frames_done`` of ``total`` frames of sequence ``name``."""
        if not self.enabled:
            return
        name, done, total = item
        with self._lock:
            bar = self._bars.get(name)
            if bar is None:
                slot = self._free_slots.pop(0) if self._free_slots else len(self._bars) + 1
                bar = self._tqdm(total=total, desc=name, unit="frame", position=slot, leave=False,
                                 dynamic_ncols=True)
                bar.slot = slot
                self._bars[name] = bar
            bar.update(done - bar.n)
            self._done_frames[name] = done
            self._show_fps()

    def sequence_done(self, name: str, frames: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.pop(name, None)
            if bar is not None:
                self._free_slots.append(bar.slot)
                bar.close()
            self._done_frames[name] = frames
            self.run_bar.update(1)
            self._show_fps()

    def _show_fps(self) -> None:
        seconds = time.perf_counter() - self._start
        frames = sum(self._done_frames.values())
        self.run_bar.set_postfix(frames=frames, fps=f"{frames / seconds:.1f}" if seconds > 0 else "-", refresh=True)

    def drain(self, channel) -> None:
        """Reads reports from ``channel`` (anything with ``get(timeout=)``) in a thread until :meth:`close`."""
        if not self.enabled:
            return

        def loop():
            while not self._stop.is_set():
                try:
                    item = channel.get(timeout=0.2)
                except queue.Empty:
                    continue
                except Exception:   # a cluster queue's timeout, a closed channel: the stop flag ends the loop
                    self._stop.wait(0.2)
                    continue
                if item is not None:
                    self.put(item)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.enabled:
            with self._lock:
                for bar in self._bars.values():
                    bar.close()
                self._bars.clear()
                self.run_bar.close()


class Reporter:
    """The worker's side: reports a sequence's frames done to ``channel.put`` at most every
    :data:`REPORT_EVERY` seconds (and always the last frame). Picklable when the channel is."""

    def __init__(self, channel, name: str, total: int):
        self.channel, self.name, self.total = channel, name, total
        self._last = 0.0

    def __call__(self, frame: int) -> None:
        now = time.perf_counter()
        if now - self._last >= REPORT_EVERY or frame >= self.total:
            self._last = now
            try:
                self.channel.put((self.name, frame, self.total))
            except Exception:   # progress is best effort: a lost report never stops the tracking
                pass
