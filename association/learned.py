"""Learned association: pair features (appearance + context) -> XGBoost P(same) -> cost -log P."""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from association.features import (APPEARANCE_FEATURES, CNN_FEATURES, COLOUR_FEATURES, CONTEXT_FEATURES,
                                  SIAMESE_FEATURES, FeatureContext, check_names, compute, motion_error)
from association.matcher import Matcher
from association.patches import colour_histograms
from mot.config import from_dict
from mot.weights import resolve as resolve_weights
from mot.types import Detections

@dataclass
class AppearanceGallery:
    """The association's per-track state (``track.appearance``), written only by
    :meth:`LearnedAssociation.observe`.

    Attributes:
        gallery: the track's recent Siamese embeddings, (E,) float32 unit rows, newest last.
        ema: (E,) float32 moving average of the embeddings (not normalised), or None.
        ema_age: the mean age of what ``ema`` averages, in frames before the last embedding (0 for
            one embedding; about ``ema / (1 - ema)`` for a track seen every frame): the average is
            compared at that many frames more than the time since the track was last seen.
        colour_gallery: the track's recent LUV colour histograms, (H,) float32 each.
        frames: the frame of each ``gallery`` row, and ``crowded`` whether its box overlapped another
            there (for ``association.crowd.CrowdShare``; both empty for a gallery built without them).
    """

    gallery: deque
    colour_gallery: deque
    ema: np.ndarray | None = None
    frames: deque = field(default_factory=deque)
    ema_age: float = 0.0
    crowded: deque = field(default_factory=deque)


@dataclass
class LearnedParams:
    features: list[str] = field(default_factory=lambda: list(APPEARANCE_FEATURES + COLOUR_FEATURES + CONTEXT_FEATURES))
    matcher: str = "matcher_default.json"   # a shipped name in mot/weights, or a path
    min_prob: float = 0.3                   # pairs less likely than this never link
    max_distance: float = 4.0               # pairs further apart than this many track heights never link
    gallery_size: int = 8                   # recent embeddings kept per track
    ema: float = 0.8                        # weight of the old value in the moving-average embedding
    appearance: dict = field(default_factory=dict)  # AppearanceParams (association/siamese.py)
    adaptation: dict = field(default_factory=dict)  # AdaptationParams (association/adaptation.py)

    def validate(self):
        # Checked against the sections' own params (an error names the whole key), and filled in so
        # the saved config is whole.
        self.appearance = dataclasses.asdict(appearance_params(self.appearance))
        self.adaptation = dataclasses.asdict(adaptation_params(self.adaptation))
        if self.adaptation["enabled"] and not any(f in SIAMESE_FEATURES for f in self.features):
            return "adaptation.enabled needs an appearance feature (it adapts the Siamese embedding)"
        if not 0 < self.min_prob < 1:
            return "min_prob must be in (0, 1)"
        if self.gallery_size < 1:
            return "gallery_size must be >= 1"
        return check_names(self.features)


def appearance_params(raw: dict):
    """The ``appearance`` section checked against the embedder's own params."""
    from association.siamese import AppearanceParams
    return from_dict(AppearanceParams, raw, "association.params.appearance")


def adaptation_params(raw: dict):
    """The ``adaptation`` section checked against :class:`association.adaptation.AdaptationParams`."""
    from association.adaptation import AdaptationParams
    return from_dict(AdaptationParams, raw, "association.params.adaptation")


def build_appearance_model(raw: dict, runtime=None):
    """The Siamese embedder for the ``appearance`` section, on the runtime's device."""
    from association.siamese import AppearanceModel
    return AppearanceModel(appearance_params(raw), device=runtime.device if runtime else "auto")


class LearnedAssociation:
    """Scores every (track, detection) pair with the XGBoost matcher.

    Appearance embeddings are computed once per frame in :meth:`prepare` (only when the feature list
    uses them) and kept per track in its :class:`AppearanceGallery` by :meth:`observe`.
    """

    Params = LearnedParams

    def __init__(self, params: LearnedParams, runtime=None, frame_rate: float = 30.0, **context):
        self.params = params
        self.fps = float(frame_rate)   # time features are in seconds
        self.max_cost = float(-np.log(params.min_prob))
        self.matcher = self._load_matcher()
        self.uses_appearance = any(f in SIAMESE_FEATURES for f in params.features)
        self.uses_cnn = any(f in CNN_FEATURES for f in params.features)
        self.uses_colour = any(f in COLOUR_FEATURES for f in params.features)
        self.needs_image = self.uses_appearance or self.uses_colour
        self.embedder = None
        self._previous_image = None
        if self.uses_appearance:
            self.embedder = build_appearance_model(params.appearance, runtime)
        #: the colour share of crowded pairs (``association.crowd.CrowdShare``), or None (off)
        self.crowd = self.embedder.crowd if self.embedder is not None else None
        #: the colour and foreground shares by frame gap (``association.by_gap.SharesByGap``), or None
        self.by_gap = self.embedder.by_gap if self.embedder is not None else None
        self.adaptation = adaptation_params(params.adaptation)

    def adapt(self, rows, frames) -> dict:
        """Adapts the Siamese embedding to this video from a first pass's output ``rows``
        (``frames``: the video's ``(frame, image)`` again), as :func:`association.adaptation.adapt_embedder`."""
        from association.adaptation import adapt_embedder
        return adapt_embedder(self.embedder, rows, frames, self.adaptation)

    def _load_matcher(self) -> Matcher | None:
        return Matcher.load(resolve_weights(self.params.matcher), self.params.features)

    def prepare(self, detections: Detections, image, frame: int, tracks=()) -> Detections:
        """Attaches ``extras["embeddings"]`` (D, E) float32 when the Siamese features are on (and
        their CNN parts, ``extras["cnn_embeddings"]``, for ``cnn_min``, which reads the tracks'
        galleries' CNN parts off the same rows; with a crowd share, ``extras["crowded"]`` (D,) bool,
        which boxes overlap another detection or two of the live ``tracks``' predicted boxes) and
        ``extras["histograms"]`` (D, H) float32 when the colour features are."""
        extras = {}
        if self.embedder is not None:
            extras["embeddings"] = self.embedder.embed(image, detections.tlwh, self._previous_image)
            self._previous_image = image
            if self.uses_cnn:
                extras["cnn_embeddings"] = self.embedder.cnn_part(extras["embeddings"])
            if self.crowd is not None:
                predicted = np.array([t.predict(frame) for t in tracks], np.float32).reshape(-1, 4)
                extras["crowded"] = self.crowd.crowded(detections.tlwh, predicted)
        if self.uses_colour:
            extras["histograms"] = colour_histograms(image, detections.tlwh)
        return detections.with_extras(**extras) if extras else detections

    def cost(self, tracks: list, detections: Detections, frame: int, image=None) -> np.ndarray:
        """(T, D) float32: -log P(same); gated pairs are +inf."""
        ctx = self.context(tracks, detections, frame)
        return self.pair_cost(compute(self.params.features, ctx), self.gate(ctx))

    def context(self, tracks: list, detections: Detections, frame: int) -> FeatureContext:
        """The features' context of one frame, with this run's appearance distance settings."""
        return FeatureContext(tracks, detections, frame, self.fps, crowd=self.crowd, by_gap=self.by_gap)

    def gate(self, ctx: FeatureContext) -> np.ndarray:
        """(T, D) bool: the pairs that may link (the detection within ``max_distance`` track heights
        of the track's predicted centre)."""
        if not len(ctx.tracks) or not len(ctx.detections):
            return np.zeros((len(ctx.tracks), len(ctx.detections)), bool)
        return motion_error(ctx) <= self.params.max_distance

    def pair_cost(self, features: np.ndarray, gate: np.ndarray) -> np.ndarray:
        """(T, D) float32 -log P(same) from (T, D, F) features; only the pairs ``gate`` lets through are
        scored by the matcher (its cost grows with the pairs), the others are +inf."""
        cost = np.full(gate.shape, np.inf, np.float32)
        if gate.any():
            prob = self.matcher.predict(features[gate][None])[0]
            cost[gate] = -np.log(np.clip(prob, 1e-6, 1.0))
        return cost

    def observe(self, track, detections: Detections, index: int, frame: int) -> None:
        """Adds the detection's embedding (and colour histograms) to the track's galleries, and the
        embedding to its moving average."""
        hist = detections.extras.get("histograms")
        emb = detections.extras.get("embeddings")
        if hist is None and emb is None:
            return
        state = track.appearance
        if state is None:
            size = self.params.gallery_size
            state = track.appearance = AppearanceGallery(deque(maxlen=size), deque(maxlen=size),
                                                         frames=deque(maxlen=size), crowded=deque(maxlen=size))
        if hist is not None:
            state.colour_gallery.append(hist[index])
        if emb is None:
            return
        e = np.asarray(emb[index], np.float32)
        old, w = state.ema, self.params.ema
        if old is None:
            state.ema, state.ema_age = e, 0.0
        else:
            state.ema = w * old + (1 - w) * e
            state.ema_age = w * (state.ema_age + int(frame) - state.frames[-1])   # frames: set beside ema
        state.gallery.append(e)
        state.frames.append(int(frame))
        crowded = detections.extras.get("crowded")
        state.crowded.append(bool(crowded[index]) if crowded is not None else False)
