"""Training the XGBoost matcher from the tracker's own pair distribution.

The tracker runs over ground-truth-annotated sequences with a teacher in place of the matcher: each
detection is matched to ground truth (IoU >= 0.5, Hungarian), a track carries the identity of the
detections it took, and the teacher links only same-identity pairs. At every matching step the
features of all candidate pairs (tracks x remaining detections, after the spatial gate) are
recorded with the label "same identity". Tracks, galleries and cascades therefore look exactly as
they do at inference.

Real footage holds few people who stop while hidden, so the matcher rarely sees a return far from
the track's prediction and near where it was last seen. With ``waited_returns`` (seconds) the
teacher adds such returns: a person detected again after at least that long unseen (and at least
one processed frame missed) is also recorded as if they had waited, their detection (appearance,
size and score) moved to the centre where the track was last seen, against every track, labelled
as the real one; the tracker itself goes on with the real detections. Measured: it costs held-out
IDF1 (docs/appearance.md, "Returns as if the person had waited"), so the shipped matchers are
trained without it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from association.features import MONOTONE, FeatureContext, compute, motion_error
from association.learned import LearnedAssociation, LearnedParams
from association.matcher import Matcher
from mot.config import Config, TrackerConfig
from mot.errors import UserError
from mot.geometry import iou_matrix_tlwh
from mot.tracker import TrackManager
from mot.types import Detections

log = logging.getLogger(__name__)


class _Teacher(LearnedAssociation):
    """Links by ground-truth identity and records every candidate pair's features and label."""

    def __init__(self, params: LearnedParams, runtime=None, frame_rate: float = 30.0, waited_returns: float = 0.0,
                 stride: int = 1):
        super().__init__(params, runtime, frame_rate)
        self.waited_returns = waited_returns
        self.stride = stride
        self.max_cost = 0.5
        self.rows: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.gt_ids: dict[int, int] = {}   # track id -> the identity of its last detection (-1: none)

    def _load_matcher(self):
        return None  # the matcher is what is being trained

    def cost(self, tracks, detections: Detections, frame: int, image=None) -> np.ndarray:
        ctx = self.context(tracks, detections, frame)
        feats = compute(self.params.features, ctx)
        det_ids = detections.extras["gt_id"]
        trk_ids = np.array([self.gt_ids[t.id] for t in tracks])
        same = (trk_ids[:, None] == det_ids[None, :]) & (det_ids[None, :] >= 0)
        allowed = motion_error(ctx) <= self.params.max_distance
        # A track born of false alarms has no identity, so "same person" is undefined for its pairs:
        # they are not recorded. It follows other false alarms by overlap, as it would at inference.
        real = (trk_ids >= 0)[:, None]
        recorded = allowed & real
        self.rows.append(feats[recorded])
        self.labels.append(same[recorded])
        if self.waited_returns > 0:
            self._record_waited(ctx, trk_ids, det_ids)
        false_follow = ~real & (det_ids[None, :] < 0) & (iou_matrix_tlwh(ctx.predicted, detections.tlwh) >= 0.5)
        return np.where(same & allowed, 0.0, np.where(false_follow, 0.4, np.inf)).astype(np.float32)

    def _record_waited(self, ctx: FeatureContext, trk_ids: np.ndarray, det_ids: np.ndarray) -> None:
        """Records, for each person back after ``waited_returns`` seconds unseen, the pairs of their
        detection moved to the centre where their track was last seen (see the module docstring)."""
        dets = ctx.detections
        frames = np.array([ctx.frame - t.last_detected for t in ctx.tracks])
        hidden = (frames > self.stride) & (frames / self.fps >= self.waited_returns)  # missed a frame, long enough
        for i in np.flatnonzero((trk_ids >= 0) & hidden):
            found = np.flatnonzero(det_ids == trk_ids[i])
            if not found.size:
                continue
            one = dets.select(found[:1])
            box = one.tlwh.copy()
            box[0, :2] = ctx.last[i, :2] + ctx.last[i, 2:] / 2 - box[0, 2:] / 2
            sub = self.context(ctx.tracks, Detections(box, one.scores, one.extras), ctx.frame)
            recorded = (motion_error(sub)[:, 0] <= self.params.max_distance) & (trk_ids >= 0)
            self.rows.append(compute(self.params.features, sub)[:, 0][recorded])
            self.labels.append((trk_ids == trk_ids[i])[recorded])

    def observe(self, track, detections, index, frame):
        super().observe(track, detections, index, frame)
        self.gt_ids[track.id] = int(detections.extras["gt_id"][index])


def teacher_tracker(cfg: TrackerConfig) -> TrackerConfig:
    """The tracker settings the teacher runs with: every detection confident and able to start a
    track (the confidence stages are the track manager's, not the matcher's; the pairs recorded, and
    their cache, do not depend on them)."""
    return dataclasses.replace(cfg, min_rank=0.0, high_rank=0.0, birth_rank=0.0, iou_first=False)


def _label_detections(dets: Detections, gt_tlwh: np.ndarray, gt_ids: np.ndarray) -> np.ndarray:
    """(D,) int64 ground-truth id of each detection (IoU >= 0.5, Hungarian), -1 when none."""
    out = np.full(len(dets), -1, np.int64)
    if len(dets) and len(gt_ids):
        iou = iou_matrix_tlwh(dets.tlwh, gt_tlwh)
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= 0.5
        out[rows[ok]] = gt_ids[cols[ok]]
    return out


def collect_pairs(seq_path: Path, cfg: Config, det_file: str, stride: int = 1,
                  waited_returns: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Runs the teacher-driven tracker over one sequence, on every ``stride``-th frame.

    Strides above 1 show the matcher the larger motion between frames of low-frame-rate video.
    ``waited_returns`` > 0 adds the returns of people as if they had waited while hidden (module
    docstring).

    Returns:
        X: (N, F) float32 pair features in ``cfg.association.params["features"]`` order.
        y: (N,) bool, True when track and detection are the same person.
    """
    from mot.training import file_detector, open_annotated

    seq, gt, keep, gt_index = open_annotated(seq_path)
    params = LearnedAssociation.Params(**cfg.association.params)
    teacher = _Teacher(params, cfg.runtime, float(seq.info.frame_rate), waited_returns, stride)
    detector = file_detector(cfg, det_file, seq)
    tracker = TrackManager(teacher_tracker(cfg.tracker), teacher)
    for frame, image in seq.frames(read_images=teacher.needs_image or detector.needs_image or tracker.needs_image):
        if (frame - 1) % stride:
            continue
        dets = detector.detect(image, frame)
        rows = gt_index.rows(frame)
        rows = rows[keep[rows]]
        dets = dets.with_extras(gt_id=_label_detections(dets, gt.tlwh[rows], gt.ids[rows]))
        tracker.update(dets, frame, image)
    if not teacher.rows:
        return np.zeros((0, len(params.features)), np.float32), np.zeros(0, bool)
    return np.concatenate(teacher.rows), np.concatenate(teacher.labels)


@dataclass
class TrainSettings:
    rounds: int = 300
    max_depth: int = 5
    learning_rate: float = 0.1
    early_stopping: int = 30
    seed: int = 0
    threads: int = 2
    balance: bool = True   # re-weight positives to the negatives (else calibrated probabilities)
    parallel_trees: int = 1  # trees per round, each on its own subsample, averaged (bagging inside boosting)
    monotone: bool = False  # impose association.features.MONOTONE on the learned function
    waited_returns: float = 0.0  # the pairs: collect_pairs' returns as if waited while hidden (0: off)


def _params(settings: TrainSettings, y: np.ndarray, features: list[str]) -> dict:
    pos = max(int(y.sum()), 1)
    neg = max(int((~y).sum()), 1)
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": settings.max_depth,
              "eta": settings.learning_rate, "subsample": 0.8, "colsample_bytree": 0.9, "tree_method": "hist",
              "scale_pos_weight": neg / pos if settings.balance else 1.0, "seed": settings.seed, "nthread": settings.threads,
              "num_parallel_tree": settings.parallel_trees}
    if settings.monotone:
        params["monotone_constraints"] = "(" + ",".join(str(MONOTONE.get(f, 0)) for f in features) + ")"
    return params


def train_matcher_cv(features: list[str], xs: list[np.ndarray], ys: list[np.ndarray],
                     settings: TrainSettings = TrainSettings()) -> tuple[Matcher, dict]:
    """Fits the matcher on all the given sequences' pairs, for the number of rounds that minimises
    the mean validation log-loss of leaving each sequence out in turn (``xgboost.cv`` with one fold
    per sequence): every sequence serves for training and, once, for choosing when to stop, so no
    single short sequence decides it.

    Args:
        xs, ys: per sequence (two or more), its pairs' features (N, F) and labels (N,).

    Returns:
        The matcher and a dict of training facts (pair counts, rounds, cross-validated log-loss).
    """
    import xgboost as xgb

    keep = [i for i, y in enumerate(ys) if len(y)]
    if len(keep) < 2:
        raise UserError("cross-validated training needs pairs from two or more sequences")
    x = np.concatenate([xs[i] for i in keep])
    y = np.concatenate([ys[i] for i in keep])
    bounds = np.cumsum([0] + [len(ys[i]) for i in keep])
    index = np.arange(len(y))
    folds = [(np.concatenate([index[:a], index[b:]]), index[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    params = _params(settings, y, features)
    data = xgb.DMatrix(x, label=y.astype(np.float32), feature_names=list(features))
    history = xgb.cv(params, data, settings.rounds, folds=folds, early_stopping_rounds=settings.early_stopping,
                     verbose_eval=False, seed=settings.seed)
    rounds = len(history)          # cut at the best mean round by early stopping
    booster = xgb.train(params, data, rounds)
    facts = {"pairs": int(len(y)), "positives": int(y.sum()), "negatives": int((~y).sum()), "rounds": rounds,
             "cv_logloss": float(history["test-logloss-mean"].iloc[-1]), "folds": len(folds)}
    booster.feature_names = None
    return Matcher(booster, features), facts


def train_matcher(features: list[str], x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
                  y_val: np.ndarray | None = None, settings: TrainSettings = TrainSettings()) -> tuple[Matcher, dict]:
    """Fits the XGBoost pair classifier; positives are re-weighted to balance the classes.

    Returns:
        The matcher and a dict of training facts (pair counts, best iteration, validation log-loss).
    """
    import xgboost as xgb

    pos = max(int(y.sum()), 1)
    neg = max(int((~y).sum()), 1)
    params = _params(settings, y, features)
    train = xgb.DMatrix(x, label=y.astype(np.float32), feature_names=list(features))
    evals, kwargs = [(train, "train")], {}
    if x_val is not None and len(x_val):
        val = xgb.DMatrix(x_val, label=y_val.astype(np.float32), feature_names=list(features))
        evals.append((val, "val"))
        kwargs["early_stopping_rounds"] = settings.early_stopping
    history: dict = {}
    booster = xgb.train(params, train, settings.rounds, evals=evals, evals_result=history, verbose_eval=False,
                        **kwargs)
    if "val" in history:
        booster = booster[: booster.best_iteration + 1]
    facts = {"pairs": int(len(y)), "positives": pos, "negatives": neg,
             "rounds": int(booster.num_boosted_rounds()),
             "val_logloss": float(min(history["val"]["logloss"])) if "val" in history else None}
    booster.feature_names = None
    return Matcher(booster, features), facts
