"""The track life cycle: tentative -> confirmed <-> lost -> removed, ids owned by the tracker."""

from __future__ import annotations

import enum
import itertools

import numpy as np

from association.linking import link
from mot.camera import CameraMotion, is_identity, warp_boxes
from mot.config import TrackerConfig
from mot.geometry import cxcywh_to_tlwh, tlwh_to_cxcywh
from mot.io import TrackResults
from mot.motion import KalmanBox
from mot.timing import StageTimer
from mot.types import Detections


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


class Track:
    """One person's track.

    Attributes:
        id: the id given by the owning tracker.
        tlwh: (4,) float32 last box (0-based pixels).
        velocity: (2,) float32 centre velocity in pixels per frame.
        state: life-cycle state.
        hits: frames with a matched detection.
        last_frame: the last frame with a box (a matched detection, or the refiner's box it was
            carried on).
        last_detected: the last frame with a matched detection (``< last_frame`` while carried).
        start_frame: the frame the track was born.
        score: the last matched detection's score.
        scores: the matched detections' scores, in order (one per hit).
        data: per-track state owned by pluggable stages (embedding gallery, refiner template ...).
    """

    def __init__(self, track_id: int, tlwh: np.ndarray, score: float, frame: int, kalman: bool = False):
        self.id = track_id
        self.tlwh = np.asarray(tlwh, np.float32).copy()
        self.velocity = np.zeros(2, np.float32)
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.start_frame = frame
        self.last_frame = frame
        self.last_detected = frame
        self.score = float(score)
        self.scores = [self.score]
        self.pending: list[tuple[int, np.ndarray, float]] = [(frame, self.tlwh.copy(), self.score)]
        self.data: dict = {}
        self.kalman = KalmanBox(self.tlwh) if kalman else None   # last measured at last_detected

    def predict(self, frame: int) -> np.ndarray:
        """(4,) float32 tlwh expected at ``frame`` under constant velocity (Kalman, or the smoothed
        centre velocity with the size kept)."""
        if self.kalman is not None:
            return self.kalman.predict_box(frame - self.last_detected)
        cxcywh = tlwh_to_cxcywh(self.tlwh)[0]
        cxcywh[:2] += self.velocity * (frame - self.last_frame)
        return cxcywh_to_tlwh(cxcywh)[0]

    def warp(self, warp: np.ndarray) -> None:
        """Moves the track by the camera's motion since the last frame ((2, 3), see mot/camera.py)."""
        if self.kalman is not None:
            self.kalman.warp(warp)
        self.tlwh = warp_boxes(warp, self.tlwh)[0]
        self.velocity = (warp[:, :2] @ self.velocity).astype(np.float32)

    def update(self, tlwh: np.ndarray, score: float, frame: int, smoothing: float, detected: bool = True) -> None:
        """Moves the track to a box of ``frame``: a matched detection's, or (``detected=False``) the
        refiner's box it is carried on, which neither counts as a hit nor changes the score, nor is
        it a measurement for the Kalman filter (a drifting box would pull the filter off the person
        and spoil the boxes after the track is found again: the filter waits for a detection)."""
        dt = max(frame - self.last_frame, 1)
        if self.kalman is not None and detected:
            self.kalman.update(tlwh, max(frame - self.last_detected, 1))
            tlwh = self.kalman.predict_box(0)  # the filtered box: steadier than the raw detection
        old_c = tlwh_to_cxcywh(self.tlwh)[0, :2]
        new_c = tlwh_to_cxcywh(tlwh)[0, :2]
        measured = (new_c - old_c) / dt
        if smoothing > 0:
            blended = measured if self.hits == 1 else smoothing * measured + (1 - smoothing) * self.velocity
            self.velocity = blended.astype(np.float32)
        self.tlwh = np.asarray(tlwh, np.float32).copy()
        self.last_frame = frame
        if detected:
            self.last_detected = frame
            self.score = float(score)
            self.scores.append(self.score)
            self.hits += 1


class Tracker:
    """Links each frame's detections to tracks and manages their life cycle.

    The association stage supplies a ``(tracks, detections) -> cost`` function and a gate; this class
    knows nothing of what the cost is made of. The association object:

    - ``max_cost``: the gate; pairs costing more never link.
    - ``cost(tracks, detections, frame, image) -> (T, D) float32``.
    - optional ``prepare(detections, image, frame) -> Detections``: called once per frame before any
      matching (for example to attach appearance embeddings as ``detections.extras``).
    - optional ``observe(track, detections, index, frame)``: called when detection ``index`` is
      assigned to ``track`` (a match or a birth), so the stage can keep per-track state in
      ``track.data`` (embedding gallery ...). Networks hold no per-track state.

    With ``camera_motion: flow`` each frame's camera motion (``mot.camera.CameraMotion``) moves every
    track before anything else looks at it.

    The optional ``refiner`` (``mot.refiner.Refiner``) takes each frame's detection scores
    (``observe_scores``), searches every recent track before matching (``refine``), may fuse its
    box into a matched detection's (``fuse``), carries unmatched confirmed tracks on its box
    (``carry``; ``hold`` / ``release`` output those rows once re-found) and takes new templates at
    the end (``remember``).
    """

    def __init__(self, cfg: TrackerConfig, association, refiner=None, timer: StageTimer | None = None):
        self.cfg = cfg
        #: seconds per stage (prepare, refiner, association, linking, tracker), summed over frames
        self.timer = timer if timer is not None else StageTimer()
        self.association = association
        self.refiner = refiner
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self.camera = CameraMotion() if cfg.camera_motion == "flow" else None

    @property
    def needs_image(self) -> bool:
        """Whether :meth:`update` needs the frame's image (camera motion)."""
        return self.camera is not None

    def update(self, detections: Detections, frame: int, image: np.ndarray | None = None) -> TrackResults:
        """Advances one frame.

        Args:
            detections: this frame's detections.
            frame: 1-based frame number (frames must increase).
            image: BGR uint8 frame, for stages that look at pixels.

        Returns:
            The rows to output: confirmed tracks matched in this frame, plus the earlier frames of
            tracks confirmed in this frame when ``output_tentative_history`` is on.
        """
        cfg = self.cfg
        timer = self.timer
        timer.start()
        if self.camera is not None and image is not None:   # every track moved with the camera first
            warp = self.camera.estimate(image, detections.tlwh)
            if not is_identity(warp):
                for track in self.tracks:
                    track.warp(warp)
            timer.lap("camera")
        prepare = getattr(self.association, "prepare", None)
        if prepare is not None:
            detections = prepare(detections, image, frame)
        timer.lap("prepare")
        observe = getattr(self.association, "observe", None)
        live = [t for t in self.tracks if t.state is not TrackState.REMOVED]
        refiner = self.refiner
        if refiner is not None:
            refiner.observe_scores(detections.scores)
            refiner.refine(live, image, frame)
            timer.lap("refiner")
        if cfg.cascade:
            groups = [[t for t in live if t.state is TrackState.CONFIRMED],
                      [t for t in live if t.state is not TrackState.CONFIRMED]]
        else:
            groups = [live]
        free = np.arange(len(detections))
        matched: list[tuple[Track, int]] = []
        for group in groups:
            if not group or not free.size:
                continue
            sub = detections.select(free)
            timer.lap("tracker")
            cost = self.association.cost(group, sub, frame, image)
            timer.lap("association")
            pairs, _, unmatched = link(cost, self.association.max_cost)
            timer.lap("linking")
            matched += [(group[r], int(free[c])) for r, c in pairs]
            free = free[unmatched]

        out = []
        for track, d in matched:
            box = detections.tlwh[d] if refiner is None else refiner.fuse(track, detections.tlwh[d])
            track.update(box, detections.scores[d], frame, cfg.velocity_smoothing)
            if observe is not None:
                observe(track, detections, d, frame)
            if track.state is TrackState.TENTATIVE:
                track.pending.append((frame, track.tlwh.copy(), track.score))
                if track.hits >= cfg.n_init:
                    track.state = TrackState.CONFIRMED
                    history = track.pending[:-1] if cfg.output_tentative_history else []
                    out += [(f, track.id, b, s) for f, b, s in history]
                    track.pending = []
            else:
                track.state = TrackState.CONFIRMED
            if track.state is TrackState.CONFIRMED:
                if refiner is not None:
                    out += refiner.release(track)   # carried rows held back until re-found
                out.append((frame, track.id, track.tlwh, track.score))

        matched_ids = {id(t) for t, _ in matched}
        for track in live:
            if id(track) in matched_ids:
                continue
            carried = None
            if refiner is not None and track.state is TrackState.CONFIRMED:
                carried = refiner.carry(track, frame, detections.tlwh)
            if carried is not None:
                track.update(carried, track.score, frame, cfg.velocity_smoothing, detected=False)
                out += refiner.hold(track, (frame, track.id, track.tlwh.copy(), track.score))
            elif track.state is TrackState.TENTATIVE:
                track.state = TrackState.REMOVED
            elif frame - track.last_frame > cfg.max_age:
                track.state = TrackState.REMOVED
            else:
                track.state = TrackState.LOST

        for d in free:
            track = Track(next(self._ids), detections.tlwh[d], detections.scores[d], frame,
                          kalman=cfg.motion == "kalman")
            if observe is not None:
                observe(track, detections, d, frame)
            if cfg.n_init <= 1:
                track.state = TrackState.CONFIRMED
                track.pending = []
                out.append((frame, track.id, track.tlwh, track.score))
            live.append(track)
        self.tracks = [t for t in live if t.state is not TrackState.REMOVED]
        if refiner is not None:
            # New templates from detection boxes only: a carried box may have drifted.
            born = [t for t in self.tracks if t.start_frame == frame]
            timer.lap("tracker")
            refiner.remember([t for t, _ in matched] + born, image, detections.tlwh)
            timer.lap("refiner")
        rows = _rows(out)
        timer.lap("tracker")
        return rows


def _rows(out) -> TrackResults:
    if not out:
        return TrackResults.empty()
    frames, ids, boxes, scores = zip(*out)
    return TrackResults(np.array(frames, np.int64), np.array(ids, np.int64),
                        np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))
