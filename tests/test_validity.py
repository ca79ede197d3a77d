"""The track-validity model (mot/validity.py): metadata checks and the track manager's use of it."""

import json

import numpy as np
import pytest

from association.iou import IoUAssociation, IoUParams
from mot.config import TrackerConfig
from mot.errors import UserError
from mot.io import TrackResults
from mot.tracker import TrackManager
from mot.types import Detections
from mot.validity import _META_KEY, FEATURES, TrackValidity, ValidityModel


def _tiny_model():
    """A model that calls a track real when its median confidence rank is above 0.5."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (400, len(FEATURES))).astype(np.float32)
    y = x[:, FEATURES.index("rank_median")] > 0.5
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                        xgb.DMatrix(x, label=y.astype(np.float32)), 20)
    return ValidityModel(booster)


def test_save_load_round_trip(tmp_path):
    model = _tiny_model()
    model.save(tmp_path / "v.json", {"training": {"tracks": 400}})
    loaded = ValidityModel.load(tmp_path / "v.json")
    x = np.random.default_rng(1).uniform(0, 1, (5, len(FEATURES))).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    assert loaded.meta["training"]["tracks"] == 400


@pytest.mark.parametrize("change, message", [
    ({"version": 99}, "format version 99, expected 1"),
    ({"features": list(FEATURES[:-1])}, "was trained on features"),
    ({"features": list(reversed(FEATURES))}, "was trained on features"),
])
def test_metadata_mismatch_is_one_line_error(tmp_path, change, message):
    model = _tiny_model()
    model.save(tmp_path / "v.json")
    meta = json.loads(model.booster.attr(_META_KEY))
    model.booster.set_attr(**{_META_KEY: json.dumps({**meta, **change})})
    (tmp_path / "bad.json").write_text(bytes(model.booster.save_raw(raw_format="json")).decode())
    with pytest.raises(UserError, match=message) as err:
        ValidityModel.load(tmp_path / "bad.json")
    assert "\n" not in str(err.value)


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        ValidityModel.load(tmp_path / "none.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable"):
        ValidityModel.load(tmp_path / "junk.json")
    import xgboost as xgb
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(np.zeros((4, 2)), label=[0, 1, 0, 1]), 1)
    booster.save_model(str(tmp_path / "plain.json"))
    with pytest.raises(UserError, match="no metadata"):
        ValidityModel.load(tmp_path / "plain.json")


def _scene(rng, frames=25):
    """Three people walking: one always strongly detected, one always weakly, one mixed."""
    out = []
    for f in range(frames):
        boxes = np.array([[10 + 2 * f, 50, 20, 50], [200 + 2 * f, 50, 20, 50], [400, 50 + f, 20, 50]], np.float32)
        scores = np.array([rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.2), rng.uniform(0.0, 1.0)], np.float32)
        out.append(Detections(boxes, scores))
    return out


@pytest.mark.parametrize("frames_delay", [0, 5])
def test_rejected_tracks_are_never_output(frames_delay):
    validity = TrackValidity(_tiny_model(), min_prob=0.5, frames=frames_delay)
    manager = TrackManager(TrackerConfig(n_init=2, camera_motion="none", confidence="rank", min_rank=0, birth_rank=0),
                           IoUAssociation(IoUParams()),
                           validity=validity)
    parts = [manager.update(d, f) for f, d in enumerate(_scene(np.random.default_rng(3)), 1)]
    out = TrackResults.concatenate(parts + [manager.flush()])
    verdicts = {t.id: t.verdict for t in manager.tracks}
    rejected = {i for i, v in verdicts.items() if v is False}
    accepted = {i for i, v in verdicts.items() if v is True}
    assert rejected and accepted                       # the scene has both
    assert not rejected & set(out.ids.tolist())        # never a row of a rejected track
    assert accepted <= set(out.ids.tolist())
    # an accepted track's rows are all output, its held ones included (delay bounded by `frames`)
    for tid in accepted:
        track = next(t for t in manager.tracks if t.id == tid)
        assert (out.ids == tid).sum() == track.last_frame - track.start_frame + 1


def test_without_a_model_every_track_is_output():
    manager = TrackManager(TrackerConfig(n_init=2, camera_motion="none", min_rank=0, birth_rank=0), IoUAssociation(IoUParams()))
    parts = [manager.update(d, f) for f, d in enumerate(_scene(np.random.default_rng(3)), 1)]
    assert set(TrackResults.concatenate(parts).ids.tolist()) == {t.id for t in manager.tracks}
