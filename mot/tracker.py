"""The track life cycle: tentative -> confirmed <-> lost -> removed, ids owned by the track manager.

One frame is a fixed sequence of named steps (:meth:`TrackManager.update`): camera motion, prepare
(confidence ranks, the association's per-frame work), refine (the SiamRPN search), associate
(optional unambiguous-IoU links, then the association on the confident detections, then the
second stage for the low-confidence ones), update the matched tracks, handle the unmatched ones
(carry, lose, remove), births, output.
"""

from __future__ import annotations

import collections
import enum
import itertools
from dataclasses import dataclass, field

import numpy as np

from association.linking import link
from mot.camera import CameraMotion, is_identity, warp_boxes
from mot.config import TrackerConfig
from mot.confidence import ScoreRanks, TrackedPrecision
from mot.geometry import cxcywh_to_tlwh, iou_matrix_tlwh, tlwh_to_cxcywh
from mot.io import TrackResults
from mot.motion import KalmanBox
from mot.timing import StageTimer
from mot.types import Detections
from mot.validity import TrackEvidence, size_row


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


class Track:
    """One person's track.

    Attributes:
        id: the id given by the owning track manager.
        tlwh: (4,) float32 last box (0-based pixels).
        velocity: (2,) float32 centre velocity in pixels per frame.
        state: life-cycle state.
        hits: frames with a matched detection.
        last_frame: the last frame with a box (a matched detection, or the refiner's box it was
            carried on).
        last_detected: the last frame with a matched detection (``< last_frame`` while carried).
        start_frame: the frame the track was born.
        score: the last matched detection's raw score.
        scores: the matched detections' raw scores, in order (one per hit; the last ``HISTORY``).
        ranks: the matched detections' confidences in [0, 1] when matched (likewise).
        appearance: the association's per-track state (``association.learned.AppearanceGallery``),
            written only by the association's ``observe``.
        refinement: the refiner's per-track state (``mot.refiner.RefinerState``), written only by
            the refiner.
        evidence: what the validity model will judge the track on (``mot.validity.TrackEvidence``).
        verdict: the validity model's decision (None: not yet asked; False: never output).
    """

    #: hits whose score and confidence are kept: the refiner's gate and the validity model read their
    #: median, so a track 100,000 frames long costs no more memory than one of 256 hits
    HISTORY = 256

    def __init__(self, track_id: int, tlwh: np.ndarray, score: float, frame: int, kalman: bool = False,
                 rank: float = 1.0):
        self.id = track_id
        self.tlwh = np.asarray(tlwh, np.float32).copy()
        self.velocity = np.zeros(2, np.float32)
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.start_frame = frame
        self.last_frame = frame
        self.last_detected = frame
        self.score = float(score)
        self.scores = collections.deque([self.score], maxlen=self.HISTORY)
        self.ranks = collections.deque([float(rank)], maxlen=self.HISTORY)
        self.pending: list[tuple[int, np.ndarray, float]] = [(frame, self.tlwh.copy(), self.score)]
        self.appearance = None
        self.refinement = None
        self.evidence = TrackEvidence()
        self.evidence.add(None, self.tlwh)
        self.verdict: bool | None = None
        self.held_rows: list = []          # rows waiting for the validity decision
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

    def update(self, tlwh: np.ndarray, score: float, frame: int, smoothing: float, detected: bool = True,
               rank: float = 1.0) -> None:
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
            self.ranks.append(float(rank))
            self.hits += 1


@dataclass
class _Frame:
    """The working state of one :meth:`TrackManager.update`, handed from step to step.

    Attributes:
        detections: the frame's detections kept (rank >= ``min_rank``), with the association's extras.
        all_ranks: (A,) float32 the raw ranks of every usable detection (``all_tlwh``'s rows).
        ranks: (D,) float32 the kept detections' confidences: their ranks, or with ``confidence:
            tracked`` the ranks recalibrated by the tracks (:class:`mot.confidence.TrackedPrecision`).
        live: the tracks not removed, at the start of the frame (births are appended).
        confident: (C,) int64 indices of the confident detections not yet matched.
        weak: (W,) int64 indices of the low-confidence detections not yet matched.
        matched: (track, detection index) pairs of this frame.
        rows: output rows ``(frame, id, tlwh, score)``.
    """

    number: int
    image: np.ndarray | None
    detections: Detections
    all_tlwh: np.ndarray
    all_ranks: np.ndarray
    ranks: np.ndarray
    live: list
    confident: np.ndarray
    weak: np.ndarray
    matched: list = field(default_factory=list)
    rows: list = field(default_factory=list)


def usable_mask(detections: Detections) -> np.ndarray:
    """(N,) bool: the boxes the tracker can use (finite, with a width and height, a finite score)."""
    tlwh = detections.tlwh
    return np.isfinite(tlwh).all(axis=1) & (tlwh[:, 2] > 0) & (tlwh[:, 3] > 0) & np.isfinite(detections.scores)


class TrackManager:
    """Links each frame's detections to tracks and manages their life cycle.

    The association stage supplies a ``(tracks, detections) -> cost`` function and a gate; this class
    knows nothing of what the cost is made of. The association object:

    - ``max_cost``: the gate; pairs costing more never link.
    - ``cost(tracks, detections, frame, image) -> (T, D) float32``.
    - optional ``prepare(detections, image, frame, tracks) -> Detections``: called once per frame
      before any matching, with the live tracks (read only), for example to attach appearance
      embeddings as ``detections.extras``.
    - optional ``observe(track, detections, index, frame)``: called when detection ``index`` is
      assigned to ``track`` (a match or a birth), so the stage can keep its per-track state in
      ``track.appearance``. Networks hold no per-track state.

    Every detection score is turned into a confidence rank (:class:`mot.confidence.ScoreRanks`, one
    per sequence). Confident detections (``high_rank``) are linked first; the others can only
    extend confirmed tracks in a second stage; new tracks start only from confident detections
    ranked at least ``birth_rank``, and are confirmed on evidence: ``n_init`` hits whose ranks sum
    to ``birth_evidence``.

    With ``camera_motion: flow`` each frame's camera motion (``mot.camera.CameraMotion``) moves every
    track before anything else looks at it.

    The optional ``refiner`` (``mot.refiner.Refiner``) shares the score ranks, searches every recent
    track before matching (``refine``), may fuse its box into a matched detection's (``fuse``),
    carries unmatched confirmed tracks on its box (``carry``; ``hold`` / ``release`` output those rows
    once re-found) and takes new templates at the end (``remember``).

    The optional ``validity`` (``mot.validity.TrackValidity``) decides once per track, when it has
    ``hits`` detections (or ends sooner), whether the track is real; rows of undecided tracks are
    held, rows of rejected ones are never output.
    """

    def __init__(self, cfg: TrackerConfig, association, refiner=None, timer: StageTimer | None = None,
                 validity=None):
        self.cfg = cfg
        #: seconds per stage (prepare, refiner, association, linking, tracker), summed over frames
        self.timer = timer if timer is not None else StageTimer()
        self.association = association
        self.refiner = refiner
        self.validity = validity
        self.confidence = ScoreRanks(cfg.confidence_memory)
        self.calibration = TrackedPrecision(prior=cfg.confidence_prior) if cfg.confidence == "tracked" else None
        self.confidence_model = self.confidence_inputs = None
        if cfg.confidence == "learned":
            from mot.confidence import ConfidenceInputs, ConfidenceModel
            from mot.weights import resolve
            self.confidence_model = ConfidenceModel.load(resolve(cfg.confidence_model))
            self.confidence_inputs = ConfidenceInputs.from_config(cfg, self.confidence)
        #: size_row of the confident detections: where a person's size fits the image row (validity)
        self.size_ranks = ScoreRanks(cfg.confidence_memory)
        if refiner is not None:
            refiner.ranks = self.confidence    # one score scale for the refiner's gate and the tracker
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
            The rows to output: confirmed (and accepted) tracks matched in this frame, plus held
            earlier rows released in this frame (tentative history, carried gaps, rows waiting for
            the validity decision).
        """
        self.timer.start()
        self._camera(detections, image)
        f = self._prepare(detections, frame, image)
        self._refine(f)
        self._associate(f)
        self._update_matched(f)
        self._handle_unmatched(f)
        self._births(f)
        return self._output(f)

    # --- the steps, in order -------------------------------------------------------------------

    def _camera(self, detections: Detections, image) -> None:
        """Moves every track with the camera first."""
        if self.camera is not None and image is not None:
            warp = self.camera.estimate(image, detections.tlwh)
            if not is_identity(warp):
                for track in self.tracks:
                    track.warp(warp)
            self.timer.lap("camera")

    def _prepare(self, detections: Detections, frame: int, image) -> _Frame:
        """Confidence ranks, the low-ranked detections dropped, the association's per-frame work."""
        cfg = self.cfg
        usable = usable_mask(detections)
        if not usable.all():   # a box without a size or with a non-finite value cannot be tracked
            detections = detections.select(usable)
        self.confidence.observe(detections.scores)
        all_ranks = ranks = self.confidence.rank(detections.scores)
        if cfg.confidence == "range":   # a detector sure of most of its boxes keeps them confident
            ranks = np.maximum(all_ranks, self.confidence.position(detections.scores))
        elif self.confidence_model is not None:
            ranks = self.confidence_model.confidence(
                self.confidence_inputs(detections.tlwh, detections.scores, all_ranks))
        if self.calibration is not None:
            ranks = self.calibration.confidence(all_ranks)
        all_tlwh = detections.tlwh
        if cfg.min_rank > 0:
            keep = ranks >= cfg.min_rank
            detections, ranks = detections.select(keep), ranks[keep]
        live = [t for t in self.tracks if t.state is not TrackState.REMOVED]
        prepare = getattr(self.association, "prepare", None)
        if prepare is not None:
            detections = prepare(detections, image, frame, live)
        self.timer.lap("prepare")
        index = np.arange(len(detections))
        confident = ranks >= cfg.high_rank
        if self.validity is not None:
            self.size_ranks.observe(size_row(detections.tlwh[ranks >= max(cfg.high_rank, 0.5)]))
        return _Frame(frame, image, detections, all_tlwh, all_ranks, ranks, live, index[confident], index[~confident])

    def _refine(self, f: _Frame) -> None:
        if self.refiner is not None:
            self.refiner.refine(f.live, f.image, f.number)
            self.timer.lap("refiner")

    def _associate(self, f: _Frame) -> None:
        """Stage 1: the confident detections, confirmed tracks first (``cascade``); stage 2: the
        low-confidence detections to the confirmed tracks still unmatched."""
        cfg = self.cfg
        if cfg.cascade:
            groups = [[t for t in f.live if t.state is TrackState.CONFIRMED],
                      [t for t in f.live if t.state is not TrackState.CONFIRMED]]
        else:
            groups = [f.live]
        for group in groups:
            if cfg.iou_first:
                group = self._link_unambiguous(f, group)
            if not group or not f.confident.size:
                continue
            sub = f.detections.select(f.confident)
            self.timer.lap("tracker")
            cost = self.association.cost(group, sub, f.number, f.image)
            self.timer.lap("association")
            pairs, _, unmatched = link(cost, self.association.max_cost)
            self.timer.lap("linking")
            f.matched += [(group[r], int(f.confident[c])) for r, c in pairs]
            f.confident = f.confident[unmatched]
        if f.weak.size and cfg.second_stage != "none":
            taken = {id(t) for t, _ in f.matched}
            group = [t for t in f.live if t.state is TrackState.CONFIRMED and id(t) not in taken]
            if group:
                sub = f.detections.select(f.weak)
                if cfg.second_stage == "iou":
                    predicted = np.array([t.predict(f.number) for t in group], np.float32).reshape(-1, 4)
                    cost, gate = 1.0 - iou_matrix_tlwh(predicted, sub.tlwh), 1.0 - cfg.second_min_iou
                else:
                    cost, gate = self.association.cost(group, sub, f.number, f.image), self.association.max_cost
                pairs, _, unmatched = link(cost, gate)
                f.matched += [(group[r], int(f.weak[c])) for r, c in pairs]
                f.weak = f.weak[unmatched]
            self.timer.lap("linking")

    def _link_unambiguous(self, f: _Frame, group: list) -> list:
        """Links the pairs of ``group`` and the confident detections whose overlap is plain: IoU of
        the predicted box at least ``iou_first_min_iou``, and neither the track nor the detection
        overlapping any other candidate more than ``iou_first_max_other``. Returns the tracks left."""
        cfg = self.cfg
        if not group or not f.confident.size:
            return group
        predicted = np.array([t.predict(f.number) for t in group], np.float32).reshape(-1, 4)
        iou = iou_matrix_tlwh(predicted, f.detections.tlwh[f.confident])
        other_row = np.sort(iou, axis=1)[:, -2] if iou.shape[1] > 1 else np.zeros(len(group))
        other_col = np.sort(iou, axis=0)[-2, :] if iou.shape[0] > 1 else np.zeros(iou.shape[1])
        best = iou.argmax(axis=1)
        rows = np.arange(len(group))
        ok = ((iou[rows, best] >= cfg.iou_first_min_iou) & (other_row <= cfg.iou_first_max_other)
              & (other_col[best] <= cfg.iou_first_max_other))
        f.matched += [(group[r], int(f.confident[best[r]])) for r in rows[ok]]
        f.confident = np.delete(f.confident, best[ok])
        return [t for t, taken in zip(group, ok) if not taken]

    def _update_matched(self, f: _Frame) -> None:
        cfg, refiner = self.cfg, self.refiner
        observe = getattr(self.association, "observe", None)
        dets = f.detections
        for track, d in f.matched:
            if self.validity is not None:
                track.evidence.add(track.predict(f.number), dets.tlwh[d])
            box = dets.tlwh[d] if refiner is None else refiner.fuse(track, dets.tlwh[d])
            track.update(box, dets.scores[d], f.number, cfg.velocity_smoothing, rank=float(f.ranks[d]))
            if observe is not None:
                observe(track, dets, d, f.number)
            if track.state is TrackState.TENTATIVE:
                track.pending.append((f.number, track.tlwh.copy(), track.score))
                if self._confirmable(track):
                    track.state = TrackState.CONFIRMED
                    history = [(fr, track.id, b, sc) for fr, b, sc in track.pending[:-1]] \
                        if cfg.output_tentative_history else []
                    track.pending = []
                    f.rows += self._emit(track, history)
            else:
                track.state = TrackState.CONFIRMED
            if track.state is TrackState.CONFIRMED:
                if refiner is not None:
                    f.rows += self._emit(track, refiner.release(track))   # carried rows held until re-found
                f.rows += self._emit(track, [(f.number, track.id, track.tlwh, track.score)])

    def _handle_unmatched(self, f: _Frame) -> None:
        cfg, refiner = self.cfg, self.refiner
        matched_ids = {id(t) for t, _ in f.matched}
        for track in f.live:
            if id(track) in matched_ids:
                continue
            carried = None
            if refiner is not None and track.state is TrackState.CONFIRMED:
                carried = refiner.carry(track, f.number, f.all_tlwh)
            if carried is not None:
                track.update(carried, track.score, f.number, cfg.velocity_smoothing, detected=False)
                f.rows += self._emit(track, refiner.hold(track, (f.number, track.id, track.tlwh.copy(), track.score)))
            elif track.state is TrackState.TENTATIVE:
                track.state = TrackState.REMOVED
            elif f.number - track.last_frame > cfg.max_age:
                track.state = TrackState.REMOVED
                f.rows += self._decide(track, final=True)
            else:
                track.state = TrackState.LOST

    def _births(self, f: _Frame) -> None:
        """New tracks from the confident detections left, ranked at least ``birth_rank``."""
        cfg = self.cfg
        observe = getattr(self.association, "observe", None)
        for d in f.confident[f.ranks[f.confident] >= cfg.birth_rank]:
            track = Track(next(self._ids), f.detections.tlwh[d], f.detections.scores[d], f.number,
                          kalman=cfg.motion == "kalman", rank=float(f.ranks[d]))
            if observe is not None:
                observe(track, f.detections, d, f.number)
            if self._confirmable(track):
                track.state = TrackState.CONFIRMED
                track.pending = []
                f.rows += self._emit(track, [(f.number, track.id, track.tlwh, track.score)])
            f.live.append(track)

    def _confirmable(self, track: Track) -> bool:
        """A tentative track is confirmed once it has ``n_init`` hits and its detections' ranks sum
        to at least ``birth_evidence``: a person a clean detector ranks low for being in a crowd of
        true detections is confirmed a few frames later, not never."""
        return track.hits >= self.cfg.n_init and sum(track.ranks) >= self.cfg.birth_evidence

    def _output(self, f: _Frame) -> TrackResults:
        self.tracks = [t for t in f.live if t.state is not TrackState.REMOVED]
        if self.calibration is not None:
            self._calibrate(f)
        if self.refiner is not None:
            # New templates from detection boxes only: a carried box may have drifted.
            born = [t for t in self.tracks if t.start_frame == f.number]
            self.timer.lap("tracker")
            self.refiner.remember([t for t, _ in f.matched] + born, f.image, f.all_tlwh)
            self.timer.lap("refiner")
            if self.refiner.cfg.mask:
                self.refiner.segment(self.tracks, f.image, f.number)
                self.timer.lap("mask")
        rows = _rows(f.rows)
        self.timer.lap("tracker")
        return rows

    def _calibrate(self, f: _Frame) -> None:
        """Teaches the confidence calibration which of this frame's detections (kept or dropped) the
        confirmed tracks cover: overlap at least ``support_iou`` with a confirmed track's box of
        this frame."""
        boxes = [t.tlwh for t in self.tracks if t.state is TrackState.CONFIRMED and t.last_frame == f.number]
        supported = np.zeros(len(f.all_tlwh), bool)
        if boxes and len(f.all_tlwh):
            supported = iou_matrix_tlwh(np.array(boxes, np.float32), f.all_tlwh).max(axis=0) >= self.cfg.support_iou
        self.calibration.observe(f.all_ranks, supported)

    # --- output under the validity model ------------------------------------------------------

    def _emit(self, track: Track, rows: list) -> list:
        """The rows of ``track`` to output now: all of them without a validity model; else held
        until the track is decided (``validity.frames`` after its birth), dropped if it is rejected."""
        if self.validity is None or track.verdict is True:
            return rows
        if track.verdict is False:
            return []
        track.held_rows += rows
        return self._decide(track)

    def _decide(self, track: Track, final: bool = False) -> list:
        """Asks the validity model once the track has enough evidence (or is ending): the held rows
        if it is accepted, none if rejected or not yet decided."""
        if self.validity is None or track.verdict is not None:
            return []
        if not final and track.last_frame - track.start_frame < self.validity.frames:
            return []
        track.verdict = bool(self.validity.accept(track, self.confidence, self.size_ranks))
        held, track.held_rows = track.held_rows, []
        return held if track.verdict else []

    def flush(self) -> TrackResults:
        """The rows still held at the end of the sequence (undecided tracks are decided now)."""
        out = []
        for track in self.tracks:
            out += self._decide(track, final=True)
        return _rows(out)


def _rows(out) -> TrackResults:
    if not out:
        return TrackResults.empty()
    frames, ids, boxes, scores = zip(*out)
    return TrackResults(np.array(frames, np.int64), np.array(ids, np.int64),
                        np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))
