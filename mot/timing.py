"""Per-run stage timing: seconds summed per stage, for the speed table of the benchmark."""

from __future__ import annotations

import time

#: Stages in pipeline order, with the names the benchmark reports them under.
STAGES = {
    "read": "image read",
    "detector": "detector",
    "camera": "camera motion",
    "flow": "flow",
    "patches": "patches",
    "network": "CNN",
    "prepare": "other per-frame prep",
    "refiner": "refiner",
    "association": "features + XGBoost",
    "linking": "linking",
    "tracker": "track life cycle",
}


class StageTimer:
    """Sums wall-clock seconds per stage with laps: each :meth:`lap` books the time since the last
    lap (or :meth:`start`) to a stage. Cheap enough to stay on in every run (one
    ``perf_counter`` per lap); owned by one run, never shared.

    Attributes:
        seconds: stage -> seconds summed over the run.
        counts: named counters (``frames``, ``people`` ...) summed over the run.
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._last = time.perf_counter()

    def start(self) -> None:
        """Starts the clock without booking the time since the last lap."""
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Books the time since the last lap to ``stage``."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def split(self, stage: str, parts: dict[str, float]) -> None:
        """Moves ``parts`` (stage -> seconds, measured inside ``stage``) out of ``stage``'s time."""
        for name, sec in parts.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + sec
            self.seconds[stage] = self.seconds.get(stage, 0.0) - sec

    def as_dict(self) -> dict:
        """``{"seconds": {stage: s}, "counts": {...}}``; stages that never ran are absent."""
        return {"seconds": dict(self.seconds), "counts": dict(self.counts)}
