"""Training the track-validity model (mot/validity.py) from annotated sequences.

The track manager runs over each sequence and detection file with the config's tracker settings
and a recording validity stage that accepts every track and keeps its evidence at the moment the
real model would be asked. Each recorded track is then labelled real when at least half of its
output boxes cover a ground-truth person (IoU >= 0.5; the MOT17 protocol's pedestrians with the
consider flag). The tracks are made with the IoU association and no camera motion: no learned model
takes part, so nothing of any sequence leaks into another's fold, and collecting is fast (no
images are read). The model is XGBoost with its rounds chosen by leaving each sequence out in turn.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from mot.training import BoosterSettings
from mot.training import fit_and_write, fit_booster_cv

LABEL_IOU = 0.5      # an output box on a person
LABEL_FRACTION = 0.5  # a track is real when at least this share of its boxes are on people


class _Recorder:
    """A validity stage that accepts every track and records its evidence when asked."""

    def __init__(self, frames: int):
        self.frames = frames
        self.rows: dict[int, np.ndarray] = {}

    def accept(self, track, confidence, size_ranks) -> bool:
        from mot.validity import evidence
        self.rows[track.id] = evidence(track, confidence, size_ranks)
        return True


def collection_config(cfg):
    """``cfg`` with the IoU association and no camera motion (see the module's docstring)."""
    from mot.config import AssociationSection
    tracker = dataclasses.replace(cfg.tracker, camera_motion="none", validity=True)
    return dataclasses.replace(cfg, association=AssociationSection("iou", {"min_iou": 0.3}), tracker=tracker,
                               refiner=dataclasses.replace(cfg.refiner, enabled=False))


def collect_tracks(seq_path: Path, cfg, det_file: str) -> tuple[np.ndarray, np.ndarray]:
    """Evidence and labels of the tracks of one sequence and detection file.

    Returns:
        X: (N, F) float32 evidence rows in ``mot.validity.FEATURES`` order.
        y: (N,) bool, True for a real track.
    """
    from association import ASSOCIATIONS
    from mot.geometry import iou_matrix_tlwh
    from mot.io import TrackResults
    from mot.tracker import TrackManager
    from mot.training import file_detector, open_annotated
    from mot.validity import FEATURES

    cfg = collection_config(cfg)
    seq, gt, keep, index = open_annotated(seq_path)
    detector = file_detector(cfg, det_file, seq)
    recorder = _Recorder(cfg.tracker.validity_frames)
    manager = TrackManager(cfg.tracker, ASSOCIATIONS.build(cfg.association, sequence=seq), validity=recorder)
    parts = [manager.update(detector.detect(None, frame), frame) for frame, _ in seq.frames(read_images=False)]
    out = TrackResults.concatenate(parts + [manager.flush()])
    on_person: dict[int, list[bool]] = {}
    for frame in np.unique(out.frames):
        sel = out.frames == frame
        rows = index.rows(int(frame))
        rows = rows[keep[rows]]
        best = iou_matrix_tlwh(out.tlwh[sel], gt.tlwh[rows]).max(axis=1) if len(rows) else np.zeros(sel.sum())
        for tid, iou in zip(out.ids[sel], best):
            on_person.setdefault(int(tid), []).append(bool(iou >= LABEL_IOU))
    ids = sorted(recorder.rows)
    if not ids:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, bool)
    x = np.stack([recorder.rows[i] for i in ids])
    y = np.array([np.mean(on_person.get(i, [False])) >= LABEL_FRACTION for i in ids])
    return x, y


def collect_many(paths, cfg, det_files, cache: Path | None = None):
    """Per sequence: its tracks' evidence and labels over every detection file it has (cached)."""
    digest = hashlib.sha1(json.dumps([dataclasses.asdict(collection_config(cfg).tracker), det_files],
                                     sort_keys=True).encode()).hexdigest()[:10]
    per_seq = []
    for path in paths:
        key = cache / f"validity__{path.name}__{digest}.npz" if cache else None
        if key is not None and key.is_file():
            data = np.load(key)
            per_seq.append((data["x"], data["y"]))
            continue
        xs, ys, seen = [], [], set()
        for det_file in det_files:
            if not (path / det_file).is_file():
                continue
            content = hashlib.sha1((path / det_file).read_bytes()).hexdigest()
            if content in seen:   # MOT17's det.txt is det_yolox.txt under another name
                continue
            seen.add(content)
            x, y = collect_tracks(path, cfg, det_file)
            xs.append(x)
            ys.append(y)
        from mot.validity import FEATURES
        x = np.concatenate(xs) if xs else np.zeros((0, len(FEATURES)), np.float32)
        y = np.concatenate(ys) if ys else np.zeros(0, bool)
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            np.savez(key, x=x, y=y)
        per_seq.append((x, y))
    return per_seq


def train_validity(per_seq: list[tuple[np.ndarray, np.ndarray]], settings: BoosterSettings = BoosterSettings()):
    """Fits the validity model (:func:`fit_booster_cv`).

    Returns:
        The :class:`mot.validity.ValidityModel` and a dict of training facts.
    """
    from mot.validity import FEATURES, ValidityModel

    booster, facts = fit_booster_cv(per_seq, FEATURES, settings, "tracks")
    return ValidityModel(booster, FEATURES), facts


def fold_model(others, cfg, dets: dict[str, str], models: Path, scene: str, cache: Path | None, seed: int = 0) -> Path:
    """The validity model of one leave-one-scene-out fold, trained on ``others`` (reused if present)."""
    digest = hashlib.sha1(json.dumps(dataclasses.asdict(collection_config(cfg).tracker),
                                     sort_keys=True).encode()).hexdigest()[:10]
    path = models / f"validity__{scene}__{digest}__s{seed}.json"
    if not path.is_file():
        model, facts = train_validity(collect_many(others, cfg, list(dets.values()), cache), BoosterSettings(seed=seed))
        model.save(path, {"training": {**facts, "train": [p.name for p in others]}})
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_validity", description=__doc__)
    parser.add_argument("--data", required=True, nargs="+", help="annotated sequences (data roots or folders)")
    parser.add_argument("--config", help="config whose tracker settings to train for (default: the defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--det-files", nargs="+", default=["det/det.txt", "det/det_frcnn.txt", "det/det_yolox.txt"])
    parser.add_argument("--out", required=True, help="the model JSON to write")
    parser.add_argument("--cache", help="folder to cache collected tracks in")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from mot.config import load_config

    def fit(paths):
        cfg = load_config(args.config, args.overrides)
        return train_validity(collect_many(paths, cfg, args.det_files, Path(args.cache) if args.cache else None),
                              BoosterSettings(seed=args.seed))

    return fit_and_write(fit, args.data, args.det_files, args.out)
