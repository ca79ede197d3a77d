"""Pair features: every registered one on empty and one-element inputs, and hand-computed values."""

from collections import deque

import numpy as np
import pytest

from association.features import FEATURES, FeatureContext, compute
from mot.tracker import Track
from association.learned import AppearanceGallery
from mot.types import Detections


def _track(tlwh, frame=1, embedding=None):
    t = Track(1, np.array(tlwh, np.float32), 1.0, frame)
    if embedding is not None:
        e = np.asarray(embedding, np.float32)
        t.appearance = AppearanceGallery(deque([e]), deque(), e)
    return t


def _dets(boxes, embeddings=None):
    d = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))
    return d if embeddings is None else d.with_extras(embeddings=np.asarray(embeddings, np.float32))


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_feature_shapes_on_empty_and_single(name):
    fn = FEATURES[name]
    for tracks, dets in [([], _dets([])), ([_track([0, 0, 10, 20])], _dets([])),
                         ([], _dets([[0, 0, 10, 20]], [[1, 0]]))]:
        ctx = FeatureContext(tracks, dets, 2)
        assert compute([name], ctx).shape == (len(tracks), len(dets), 1)
    ctx = FeatureContext([_track([0, 0, 10, 20], embedding=[1, 0])], _dets([[5, 0, 10, 20]], [[0.6, 0.8]]), 2)
    out = fn(ctx)
    assert out.shape == (1, 1) and out.dtype == np.float32


def test_hand_computed_pair():
    track = _track([0, 0, 10, 20], frame=1, embedding=[1, 0])
    track.hits = 4
    dets = _dets([[5, 0, 10, 40]], [[0.6, 0.8]])
    ctx = FeatureContext([track], dets, 3)
    names = ["iou", "centre_distance", "log_height_ratio", "aspect_change", "time_since_seen", "track_hits",
             "appearance_min", "appearance_ema", "detection_score"]
    f = dict(zip(names, compute(names, ctx)[0, 0]))
    # Boxes x 0-10 / 5-15, y 0-20 / 0-40: overlap 5*20 = 100, union 200 + 400 - 100 = 500.
    assert f["iou"] == pytest.approx(0.2)
    # Centres (5, 10) and (10, 20): distance sqrt(125), over track height 20.
    assert f["centre_distance"] == pytest.approx(np.sqrt(125) / 20)
    assert f["log_height_ratio"] == pytest.approx(np.log(2))
    assert f["aspect_change"] == pytest.approx(np.log(2))      # 10/20 -> 10/40
    assert f["time_since_seen"] == pytest.approx(2 / 30) and f["track_hits"] == 4
    assert f["appearance_min"] == pytest.approx(0.4) and f["appearance_ema"] == pytest.approx(0.4)
    assert f["detection_score"] == pytest.approx(0.9)


def test_missing_appearance_is_nan():
    ctx = FeatureContext([_track([0, 0, 10, 20])], _dets([[0, 0, 10, 20]]), 2)
    assert np.isnan(compute(["appearance_min", "refiner_iou"], ctx)).all()


def test_colour_features_by_hand():
    """Two gallery histograms a, b and a detection's c: min and mean of 1 - <g, c>."""
    a, b, c = np.array([1.0, 0.0]), np.array([0.6, 0.8]), np.array([0.0, 1.0])
    track = _track([0, 0, 10, 20])
    track.appearance = AppearanceGallery(deque(), deque([a, b]))
    dets = _dets([[0, 0, 10, 20]]).with_extras(histograms=c[None].astype(np.float32))
    f = compute(["colour_min", "colour_mean"], FeatureContext([track], dets, 2))[0, 0]
    assert f[0] == pytest.approx(0.2) and f[1] == pytest.approx((1.0 + 0.2) / 2)


def test_cnn_min_by_hand():
    """``cnn_min`` compares the detection's CNN part (``extras["cnn_embeddings"]``) with the CNN
    parts of the track's gallery rows (their last columns, made unit length), not the joined
    embeddings: min over the gallery of 1 - <g, c>."""
    track = _track([0, 0, 10, 20], embedding=[0.8, 0.6, 0.0])          # CNN part [1, 0]
    track.appearance.gallery.append(np.array([0.6, 0.48, 0.64], np.float32))   # CNN part [0.6, 0.8]
    dets = _dets([[0, 0, 10, 20]], [[0.8, 0.6, 0.0]]).with_extras(cnn_embeddings=np.array([[0.0, 1.0]], np.float32))
    f = compute(["cnn_min", "appearance_min"], FeatureContext([track], dets, 2))[0, 0]
    assert f[0] == pytest.approx(0.2) and f[1] == pytest.approx(0.0, abs=1e-6)


def test_gallery_distances_of_many_tracks_match_each_track_alone():
    """The galleries of several tracks (of different sizes, one without any) are compared with the
    detections in one product shared by ``appearance_min`` and ``appearance_mean``: the same values
    as comparing each track alone."""
    rng = np.random.default_rng(0)

    def unit(n):
        x = rng.normal(size=(n, 6)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    tracks = []
    for size in (3, 0, 1, 5):
        t = _track([0, 0, 10, 20])
        if size:
            rows = unit(size)
            t.appearance = AppearanceGallery(deque(rows), deque(), rows.mean(0))
        tracks.append(t)
    dets = _dets([[0, 0, 10, 20]] * 4, unit(4))
    ctx = FeatureContext(tracks, dets, 2)
    both = compute(["appearance_min", "appearance_mean"], ctx)
    assert len(ctx.shared) == 1                                   # one product for the two features
    assert np.isnan(both[1]).all()                                # the track without a gallery
    for i in (0, 2, 3):
        alone = compute(["appearance_min", "appearance_mean"], FeatureContext([tracks[i]], dets, 2))[0]
        np.testing.assert_allclose(both[i], alone, atol=1e-6)
        g = np.asarray(tracks[i].appearance.gallery)
        np.testing.assert_allclose(both[i, :, 0], (1 - g @ dets.extras["embeddings"].T).min(0), atol=1e-6)
