"""The per-track SiamRPN refiner: every live track searched in one batch, and the tracker's hooks.

:class:`SiamRPN` is the batched single-object search (templates in, boxes and scores out, with
SiamRPN's scale/aspect penalty and cosine window). :class:`Refiner` is what the tracker calls:

- :meth:`Refiner.refine` once per frame before matching: searches each recent track's template
  around its predicted box, and sets ``refined_tlwh`` / ``refined_score`` of the track's
  :class:`RefinerState` (read by the matcher features ``refiner_iou`` / ``refiner_score``).
- :meth:`Refiner.fuse` for a matched track: the box to update it with (detection, refined or a mix).
- :meth:`Refiner.carry` for an unmatched confirmed track: the refined box to carry it on, or None
  (gated by the rank of the track's median detection score among the sequence's scores: the
  :class:`mot.confidence.ScoreRanks` the track manager shares as ``ranks``); :meth:`Refiner.hold` / :meth:`Refiner.release` decide when the carried rows are output
  and correct them once the track is found again.
- :meth:`Refiner.remember` at the end of the frame: new templates for the tracks that got a box
  from a detection, in one batch.
- :meth:`Refiner.segment` after it (``refiner.mask``): each boxed track's mask of the frame, kept
  until :meth:`Refiner.take_masks` hands it out with the track's output row.

The network holds no per-track state; each track's template features live in its
:class:`RefinerState` (``track.refinement``), written only here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mot.config import RefinerConfig, RuntimeConfig
from mot.confidence import ScoreRanks
from mot.geometry import cxcywh_to_tlwh, iou_matrix_tlwh, tlwh_to_cxcywh
from mot.runtime import resolve_device
from mot.siamrpn import (DEFAULT_NAME, Pyramid, context_size, crop_regions, decode, load_weights, make_anchors,
                         square_regions)
from mot.weights import resolve as resolve_weights



@dataclass
class RefinerState:
    """The refiner's per-track state (``track.refinement``).

    Attributes:
        template: (2, C, h, h) float32 tensor on the refiner's device, or None before the first.
        carried: frames in a row carried on the refiner's box.
        result: ``(frame, (4,) float32 tlwh, score)`` of the last search, or None.
        held: carried output rows waiting for the track to be re-found.
        anchor: ``(frame, (4,) tlwh)`` of the track's last detection box before a carry, or None.
        refined_tlwh: (4,) float32 the refined box of this frame for the matcher's features, or None.
        refined_score: its score, or None.
        mask: ``(frame, (m, m) float32 probabilities, (4,) float32 tlwh window)`` of the last
            search's mask (``refiner.mask``), or None.
    """

    template: object = None
    carried: int = 0
    result: tuple | None = None
    held: list = field(default_factory=list)
    anchor: tuple | None = None
    refined_tlwh: np.ndarray | None = None
    refined_score: float | None = None
    mask: tuple | None = None


def state_of(track) -> RefinerState:
    """The track's refiner state, created on first use."""
    if track.refinement is None:
        track.refinement = RefinerState()
    return track.refinement


class SiamRPN:
    """Batched SiamRPN search; stateless between calls.

    Args:
        weights: a weights file from :func:`mot.siamrpn.save_weights` (None: the shipped one).
        device: ``auto`` (CUDA when present; crops, templates and decoding then stay on the GPU),
            ``cpu`` or ``cuda[:N]``.
        penalty_k: SiamRPN scale/aspect change penalty.
        window_influence: weight of the cosine window.
        size_lr: size update rate (multiplied by penalty x score of the chosen anchor).
        batch_size: pairs per forward pass.
        mask_weights: a SiamMask head (:mod:`mot.siammask`) for :meth:`search` ``masks=True``; None:
            no mask branch (templates are then the class and box kernels only).
    """

    def __init__(self, weights=None, device: str = "auto", penalty_k: float = 0.1, window_influence: float = 0.4,
                 size_lr: float = 0.4, batch_size: int = 64, mask_weights=None):
        self.device = resolve_device(device)
        if isinstance(weights, str) or weights is None:
            weights = resolve_weights(weights, DEFAULT_NAME)
        self.net, self.meta = load_weights(weights)
        self.net.to(self.device)
        self.geometry = g = self.net.geometry
        self.penalty_k, self.window_influence, self.size_lr = penalty_k, window_influence, size_lr
        self.batch_size = batch_size
        self._pyramid = None
        self.anchors = torch.from_numpy(make_anchors(g).reshape(-1, 4)).to(self.device)   # (A, 4) cxcywh
        hann = np.hanning(g.score_size + 2)[1:-1]
        window = np.tile(np.outer(hann, hann).reshape(1, -1), (g.k, 1)).reshape(-1)
        self.window = torch.from_numpy(window.astype(np.float32)).to(self.device)        # (A,)
        self.mask_head = None
        if mask_weights is not None:
            from mot.siammask import DEFAULT_MASK_NAME, load_mask_weights
            self.mask_head, self.mask_meta = load_mask_weights(resolve_weights(mask_weights, DEFAULT_MASK_NAME), g)
            self.mask_head.to(self.device)

    def _input(self, image_bgr: np.ndarray, regions: np.ndarray, size: int) -> torch.Tensor:
        # One pyramid per frame, shared by the searches and the new templates of that frame.
        if self._pyramid is None or self._pyramid.levels[0] is not image_bgr:
            self._pyramid = Pyramid(image_bgr)
        return torch.from_numpy(crop_regions(self._pyramid, regions, size)).to(self.device)

    @torch.no_grad()
    def templates(self, image_bgr: np.ndarray, tlwh: np.ndarray) -> torch.Tensor:
        """Template features of boxes.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame.
            tlwh: (N, 4) float32 target boxes (0-based pixels); may reach outside the frame.

        Returns:
            (N, 2, C, h, h) float32 tensor on the device (row i belongs to box i); (N, 3, C, h, h)
            with a mask head (its kernel third).
        """
        tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
        regions = square_regions(tlwh_to_cxcywh(tlwh)[:, :2], context_size(tlwh, self.geometry.context))
        parts = [self._template(self._input(image_bgr, regions[i:i + self.batch_size], self.geometry.template_size))
                 for i in range(0, len(tlwh), self.batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, device=self.device)

    def _template(self, z: torch.Tensor) -> torch.Tensor:
        """Template crops -> kernels: class and box (and mask, with a mask head), one backbone pass."""
        if self.mask_head is None:
            return self.net.template(z)
        f = self.net.backbone(z)
        return torch.stack([self.net.cls.kernel(f), self.net.loc.kernel(f), self.mask_head.template(f)], dim=1)

    @torch.no_grad()
    def search(self, image_bgr: np.ndarray, templates: torch.Tensor, tlwh: np.ndarray, masks: bool = False):
        """Finds each template's target near its expected box, all in one batch.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame.
            templates: (N, 2, C, h, h) from :meth:`templates` ((N, 3, C, h, h) with a mask head).
            tlwh: (N, 4) float32 expected boxes (0-based pixels): the search is centred on each and
                scaled by its size, which is also the size the penalties compare against.
            masks: also the target's mask at the chosen position (needs a mask head and templates
                made with it).

        Returns:
            boxes: (N, 4) float32 tlwh refined boxes (0-based pixels).
            scores: (N,) float32 the chosen anchor's target probability in [0, 1].
            With ``masks``, also:
            probs: (N, m, m) float32 the mask's probabilities over its window.
            windows: (N, 4) float32 tlwh the window in image pixels (a template-sized square of
                the search crop, centred on the chosen position).
        """
        tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
        if masks and self.mask_head is None:
            raise ValueError("search(masks=True) needs a SiamRPN built with mask_weights")
        if not len(tlwh):
            empty = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
            return empty + (np.zeros((0, 1, 1), np.float32), np.zeros((0, 4), np.float32)) if masks else empty
        g = self.geometry
        prior = tlwh_to_cxcywh(tlwh)
        regions = square_regions(prior[:, :2], context_size(tlwh, g.context) * g.search_size / g.template_size)
        boxes, scores, probs, positions = [], [], [], []
        for i in range(0, len(tlwh), self.batch_size):
            sl = slice(i, i + self.batch_size)
            x = self._input(image_bgr, regions[sl], g.search_size)
            if masks:
                from mot.siammask import backbone_levels
                levels = backbone_levels(self.net, x)
                cls, loc = self.net.correlate(templates[sl], levels[-1])
            else:
                cls, loc = self.net.search(templates[sl], x)
            b, s, best = self._select(cls, loc, torch.from_numpy(prior[sl]).to(self.device),
                                      torch.from_numpy(regions[sl]).to(self.device))
            boxes.append(b)
            scores.append(s)
            if masks:
                cell = best % (g.score_size * g.score_size)
                position = torch.stack([cell // g.score_size, cell % g.score_size], dim=1)
                probs.append(torch.sigmoid(self.mask_head(templates[sl, 2], levels, position)))
                positions.append(position)
        boxes = torch.cat(boxes).cpu().numpy()
        out = cxcywh_to_tlwh(boxes), torch.cat(scores).cpu().numpy().astype(np.float32)
        if not masks:
            return out
        # The window of score-map cell (i, j): search-crop pixels [stride * i, stride * i + template_size).
        scale = regions[:, 2:3] / g.search_size
        cells = torch.cat(positions).cpu().numpy()[:, ::-1]          # (column, row) of each window
        windows = np.concatenate([regions[:, :2] + cells * g.stride * scale,
                                  np.repeat(g.template_size * scale, 2, axis=1)], axis=1).astype(np.float32)
        return out + (torch.cat(probs).cpu().numpy().astype(np.float32), windows)

    def _select(self, cls, loc, prior, regions):
        """SiamRPN's choice of one anchor per pair: penalised score + cosine window, smoothed size.

        Returns (B, 4) cxcywh image boxes, (B,) raw target probabilities and (B,) the chosen anchor
        indices (into the flattened (k, n, n) map), on the device.
        """
        b = cls.shape[0]
        score = torch.softmax(cls, dim=2)[:, :, 1].reshape(b, -1)                  # (B, A)
        deltas = loc.permute(0, 1, 3, 4, 2).reshape(b, -1, 4)
        pred = decode(self.anchors[None], deltas)                                  # crop pixels
        scale = regions[:, 2:3] / self.geometry.search_size                        # image px per crop px
        tw, th = prior[:, 2:3] / scale, prior[:, 3:4] / scale

        def sz(w, h):
            pad = (w + h) * 0.5
            return torch.sqrt((w + pad) * (h + pad))

        def change(r):
            return torch.maximum(r, 1.0 / r)

        pw, ph = pred[..., 2].clamp(min=1e-3), pred[..., 3].clamp(min=1e-3)
        s_c = change(sz(pw, ph) / sz(tw, th))
        r_c = change((tw / th) / (pw / ph))
        penalty = torch.exp(-(r_c * s_c - 1.0) * self.penalty_k)
        pscore = penalty * score * (1 - self.window_influence) + self.window[None] * self.window_influence
        best = torch.argmax(pscore, dim=1)
        rows = torch.arange(b, device=cls.device)
        chosen, best_score = pred[rows, best], score[rows, best]
        lr = (penalty[rows, best] * best_score * self.size_lr)[:, None]
        centre = regions[:, :2] + regions[:, 2:] / 2
        xy = centre + chosen[:, :2] * scale
        wh = prior[:, 2:] * (1 - lr) + chosen[:, 2:] * scale * lr
        return torch.cat([xy, wh], dim=1), best_score, best


class Refiner:
    """The tracker's use of the refiner, as switched in :class:`mot.config.RefinerConfig`."""

    needs_image = True

    def __init__(self, cfg: RefinerConfig, runtime: RuntimeConfig | None = None, searcher: SiamRPN | None = None):
        self.cfg = cfg
        runtime = runtime or RuntimeConfig()
        #: the sequence's detection scores (shared with the track manager, which observes them)
        self.ranks = ScoreRanks()
        self.searcher = searcher or SiamRPN(cfg.weights, runtime.device, cfg.penalty_k, cfg.window_influence,
                                            cfg.size_lr, cfg.batch_size, cfg.mask_weights if cfg.mask else None)
        #: (frame, track id) -> mot.masks.PastedMask, until taken with its row or no longer outputtable
        self.masks: dict = {}
        #: rows come out at most this many frames late (``mot.api.output_delay``): older masks are dropped
        self.mask_delay = 0
        self._alive: set = set()
        self._gone: set = set()

    def refine(self, tracks: list, image_bgr: np.ndarray, frame: int) -> None:
        """Searches every track boxed within ``max_search_gap`` frames, in one batch.

        Sets the state's ``refined_tlwh`` ((4,) float32 tlwh) and ``refined_score`` (float) when
        ``features`` is on; tracks not searched lose them (a stale box would mislead).
        """
        todo = []
        for t in tracks:
            state = t.refinement
            if state is None:
                continue
            state.refined_tlwh = state.refined_score = state.result = None
            if state.template is not None and frame - t.last_frame <= self.cfg.max_search_gap:
                todo.append(t)
        if not todo or image_bgr is None:
            return
        expected = np.array([t.predict(frame) for t in todo], np.float32)
        templates = torch.stack([t.refinement.template for t in todo])
        found = (self.searcher.search(image_bgr, templates, expected, masks=True) if self.cfg.mask
                 else self.searcher.search(image_bgr, templates, expected))
        boxes, scores = found[:2]
        for k, (t, box, score) in enumerate(zip(todo, boxes, scores)):
            state = t.refinement
            state.result = (frame, box, float(score))
            if self.cfg.mask:
                state.mask = (frame, found[2][k], found[3][k])
            if self.cfg.features:
                state.refined_tlwh = box
                state.refined_score = float(score)

    def fuse(self, track, tlwh: np.ndarray) -> np.ndarray:
        """The box a matched track is updated with: (4,) float32 tlwh."""
        result = track.refinement.result if track.refinement is not None else None
        if self.cfg.fuse == "none" or result is None or result[2] < self.cfg.fuse_min_score:
            return tlwh
        if self.cfg.fuse == "replace":
            return result[1].copy()
        w = self.cfg.fuse_weight
        return (w * result[1] + (1 - w) * np.asarray(tlwh, np.float32)).astype(np.float32)

    def carry(self, track, frame: int, frame_tlwh: np.ndarray) -> np.ndarray | None:
        """The refined box to carry an unmatched confirmed track on, or None.

        Args:
            track: the track (confirmed, unmatched in this frame).
            frame: the current frame.
            frame_tlwh: (D, 4) float32 all detection boxes of the frame: a refined box overlapping
                one by ``carry_max_overlap`` or more is not carried (that person is detected, or
                the search slid onto someone else).
        """
        state = track.refinement
        result = state.result if state is not None else None
        if not self.cfg.carry or result is None or result[0] != frame or result[2] < self.cfg.carry_min_score:
            return None
        if state.carried >= self.cfg.carry_max_frames:
            return None
        if self.cfg.carry_min_score_rank > 0 and self._score_rank(track) < self.cfg.carry_min_score_rank:
            return None
        if len(frame_tlwh) and iou_matrix_tlwh(result[1][None], frame_tlwh).max() >= self.cfg.carry_max_overlap:
            return None
        if not state.carried:
            state.anchor = (track.last_frame, track.tlwh.copy())
        state.carried += 1
        return result[1].copy()

    def observe_scores(self, scores: np.ndarray) -> None:
        """Takes the detection scores of a frame into ``ranks`` (when the refiner runs without a
        track manager, which otherwise observes them once for both)."""
        self.ranks.observe(scores)

    def _score_rank(self, track) -> float:
        """Where the track's median detection score ranks among all detection scores seen so far in
        the sequence (this frame's included), in [0, 1]: 1 above all of them, 0 below all.

        The median, not the mean: detector scores are skewed (a CNN's pile up just below 1), so a
        person's few weak detections would drag a mean below the scores of most of their own."""
        return self.ranks.rank_one(float(np.median(track.scores)))

    def hold(self, track, row: tuple) -> list:
        """The output rows of a carried frame: ``[row]`` now (``carry_output: immediate``), or none
        yet (``on_rematch``: kept in the track's state until a detection is matched to the track again,
        and dropped with the track if none is, so a track that left or was false adds nothing)."""
        if self.cfg.carry_output == "immediate":
            return [row]
        track.refinement.held.append(row)
        return []

    def release(self, track) -> list:
        """The held rows of a track that a detection was just matched to (and forgets them).

        With ``carry_correction`` the held boxes are corrected now that both ends of the gap are
        known: ``drift`` adds to each the refiner's error at the re-found frame (detection box minus
        the refiner's box there) in proportion to its place in the gap, as a forward-backward
        tracker would; ``interpolate`` replaces them by the straight line between the detection
        boxes before and after the gap; ``none`` keeps the refiner's boxes. With
        ``carry_min_agreement`` the held boxes are dropped instead when the refiner's own box at the
        re-found frame misses the detection found there (a forward-backward check: a refiner that
        drifted off the person in the gap does not arrive where the person is found again).
        """
        state = track.refinement
        if state is None:
            return []
        held, anchor = state.held, state.anchor
        state.held, state.anchor = [], None
        f1, box1 = track.last_frame, track.tlwh
        result = state.result
        searched = result is not None and result[0] == f1
        if held and self.cfg.carry_min_agreement > 0 and (
                not searched or iou_matrix_tlwh(result[1][None], box1[None])[0, 0] < self.cfg.carry_min_agreement):
            return []   # the refiner did not arrive where the track was found again: it had lost the person
        mode = self.cfg.carry_correction
        if not held or mode == "none" or anchor is None:
            return held
        f0, box0 = anchor
        if mode == "drift":
            if not searched:
                return held
            error = box1 - result[1]
            return [(f, i, (b + (f - f0) / (f1 - f0) * error).astype(np.float32), sc) for f, i, b, sc in held]
        return [(f, i, (box0 + (f - f0) / (f1 - f0) * (box1 - box0)).astype(np.float32), sc) for f, i, b, sc in held]

    def remember(self, tracks: list, image_bgr: np.ndarray, frame_tlwh: np.ndarray | None = None) -> None:
        """New templates from the tracks' current boxes (the tracks matched or born this frame).

        With ``template_max_overlap`` < 1 and the frame's detection boxes given, a track whose box
        overlaps another detection more than that keeps its older template: a crop of two people
        would teach the refiner to follow either. A track without a template takes it anyway.
        """
        if not tracks or image_bgr is None:
            return
        limit = self.cfg.template_max_overlap
        if limit < 1 and frame_tlwh is not None and len(frame_tlwh) > 1:
            iou = iou_matrix_tlwh(np.array([t.tlwh for t in tracks], np.float32), frame_tlwh)
            other = np.sort(iou, axis=1)[:, -2]          # the best overlap but the track's own detection
            tracks = [t for t, o in zip(tracks, other)
                      if o <= limit or t.refinement is None or t.refinement.template is None]
            if not tracks:
                return
        feats = self.searcher.templates(image_bgr, np.array([t.tlwh for t in tracks], np.float32))
        for t, f in zip(tracks, feats):
            state = state_of(t)
            state.template = f
            state.carried = 0


    def segment(self, tracks: list, image_bgr: np.ndarray, frame: int) -> None:
        """The frame's mask of every track boxed in it (``refiner.mask``; else nothing).

        A track's mask is its search's, unless its box now (a detection's, or where it was carried)
        overlaps the search's box less than ``mask_min_iou``, or it was not searched (a new track):
        then its template is searched again around its box. Masks are pasted into the frame
        (``mask_threshold``) and kept in :attr:`masks` until :meth:`take_masks`; those of tracks
        that ended before the previous frame, or older than ``mask_delay`` frames, are dropped.
        """
        if not self.cfg.mask or image_bgr is None:
            return
        from mot.masks import paste

        # A track that ended in the previous frame had its last rows output then: its masks go now.
        gone = self._gone
        alive = {t.id for t in tracks}
        self._gone, self._alive = self._alive - alive, alive
        self.masks = {key: m for key, m in self.masks.items()
                      if key[1] not in gone and key[0] >= frame - self.mask_delay}
        boxed = [t for t in tracks if t.last_frame == frame and t.refinement is not None
                 and t.refinement.template is not None]
        again = []
        for t in boxed:
            state = t.refinement
            if (state.mask is None or state.mask[0] != frame or state.result is None
                    or iou_matrix_tlwh(state.result[1][None], t.tlwh[None])[0, 0] < self.cfg.mask_min_iou):
                again.append(t)
        if again:
            found = self.searcher.search(image_bgr, torch.stack([t.refinement.template for t in again]),
                                         np.array([t.tlwh for t in again], np.float32), masks=True)
            for t, prob, window in zip(again, found[2], found[3]):
                t.refinement.mask = (frame, prob, window)
        hw = image_bgr.shape[:2]
        for t in boxed:
            _, prob, window = t.refinement.mask
            self.masks[(frame, t.id)] = paste(prob, window, hw, self.cfg.mask_threshold)

    def take_masks(self, frames: np.ndarray, ids: np.ndarray) -> list:
        """The masks of output rows (``mot.masks.PastedMask``, None where there is none), forgotten."""
        return [self.masks.pop((int(f), int(i)), None) for f, i in zip(frames, ids)]


def build_refiner(cfg: RefinerConfig, runtime: RuntimeConfig | None = None) -> Refiner | None:
    """The refiner, or None when ``cfg.enabled`` is off (no network is loaded)."""
    return Refiner(cfg, runtime) if cfg.enabled else None
