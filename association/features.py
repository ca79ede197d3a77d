"""Named pair features between tracks and detections; each is a pure function of a FeatureContext
returning a (T, D) float32 array. The configured list fixes the classifier's column order.

Missing values (a track with no embedding yet, no refiner box) are NaN; XGBoost treats them as
missing, so one model serves tracks with and without appearance history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import numpy as np

from mot.geometry import iou_matrix_tlwh, tlwh_to_cxcywh
from mot.types import Detections

if TYPE_CHECKING:
    from association.crowd import CrowdShare
    from association.by_gap import SharesByGap


@dataclass
class FeatureContext:
    """Everything a pair feature may read, for T tracks and D detections of one frame.

    Attributes:
        tracks: the T candidate tracks (``mot.tracker.Track``).
        detections: the D detections; ``extras["embeddings"]`` (D, E) float32 when appearance is on.
        frame: the current 1-based frame number.
        fps: the sequence's frame rate; time features are in seconds so that they mean the same at
            any frame rate.
        crowd: the colour share of crowded pairs (``association.crowd.CrowdShare``) the Siamese
            gallery distances use, or None (plain cosine distances).
        by_gap: the colour layer's and the foreground colours' shares by frame gap
            (``association.by_gap.SharesByGap``) the Siamese distances use, or None.
    """

    tracks: list
    detections: Detections
    frame: int
    fps: float = 30.0
    crowd: CrowdShare | None = None
    by_gap: SharesByGap | None = None
    shared: dict = field(default_factory=dict, repr=False)   # what several features read, computed once

    @cached_property
    def predicted(self) -> np.ndarray:
        """(T, 4) float32 tlwh: each track's constant-velocity prediction for this frame."""
        return np.array([t.predict(self.frame) for t in self.tracks], np.float32).reshape(-1, 4)

    @cached_property
    def last(self) -> np.ndarray:
        """(T, 4) float32 tlwh: each track's last box."""
        return np.array([t.tlwh for t in self.tracks], np.float32).reshape(-1, 4)

    def per_track(self, values) -> np.ndarray:
        """(T,) values broadcast to (T, D) float32."""
        col = np.asarray(values, np.float32).reshape(-1, 1)
        return np.repeat(col, len(self.detections), axis=1)

    def per_detection(self, values) -> np.ndarray:
        """(D,) values broadcast to (T, D) float32."""
        row = np.asarray(values, np.float32).reshape(1, -1)
        return np.repeat(row, len(self.tracks), axis=0)

    def nan(self) -> np.ndarray:
        return np.full((len(self.tracks), len(self.detections)), np.nan, np.float32)


def _embeddings(ctx: FeatureContext):
    return ctx.detections.extras.get("embeddings")


def unit_tail(x: np.ndarray, width: int) -> np.ndarray:
    """The last ``width`` columns of each row of ``x``, scaled to unit length (float32): the CNN part
    of a Siamese embedding, which ends it (``association.siamese.SiameseNet``)."""
    tail = np.asarray(x, np.float32)[:, -width:]
    return tail / np.maximum(np.linalg.norm(tail, axis=1, keepdims=True), 1e-12)


def _gallery_distances(ctx: FeatureContext, reduce, extra: str = "embeddings", gallery_key: str = "gallery",
                       tail: bool = False):
    """Cosine distance of each detection's descriptor (``detections.extras[extra]``, unit rows) to
    each track's gallery of them (the ``gallery_key`` field of ``track.appearance``, an
    ``association.learned.AppearanceGallery``), reduced over the gallery. With ``tail`` the gallery
    rows are longer than the descriptors and only their last part (:func:`unit_tail`) is compared.

    Every track's gallery is compared in one matrix product, kept in ``ctx.shared`` for the other
    feature that reduces the same distances (``appearance_min`` and ``appearance_mean``,
    ``colour_min`` and ``colour_mean``). With ``ctx.crowd`` and ``extras["crowded"]``, the whole
    Siamese embeddings are compared with crowded pairs at their gap's colour share
    (``association.crowd.CrowdShare.distances``); with ``ctx.by_gap``, every pair at its gap's
    shares (``association.by_gap.SharesByGap.distances``)."""
    emb = ctx.detections.extras.get(extra)
    out = ctx.nan()
    if emb is None or not len(ctx.detections):
        return out
    key = ("gallery distances", extra, gallery_key, tail)
    if key not in ctx.shared:
        states = [t.appearance for t in ctx.tracks]
        galleries = [getattr(st, gallery_key) if st is not None else None for st in states]
        sizes = np.array([len(g) if g else 0 for g in galleries])
        rows = [row for g in galleries if g for row in g]
        dist = None
        if rows:
            g = np.asarray(rows, np.float32)                   # (sum of G, E), L2-normalised
            crowded = ctx.detections.extras.get("crowded")
            if ctx.crowd is not None and crowded is not None and extra == "embeddings" and not tail:
                frames, flags = _row_frames(states, galleries, ctx.frame)
                dist = ctx.crowd.distances(g, frames, flags, emb, crowded, ctx.frame)
            elif ctx.by_gap is not None and extra == "embeddings" and not tail:
                frames, _ = _row_frames(states, galleries, ctx.frame)
                dist = ctx.by_gap.distances(g, ctx.frame - frames, emb)
            else:
                if tail:
                    g = unit_tail(g, emb.shape[1])
                dist = 1.0 - g @ emb.T                         # (sum of G, D)
        ctx.shared[key] = (dist, np.concatenate([[0], np.cumsum(sizes)]))
    dist, starts = ctx.shared[key]
    for i in np.flatnonzero(np.diff(starts)):
        out[i] = reduce(dist[starts[i]:starts[i + 1]], axis=0)  # (D,)
    return out


def _row_frames(states, galleries, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of G,) int frames and bool crowded flags of every gallery row, in ``galleries``' order; a
    state without them (built before they were kept) has its rows not crowded."""
    frames, flags = [], []
    for st, gal in zip(states, galleries):
        if not gal:
            continue
        known = len(st.frames) == len(gal) == len(st.crowded)
        frames += list(st.frames) if known else [frame] * len(gal)
        flags += list(st.crowded) if known else [False] * len(gal)
    return np.asarray(frames, np.int64), np.asarray(flags, bool)


def appearance_min(ctx):
    """Smallest cosine distance between the detection and the track's recent embeddings."""
    return _gallery_distances(ctx, np.min)


def appearance_mean(ctx):
    """Mean cosine distance between the detection and the track's recent embeddings."""
    return _gallery_distances(ctx, np.mean)


def appearance_ema(ctx):
    """Cosine distance between the detection and the track's moving-average embedding (with
    ``ctx.by_gap``, at the shares of its age: the frames since the track was last seen plus the mean
    age of what the average holds, ``AppearanceGallery.ema_age``)."""
    emb = _embeddings(ctx)
    out = ctx.nan()
    if emb is None or not len(ctx.detections):
        return out
    states = [t.appearance for t in ctx.tracks]
    have = [i for i, st in enumerate(states) if st is not None and st.ema is not None]
    if ctx.by_gap is not None and have:          # every track in one call
        ema = np.asarray([states[i].ema for i in have], np.float32)
        ema /= np.maximum(np.linalg.norm(ema, axis=1, keepdims=True), 1e-12)
        gaps = np.array([(ctx.frame - states[i].frames[-1] if states[i].frames else 1) + states[i].ema_age
                         for i in have])
        out[have] = ctx.by_gap.distances(ema, gaps, emb)
        return out
    for i in have:
        ema = states[i].ema
        out[i] = 1.0 - (emb @ (ema / max(np.linalg.norm(ema), 1e-12)))
    return out


def cnn_min(ctx):
    """Smallest cosine distance between the CNN part of the detection's Siamese embedding (its
    colour layer left out) and the track's recent ones: lets the matcher weigh the learned part
    apart from colour, e.g. by the time the track was unseen."""
    return _gallery_distances(ctx, np.min, "cnn_embeddings", tail=True)


def colour_min(ctx):
    """Smallest 1 - Bhattacharyya coefficient between the detection's LUV colour histograms and the
    track's recent ones."""
    return _gallery_distances(ctx, np.min, "histograms", "colour_gallery")


def colour_mean(ctx):
    """Mean 1 - Bhattacharyya coefficient between the detection's LUV colour histograms and the
    track's recent ones."""
    return _gallery_distances(ctx, np.mean, "histograms", "colour_gallery")


def iou(ctx):
    """IoU of the track's predicted box and the detection."""
    return iou_matrix_tlwh(ctx.predicted, ctx.detections.tlwh).astype(np.float32)


def _centre_offset(ctx, boxes):
    a, b = tlwh_to_cxcywh(boxes), tlwh_to_cxcywh(ctx.detections.tlwh)
    d = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=2)
    return (d / np.maximum(a[:, None, 3], 1.0)).astype(np.float32)


def centre_distance(ctx):
    """Distance between the track's last centre and the detection's, in track heights."""
    return _centre_offset(ctx, ctx.last)


def motion_error(ctx):
    """Distance between the constant-velocity prediction and the detection, in track heights."""
    return _centre_offset(ctx, ctx.predicted)


def log_height_ratio(ctx):
    """log(detection height / track height)."""
    return np.log(np.maximum(ctx.detections.tlwh[None, :, 3], 1) / np.maximum(ctx.last[:, None, 3], 1)).astype(np.float32)


def aspect_change(ctx):
    """|log| of the change of width/height aspect between the track and the detection."""
    a_det = ctx.detections.tlwh[:, 2] / np.maximum(ctx.detections.tlwh[:, 3], 1)
    a_trk = ctx.last[:, 2] / np.maximum(ctx.last[:, 3], 1)
    return np.abs(np.log(np.maximum(a_det[None, :], 1e-3) / np.maximum(a_trk[:, None], 1e-3))).astype(np.float32)


def time_since_seen(ctx):
    """Seconds since the track was last matched."""
    return ctx.per_track([(ctx.frame - t.last_detected) / ctx.fps for t in ctx.tracks])


def track_age(ctx):
    """Seconds since the track was born."""
    return ctx.per_track([(ctx.frame - t.start_frame) / ctx.fps for t in ctx.tracks])


def track_hits(ctx):
    """Detections matched to the track so far."""
    return ctx.per_track([t.hits for t in ctx.tracks])


def detection_score(ctx):
    """The detector's raw score (its range depends on the detector)."""
    return ctx.per_detection(ctx.detections.scores)


def refiner_iou(ctx):
    """IoU of the refiner's box for the track and the detection (NaN without a refiner box)."""
    out = ctx.nan()
    for i, t in enumerate(ctx.tracks):
        box = t.refinement.refined_tlwh if t.refinement is not None else None
        if box is not None:
            out[i] = iou_matrix_tlwh(np.asarray(box).reshape(1, 4), ctx.detections.tlwh)[0]
    return out


def refiner_score(ctx):
    """The refiner's confidence for the track (NaN without a refiner)."""
    return ctx.per_track([np.nan if t.refinement is None or t.refinement.refined_score is None
                          else t.refinement.refined_score for t in ctx.tracks])


FEATURES: dict[str, Callable[[FeatureContext], np.ndarray]] = {
    "appearance_min": appearance_min,
    "appearance_mean": appearance_mean,
    "appearance_ema": appearance_ema,
    "cnn_min": cnn_min,
    "colour_min": colour_min,
    "colour_mean": colour_mean,
    "iou": iou,
    "centre_distance": centre_distance,
    "motion_error": motion_error,
    "log_height_ratio": log_height_ratio,
    "aspect_change": aspect_change,
    "time_since_seen": time_since_seen,
    "track_age": track_age,
    "track_hits": track_hits,
    "detection_score": detection_score,
    "refiner_iou": refiner_iou,
    "refiner_score": refiner_score,
}

# How P(same person) must move as a feature grows, all else equal (+1 up, -1 down, 0 free): the
# matcher's training may impose it (XGBoost monotone constraints), so that what it learns from a few
# sequences cannot invert plain geometry or appearance where those sequences had few pairs. Left
# free: signed ratios, and distances whose meaning depends on another feature (centre_distance is
# large for a fast walker that motion_error predicts well; a long time unseen allows a large move).
# Off by default (TrainSettings.monotone): in the leave-one-out study it lowered TUD-Campus (README).
MONOTONE: dict[str, int] = {
    "appearance_min": -1, "appearance_mean": -1, "appearance_ema": -1, "cnn_min": -1, "colour_min": -1,
    "colour_mean": -1,
    "iou": 1, "motion_error": -1, "aspect_change": -1, "refiner_iou": 1,
}

# Features whose definition has changed, by revision (absent: 1). Pairs cached for a matcher's
# training carry the revisions of the features they hold, so pairs computed before a change are not
# reused after it. appearance_ema 2: the average compared at its age, not as one frame old (5 December 2026).
REVISIONS: dict[str, int] = {"appearance_ema": 2}

APPEARANCE_FEATURES = ("appearance_min", "appearance_mean", "appearance_ema")  # from the Siamese CNN
CNN_FEATURES = ("cnn_min",)  # from the CNN part of the same embeddings (registered, not in the default list)
SIAMESE_FEATURES = APPEARANCE_FEATURES + CNN_FEATURES  # every feature that needs the Siamese embedder
COLOUR_FEATURES = ("colour_min", "colour_mean")  # from LUV colour histograms of the same boxes
# The default context features. track_age and track_hits are registered but left out: trained on
# teacher-driven tracks, they taught the matcher to distrust young tracks, which fragmented real
# people's tracks at inference (leave-one-sequence-out IDF1 fell on 3 of 4 mot15 sequences).
CONTEXT_FEATURES = ("iou", "centre_distance", "motion_error", "log_height_ratio", "aspect_change",
                    "time_since_seen")


def check_names(names) -> str | None:
    """A one-line problem with a feature list, or None."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        return f"unknown feature {unknown[0]!r} (valid: {', '.join(FEATURES)})"
    if len(set(names)) != len(names):
        return "features are listed twice"
    return None


def compute(names, ctx: FeatureContext) -> np.ndarray:
    """Stacks the named features.

    Returns:
        (T, D, F) float32, F = len(names), in the order given.
    """
    t, d = len(ctx.tracks), len(ctx.detections)
    if t == 0 or d == 0:
        return np.zeros((t, d, len(names)), np.float32)
    return np.stack([FEATURES[n](ctx) for n in names], axis=2).astype(np.float32)
