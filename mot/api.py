"""The public tracker: built from a config and a frame rate, fed one frame's detections at a time.

    tracker = mot.Tracker(frame_rate=30)                    # the default config
    tracks = tracker.update(mot.Detections(tlwh, scores), image)
    for track_id, box in zip(tracks.ids, tracks.tlwh): ...
    rest = tracker.flush()                                  # at the end: rows still held back

The MOTChallenge runner (``mot.pipeline``) is built on this class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mot import runtime
from mot.config import Config, load_config
from mot.io import TrackResults
from mot.timing import StageTimer
from mot.types import Detections


class Tracker:
    """Links each frame's detections into tracks with ids.

    Args:
        frame_rate: frames per second of the video (the time features are in seconds).
        config: a :class:`mot.config.Config`, a YAML path, a shipped config's name (``"default"``,
            ``"iou_only"`` ...) or None for the built-in defaults (= ``configs/default.yaml``).
        overrides: ``key.path=value`` strings applied to the config, as ``--set`` does.
        timer: receives the seconds spent per stage (optional).

    The process's CPU threads are set from ``config.runtime`` the first time a tracker is built
    (:func:`mot.runtime.configure`), unless the process set them already.

    Raises:
        mot.errors.UserError: a bad config or a missing weights file (one line saying what).
    """

    def __init__(self, frame_rate: float, config: Config | str | Path | None = None,
                 overrides: list[str] | tuple[str, ...] = (), timer: StageTimer | None = None):
        from association import ASSOCIATIONS
        from mot.tracker import TrackManager
        from mot.validity import build_validity

        if not frame_rate or frame_rate <= 0:
            raise ValueError(f"frame_rate must be > 0, got {frame_rate!r}")
        cfg = config if isinstance(config, Config) else load_config(config, list(overrides))
        runtime.configure_once(runtime.threads_for(cfg.runtime.torch_threads))
        self.config = cfg
        self.frame_rate = float(frame_rate)
        self.timer = timer if timer is not None else StageTimer()
        association = ASSOCIATIONS.build(cfg.association, runtime=cfg.runtime, frame_rate=self.frame_rate)
        refiner = None
        if cfg.refiner.enabled:
            from mot.refiner import build_refiner  # torch is imported only when the refiner is on
            refiner = build_refiner(cfg.refiner, cfg.runtime)
            refiner.mask_delay = output_delay(cfg)
        self._manager = TrackManager(cfg.tracker, association, refiner, timer=self.timer,
                                     validity=build_validity(cfg.tracker))
        self._association = association
        self._frame = 0
        self._late: list[TrackResults] = []

    @property
    def association(self):
        """The association stage (its ``embedder``, when it has one, reports per-stage timing)."""
        return self._association

    @property
    def needs_image(self) -> bool:
        """Whether :meth:`update` needs the frame's image (appearance, camera motion, refiner)."""
        return bool(self._association.needs_image or self._manager.refiner is not None
                    or self._manager.needs_image)

    @property
    def frame(self) -> int:
        """The number of the last frame given to :meth:`update` (1-based; 0 before the first)."""
        return self._frame

    @property
    def max_delay(self) -> int:
        """At most how many frames late a row can come out of :meth:`late` (a tentative track's
        first frames once it is confirmed; a carried track's boxes once it is found again; a new
        track's rows once the validity model has accepted it)."""
        return output_delay(self.config)

    @property
    def adapts(self) -> bool:
        """Whether the config asks for scene adaptation (``association.params.adaptation``): then a
        first pass over the video should feed :meth:`adapt` before this tracker starts."""
        adaptation = getattr(self._association, "adaptation", None)
        return bool(adaptation is not None and adaptation.enabled)

    def adapt(self, rows: TrackResults, frames) -> dict:
        """Adapts the appearance model to a video before tracking it (``mot.pipeline`` does this).

        Args:
            rows: the output of a first pass over the video (another tracker's, same config with
                adaptation off): its confident tracklets are the labels.
            frames: the video's ``(frame, image)`` pairs in order (read again for the patches).

        Returns:
            What was learned from: pairs, tracks, patches, steps and the first and last loss.

        Raises:
            ValueError: the association has no appearance model, or frames were already tracked.
        """
        if getattr(self._association, "embedder", None) is None:
            raise ValueError("this config has no appearance model to adapt")
        if self._frame:
            raise ValueError("adapt before the first update(): the tracks so far hold the old embeddings")
        return self._association.adapt(rows, frames)

    def update(self, detections: Detections, image: np.ndarray | None = None,
               frame: int | None = None) -> TrackResults:
        """Advances one frame.

        Args:
            detections: this frame's detections (``Detections(tlwh, scores)``; may be empty).
            image: the frame, BGR uint8 (H, W, 3) as OpenCV reads it; required when
                :attr:`needs_image` (the default config looks at pixels; ``"iou_only"`` does not).
            frame: the frame's 1-based number (default: the previous one plus one).

        Returns:
            The tracks confirmed in this frame: ids, tlwh boxes (float32, 0-based pixels) and
            scores, all of this frame. Rows of earlier frames that became final now wait in
            :meth:`late`.

        Raises:
            ValueError: no image when one is needed, or a frame number that does not increase.
        """
        if image is None and self.needs_image:
            raise ValueError("this config looks at pixels (appearance, camera motion or refiner): pass the "
                             "frame as image=, or use a config that does not (config='iou_only')")
        frame = self._frame + 1 if frame is None else int(frame)
        if frame <= self._frame:
            raise ValueError(f"frame numbers must increase: got {frame} after {self._frame}")
        self._frame = frame
        rows = self._manager.update(detections, frame, image)
        now = rows.frames == frame
        if not now.all():
            self._late.append(rows.select(~now))
        return rows.select(now)

    def masks(self, rows: TrackResults) -> list:
        """The masks of rows this tracker returned (``refiner.mask``), each handed out once.

        Returns:
            One ``mot.masks.PastedMask`` (a bitmap clipped to the frame, with its top-left pixel)
            or None per row; all None when masks are off. Call it right after :meth:`update`,
            :meth:`late` or :meth:`flush` returned the rows (the masks of ended tracks are dropped
            at the next frame).
        """
        refiner = self._manager.refiner
        if refiner is None or not refiner.cfg.mask:
            return [None] * len(rows)
        return refiner.take_masks(rows.frames, rows.ids)

    def late(self) -> TrackResults:
        """The rows of earlier frames that became final since the last call (sorted by frame, id):
        a new track's first frames once it is confirmed, a carried track's gap once it is found
        again. Call it after every frame to stream a file; nothing is returned twice."""
        late = TrackResults.concatenate(self._late).sorted()
        self._late = []
        return late

    def flush(self) -> TrackResults:
        """At the end of the video: every row not yet returned (:meth:`late`'s, and the rows of
        tracks still waiting for a decision, decided now), sorted by frame, id."""
        self._late.append(self._manager.flush())
        return self.late()

    def reset(self, frame_rate: float | None = None) -> None:
        """Starts again for a new video: no tracks, ids from 1, every stage built afresh."""
        self.__init__(frame_rate or self.frame_rate, self.config, timer=self.timer)


def output_delay(cfg: Config) -> int:
    """At most how many frames late a tracker built from ``cfg`` outputs a row."""
    t, r = cfg.tracker, cfg.refiner
    delay = t.hits_to_confirm() - 1 if t.output_tentative_history else 0
    if r.enabled and r.carry and r.carry_output == "on_rematch":   # held until the track is found again
        delay += t.max_age + r.carry_max_frames + 1
    if t.validity:   # held until decided: validity_frames after birth, or when the track ends
        delay += t.validity_frames + t.max_age + 1
    return delay
