"""The colour share of crowded pairs (association/crowd.py): the table, the crowding of a frame's
detections, the re-weighted distances by hand, and its path through the weights, the config and the
association's galleries."""

from collections import deque

import numpy as np
import pytest
import torch

from association.crowd import CrowdShare, check_table, overlapped_boxes
from association.features import FeatureContext, compute
from association.learned import AppearanceGallery
from association.patches import PatchParams
from association.siamese import AppearanceModel, AppearanceParams, SiameseNet, network_meta, save_weights
from mot.errors import UserError
from mot.tracker import Track
from mot.types import Detections

TABLE = {1: 0.8, 10: 0.6, 30: 0.5}


def _unit_parts(rng, n, k, m, s0):
    """(n, k + m) embeddings [sqrt(s0) h, sqrt(1 - s0) c] with unit h and c, and the parts."""
    h = rng.normal(size=(n, k))
    c = rng.normal(size=(n, m))
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return np.hstack([np.sqrt(s0) * h, np.sqrt(1 - s0) * c]).astype(np.float32), h, c


def test_table_is_checked():
    assert check_table(TABLE) is None and check_table({"5": 1}) is None
    assert "not an integer >= 1" in check_table({0: 0.5})
    assert "not an integer >= 1" in check_table({"x": 0.5})
    assert "not in [0, 1]" in check_table({1: 1.5})
    assert "mapping" in check_table([0.5])
    with pytest.raises(ValueError, match="empty"):
        CrowdShare.from_table({}, 0.5, 4)
    with pytest.raises(ValueError, match="trained share"):
        CrowdShare.from_table(TABLE, 1.0, 4)


def test_share_is_interpolated_in_log_gap_and_held_at_the_ends():
    crowd = CrowdShare.from_table({30: 0.5, 1: 0.8, 10: 0.6}, 0.5, 4)   # any order
    np.testing.assert_allclose(crowd.share([1, 10, 30]), [0.8, 0.6, 0.5])
    np.testing.assert_allclose(crowd.share([np.sqrt(10)]), [0.7])       # halfway in log gap
    np.testing.assert_allclose(crowd.share([0, -3, 100]), [0.8, 0.8, 0.5])


def test_crowded_detections_by_other_detections_and_by_two_tracks():
    boxes = np.array([[0, 0, 10, 20], [1, 0, 10, 20], [100, 0, 10, 20], [200, 0, 10, 20]], np.float32)
    assert overlapped_boxes(boxes).tolist() == [True, True, False, False]
    assert overlapped_boxes(boxes[:1]).tolist() == [False] and overlapped_boxes(np.zeros((0, 4))).size == 0
    crowd = CrowdShare.from_table(TABLE, 0.5, 4)
    # one track on box 2 is its own person; two tracks on box 3 mean someone else is there too
    tracks = np.array([[100, 0, 10, 20], [200, 0, 10, 20], [201, 1, 10, 20], [400, 0, 10, 20]], np.float32)
    assert crowd.crowded(boxes, tracks).tolist() == [True, True, False, True]
    assert crowd.crowded(boxes, tracks[:1]).tolist() == [True, True, False, False]
    assert crowd.crowded(boxes, None).tolist() == [True, True, False, False]
    assert CrowdShare.from_table(TABLE, 0.5, 4, iou=0.95).crowded(boxes, tracks).tolist() == [False] * 4


def test_distances_by_hand():
    """A pair with a crowded box is ``1 - (s h.h' + (1 - s) c.c')`` at its gap's share s; every other
    pair is the plain cosine distance of the embeddings."""
    rng = np.random.default_rng(0)
    s0, k = 0.5, 6
    g, hg, cg = _unit_parts(rng, 3, k, 5, s0)
    e, he, ce = _unit_parts(rng, 2, k, 5, s0)
    crowd = CrowdShare.from_table(TABLE, s0, k)
    frames, g_crowded, d_crowded = np.array([9, 0, 8]), np.array([False, False, True]), np.array([False, True])
    d = crowd.distances(g, frames, g_crowded, e, d_crowded, frame=10)
    assert d.shape == (3, 2) and d.dtype == np.float32
    plain = 1 - g @ e.T
    assert d[0, 0] == pytest.approx(plain[0, 0], abs=1e-6) and d[1, 0] == pytest.approx(plain[1, 0], abs=1e-6)
    for r, c in [(0, 1), (1, 1), (2, 0), (2, 1)]:
        s = crowd.share([10 - frames[r]])[0]
        assert d[r, c] == pytest.approx(1 - (s * hg[r] @ he[c] + (1 - s) * cg[r] @ ce[c]), abs=1e-5)
    # at the trained share the crowd changes nothing
    same = CrowdShare.from_table({1: s0}, s0, k).distances(g, frames, g_crowded, e, d_crowded, 10)
    np.testing.assert_allclose(same, plain, atol=1e-6)


def _track_with_gallery(rows, frames, crowded, tlwh=(0, 0, 10, 20)):
    t = Track(1, np.array(tlwh, np.float32), 1.0, 1)
    t.appearance = AppearanceGallery(deque(rows), deque(), rows[-1], frames=deque(frames), crowded=deque(crowded))
    return t


def test_appearance_features_use_the_crowd_share_only_when_given():
    rng = np.random.default_rng(1)
    k, s0 = 6, 0.5
    g, _, _ = _unit_parts(rng, 4, k, 5, s0)
    e, _, _ = _unit_parts(rng, 3, k, 5, s0)
    tracks = [_track_with_gallery(list(g[:2]), [3, 9], [True, False]),
              _track_with_gallery(list(g[2:]), [5, 6], [False, False]),
              Track(3, np.zeros(4, np.float32), 1.0, 1)]            # no gallery yet
    crowded = np.array([False, True, False])
    dets = Detections(np.tile(np.array([[0, 0, 10, 20]], np.float32), (3, 1)), np.ones(3, np.float32),
                      {"embeddings": e, "crowded": crowded})
    crowd = CrowdShare.from_table({1: 0.9, 10: 0.7}, s0, k)
    names = ["appearance_min", "appearance_mean"]
    got = compute(names, FeatureContext(tracks, dets, 10, crowd=crowd))
    plain = compute(names, FeatureContext(tracks, dets, 10))
    for i, t in enumerate(tracks[:2]):
        d = crowd.distances(np.asarray(t.appearance.gallery), np.asarray(t.appearance.frames),
                            np.asarray(t.appearance.crowded), e, crowded, 10)
        np.testing.assert_allclose(got[i, :, 0], d.min(0), atol=1e-6)
        np.testing.assert_allclose(got[i, :, 1], d.mean(0), atol=1e-6)
    assert np.isnan(got[2]).all() and np.isnan(plain[2]).all()
    np.testing.assert_allclose(got[1, [0, 2]], plain[1, [0, 2]], atol=1e-6)   # nothing crowded there
    assert not np.allclose(got[0], plain[0])
    # a gallery kept without frames (an older state) is compared plainly
    old = Track(4, np.zeros(4, np.float32), 1.0, 1)
    old.appearance = AppearanceGallery(deque(g[:2]), deque(), g[1])
    np.testing.assert_allclose(compute(names, FeatureContext([old], dets.select([0, 2]), 10, crowd=crowd)),
                               compute(names, FeatureContext([old], dets.select([0, 2]), 10)), atol=1e-6)


def _weights(tmp_path, hist_stripes=2, **meta):
    torch.manual_seed(0)
    net = SiameseNet(3, 16, width=8, hist_stripes=hist_stripes, hist_share=0.5).eval()
    path = tmp_path / f"w{hist_stripes}.pt"
    save_weights(path, net, {**network_meta(net, PatchParams(), None), **meta})
    return path


def test_the_table_comes_from_the_weights_and_the_config_overrides_it(tmp_path):
    path = _weights(tmp_path, crowd_share=TABLE)
    model = AppearanceModel(AppearanceParams(weights=str(path)), device="cpu")
    assert model.crowd.hist_dim == 2 * 512 and model.crowd.trained == 0.5
    np.testing.assert_allclose(model.crowd.share([1, 10, 30]), [0.8, 0.6, 0.5])
    assert AppearanceModel(AppearanceParams(weights=str(path), crowd_share={}), device="cpu").crowd is None
    other = AppearanceModel(AppearanceParams(weights=str(path), crowd_share={5: 1.0}, crowd_iou=0.3), device="cpu")
    assert other.crowd.share([1]).tolist() == [1.0] and other.crowd.iou == 0.3
    assert AppearanceModel(AppearanceParams(weights=str(_weights(tmp_path, 4))), device="cpu").crowd is None


def test_bad_tables_are_one_line_errors(tmp_path):
    plain = _weights(tmp_path, hist_stripes=0)
    cases = [(dict(weights=str(plain), crowd_share=TABLE), "no colour layer"),
             (dict(weights=str(_weights(tmp_path, 4, crowd_share={1: 2.0}))), "metadata crowd_share at gap 1"),
             (dict(weights=str(plain), crowd_iou=1.0), "crowd_iou"),
             (dict(weights=str(plain), crowd_share={"one": 0.5}), "not an integer")]
    for params, message in cases:
        with pytest.raises(UserError, match=message) as info:
            AppearanceModel(AppearanceParams(**params), device="cpu")
        assert "\n" not in str(info.value)


def test_set_appearance_meta_writes_a_table_or_nothing(tmp_path, capsys):
    from scripts.set_appearance_meta import main

    src = _weights(tmp_path)
    out = tmp_path / "out.pt"
    assert main([str(src), str(out), "--crowd-share", "1=0.8", "10=0.6", "--hist-levels", "2"]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["crowd_share"] == {1: 0.8, 10: 0.6} and meta["hist_levels"] == 2
    assert AppearanceModel(AppearanceParams(weights=str(out)), device="cpu").crowd is not None
    assert main([str(out), str(out), "--crowd-share", "off"]) == 0
    assert "crowd_share" not in torch.load(out, weights_only=True)["meta"]
    bad = tmp_path / "bad.pt"
    for args in (["--crowd-share", "1=1.5"], ["--crowd-share", "x"], ["--hist-levels", "3"]):
        capsys.readouterr()
        assert main([str(src), str(bad), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and not bad.exists()
    assert main([str(_weights(tmp_path, 0)), str(bad), "--crowd-share", "1=0.5"]) == 2 and not bad.exists()
    # the colour share by gap: written, read by the tracker, refused beside a crowd share, removed
    assert main([str(src), str(out), "--hist-share-by-gap", "2=0.5", "1=1"]) == 0
    assert torch.load(out, weights_only=True)["meta"]["hist_share_by_gap"] == {1: 1.0, 2: 0.5}
    assert AppearanceModel(AppearanceParams(weights=str(out)), device="cpu").by_gap.colour.shares.tolist() == [1, 0.5]
    capsys.readouterr()
    assert main([str(out), str(bad), "--crowd-share", "1=0.8"]) == 2 and not bad.exists()
    err = capsys.readouterr().err
    assert "crowd_share cannot be on" in err and str(out) in err and err.count("\n") == 1
    assert main([str(out), str(out), "--hist-share-by-gap", "off"]) == 0
    assert "hist_share_by_gap" not in torch.load(out, weights_only=True)["meta"]


def test_the_association_flags_crowded_detections_and_keeps_them_in_the_gallery(tmp_path):
    """prepare marks a detection crowded when two live tracks overlap it; observe keeps the frame and
    the flag beside each gallery row; the cost then reads them."""
    from association.learned import LearnedAssociation, LearnedParams
    from mot.training.matcher import TrainSettings, train_matcher

    names = ["appearance_min", "iou"]
    x = np.random.default_rng(0).uniform(0, 1, (400, 2)).astype(np.float32)
    matcher, _ = train_matcher(names, x, x[:, 0] < 0.5, settings=TrainSettings(rounds=5))
    matcher.save(tmp_path / "m.json")
    weights = _weights(tmp_path, crowd_share=TABLE)
    assoc = LearnedAssociation(LearnedParams(features=names, matcher=str(tmp_path / "m.json"), gallery_size=2,
                                             appearance={"weights": str(weights)}))
    assert assoc.crowd is not None
    image = np.random.default_rng(1).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    dets = Detections(np.array([[10, 10, 30, 80], [120, 20, 30, 80]], np.float32), np.ones(2, np.float32))
    tracks = [Track(i, np.array(b, np.float32), 1.0, 1) for i, b in
              enumerate([[10, 10, 30, 80], [12, 11, 30, 80], [120, 20, 30, 80]])]
    prepared = assoc.prepare(dets, image, 2, tracks)
    assert prepared.extras["crowded"].tolist() == [True, False]
    assert assoc.prepare(dets, image, 2).extras["crowded"].tolist() == [False, False]
    for frame, index in [(2, 0), (3, 1), (4, 0)]:
        assoc.observe(tracks[0], prepared, index, frame)
    state = tracks[0].appearance
    assert list(state.frames) == [3, 4] and list(state.crowded) == [False, True]   # gallery_size 2
    assert np.isfinite(assoc.cost(tracks[:1], prepared, 5)).all()
