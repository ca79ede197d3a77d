"""The foreground-weighted colour layer (association/foreground.py; in the shipped weights since 5 December 2026)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from association.patches import PatchParams, bgr_to_luv_normalised
from association.by_gap import GapTable, SharesByGap
from association.siamese import SiameseNet, SoftHistogram, load_weights, network_meta, save_weights
from mot.errors import UserError


def _patch(left_bgr, right_bgr):
    img = np.zeros((1, 64, 32, 3), np.uint8)
    img[:, :, :16], img[:, :, 16:] = left_bgr, right_bgr
    return torch.from_numpy(bgr_to_luv_normalised(img))


def test_weights_leave_out_the_colours_they_zero():
    hist = SoftHistogram(8, 4, 2, 64, 32)
    two, red = _patch((0, 0, 255), (255, 0, 0)), _patch((0, 0, 255), (0, 0, 255))
    left = torch.zeros(1, 32, 16)
    left[:, :, :8] = 1
    assert torch.allclose(hist(two, torch.ones(1, 32, 16)), hist(two), atol=1e-6)
    assert torch.allclose(hist(two, left), hist(red), atol=1e-5)
    assert not torch.allclose(hist(two), hist(red), atol=1e-2)


def _net(**kw):
    torch.manual_seed(0)
    return SiameseNet(3, 16, 8, 4, hist_stripes=4, patch=(64, 32), **kw).eval()


class _LeftHalf(torch.nn.Module):
    """A foreground map that says the left half of the patch is the person."""

    def forward(self, x):
        logits = torch.full((len(x), 32, 16), -10.0)
        logits[:, :, :8] = 10.0
        return logits


def test_the_colour_half_joins_the_plain_and_the_weighted_histograms():
    net = _net(foreground_floor=0.1, foreground_mix=0.3)
    assert net.fg(torch.randn(2, 3, 64, 32)).shape == (2, 32, 16)      # the histogram's voting grid
    net.fg = _LeftHalf()
    x = torch.cat([_patch((0, 0, 255), (255, 0, 0)), _patch((0, 255, 0), (40, 40, 40))])
    with torch.no_grad():
        out, colour = net(x), net.colour(x)
        plain = net.hist(x)
        weighted = net.hist(x, 0.1 + 0.9 * torch.sigmoid(net.fg(x)))
    assert out.shape == (2, 16 + 2 * 2048) == (2, net.output_dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(colour, torch.cat([plain * 0.7 ** 0.5, weighted * 0.3 ** 0.5], 1), atol=1e-6)
    assert not torch.allclose(plain, weighted, atol=1e-3)


def test_weights_round_trip_and_a_missing_map_is_a_one_line_error(tmp_path):
    net = _net(foreground_floor=0.1)
    meta = network_meta(net, PatchParams(64, 32), None)
    save_weights(tmp_path / "fg.pt", net, meta)
    back, back_meta = load_weights(tmp_path / "fg.pt")
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(back(x), net(x), atol=1e-6)
    assert back_meta["foreground_floor"] == 0.1 and back_meta["foreground_mix"] == 0.5
    blob = torch.load(tmp_path / "fg.pt", weights_only=True)
    blob["state_dict"] = {k: v for k, v in blob["state_dict"].items() if not k.startswith("fg.")}
    torch.save(blob, tmp_path / "no_map.pt")
    with pytest.raises(UserError, match="do not match their metadata") as err:
        load_weights(tmp_path / "no_map.pt")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw", [dict(hist_stripes=0), dict(foreground_mix=1.0), dict(foreground_floor=1.0)])
def test_a_foreground_map_needs_a_colour_layer_and_valid_shares(kw):
    args = dict(hist_stripes=4, foreground_floor=0.1, foreground_mix=0.5) | kw
    with pytest.raises(ValueError, match="foreground map"):
        SiameseNet(3, 16, 8, 4, patch=(64, 32), **args)


# ----------------------------------------------------------------------------- the map's training

def test_instance_crops_label_the_centred_person_and_weigh_nothing_in_ignore_regions():
    from mot.training.foreground import IGNORE, ForegroundParams, instance_crops

    image = np.zeros((100, 100, 3), np.uint8)
    mask = np.zeros((100, 100), np.uint8)
    mask[20:84, 10:26] = 1           # person 1: 64 x 16, the left half of a 64 x 32 box at x = 10
    mask[20:84, 26:42] = 2           # person 2 beside it, in the right half
    mask[0:10, :] = IGNORE
    box = np.array([[10, 20, 32, 64]], np.float32)
    bgr, target, weight = instance_crops(image, mask, np.concatenate([box, box]), np.array([1, 2]),
                                         ForegroundParams())
    assert bgr.shape == (2, 64, 32, 3) and target.shape == weight.shape == (2, 32, 16)
    assert np.allclose(target[0, :, :8], 1) and np.allclose(target[0, :, 8:], 0)     # the other person is background
    assert np.allclose(target[1, :, 8:], 1) and np.allclose(target[1, :, :8], 0)
    assert np.allclose(weight, 1)
    _, _, high = instance_crops(image, mask, np.array([[10, 0, 32, 64]], np.float32), np.array([1]), ForegroundParams())
    assert np.allclose(high[0, :5], 0) and np.allclose(high[0, 5:], 1)                # rows 0-9 of the image ignored


def _synthetic_crops(n, rng):
    """Patches of a plain-coloured person (a centred column) on noise, with a second person at one side."""
    from mot.training.foreground import Crops

    bgr = rng.integers(0, 255, (n, 64, 32, 3)).astype(np.uint8)
    target = np.zeros((n, 32, 16), np.float32)
    for i in range(n):
        bgr[i, 8:60, 10:22] = rng.integers(0, 255, 3)
        target[i, 4:30, 5:11] = 1
        bgr[i, 8:60, :4] = rng.integers(0, 255, 3)        # someone else, not the centred person
    return Crops(bgr, target, np.ones_like(target), np.arange(n))


def test_the_map_learns_the_centred_person_on_a_generated_set():
    from association.foreground import ForegroundNet
    from mot.training.foreground import ForegroundParams, mask_iou, train_foreground

    crops = _synthetic_crops(200, np.random.default_rng(0))
    params = ForegroundParams(steps=150, batch=32, val_fraction=0.2)
    torch.manual_seed(1)
    untrained = mask_iou(ForegroundNet(), crops, np.arange(200))
    net, facts = train_foreground(crops, params, log=None)
    assert facts["val_crops"] == 40 and facts["train_crops"] == 160
    assert facts["val_iou"] > 0.8 > untrained + 0.3


def _siamese_file(path, **kw):
    net = _net(**kw)
    save_weights(path, net, network_meta(net, PatchParams(64, 32), None))
    return net


def test_attach_gives_the_weights_the_map_and_changes_nothing_else(tmp_path):
    from association.foreground import ForegroundNet
    from mot.training.foreground import attach, save_map

    plain = _siamese_file(tmp_path / "plain.pt")
    torch.manual_seed(3)
    fg = ForegroundNet().eval()
    save_map(tmp_path / "map.pt", fg, {"patch": [64, 32], "training": {"val_iou": 0.7}})
    attach(tmp_path / "plain.pt", tmp_path / "map.pt", tmp_path / "with.pt", 0.2, 0.4)
    net, meta = load_weights(tmp_path / "with.pt")
    assert (meta["foreground_floor"], meta["foreground_mix"]) == (0.2, 0.4)
    assert meta["foreground_training"] == {"val_iou": 0.7}
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(net.fg(x), fg(x))
        hist_plain, cnn_plain = plain.halves(x)
        hist, cnn = net.halves(x)
        weighted = plain.hist(x, 0.2 + 0.8 * torch.sigmoid(fg(x)))
    assert torch.allclose(cnn, cnn_plain, atol=1e-6)
    assert torch.allclose(hist, torch.cat([hist_plain * 0.6 ** 0.5, weighted * 0.4 ** 0.5], 1), atol=1e-6)


def test_attach_refuses_a_wrong_map_or_patch_in_one_line(tmp_path, capsys):
    from association.foreground import ForegroundNet
    from mot.training.foreground import main, save_map

    _siamese_file(tmp_path / "plain.pt")
    save_map(tmp_path / "big.pt", ForegroundNet(), {"patch": [128, 64]})
    torch.save({"state_dict": {}, "meta": {"kind": "something else"}}, tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    for bad in ("big.pt", "other.pt", "broken.pt", "missing.pt"):
        code = main(["--map", str(tmp_path / bad), "--attach", f"{tmp_path / 'plain.pt'}={tmp_path / 'out.pt'}"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (bad, err)
        assert not (tmp_path / "out.pt").exists()
    assert main(["--masks", str(tmp_path / "nowhere"), "--frames", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "PennFudanPed" in capsys.readouterr().err
    for args, message in [(["--share", "0=0.5"], "--share gap '0'"), (["--attach", "in.pt"], "IN=OUT"),
                          (["--set", "stepz=3"], "unknown key")]:       # refused before any training
        assert main(args + ["--masks", str(tmp_path / "nowhere"), "--frames", str(tmp_path),
                            "--out", str(tmp_path / "m.pt")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------------- the share by frame gap

def _fg_embeddings(rng, n, k, m, s, a):
    """(n, 2k + m) embeddings [sqrt(s) [sqrt(1-a) p, sqrt(a) w], sqrt(1-s) c] and the unit parts."""
    p, w, c = (rng.normal(size=(n, d)) for d in (k, k, m))
    p, w, c = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (p, w, c))
    emb = np.hstack([np.sqrt(s * (1 - a)) * p, np.sqrt(s * a) * w, np.sqrt(1 - s) * c]).astype(np.float32)
    return emb, p, w, c


def _fg_by_gap(table, a0, k):
    """Shares by gap of a foreground share ``table`` alone (weights with a map of trained share ``a0``)."""
    return SharesByGap(k, None, GapTable.from_table(table, a0, "foreground_share"), weighted=True)


def test_the_share_by_gap_keeps_the_plain_colours_at_one_frame_and_the_trained_mix_beyond():
    rng = np.random.default_rng(0)
    k, s, a0 = 5, 0.5, 0.5
    g, gp, gw, gc = _fg_embeddings(rng, 3, k, 4, s, a0)
    e, ep, ew, ec = _fg_embeddings(rng, 2, k, 4, s, a0)
    by_gap = _fg_by_gap({1: 0.0, 2: 0.5}, a0, k)
    d = by_gap.distances(g, np.array([1, 2, 30]), e)
    without_map = 1 - (s * gp @ ep.T + (1 - s) * gc @ ec.T)                 # the embedding had no map
    np.testing.assert_allclose(d[0], without_map[0], atol=1e-6)
    np.testing.assert_allclose(d[1:], (1 - g @ e.T)[1:], atol=1e-6)        # the trained mix: plain cosine
    np.testing.assert_allclose(by_gap.distances(g, np.array([0, 1, 1]), e), without_map, atol=1e-6)
    quarter = _fg_by_gap({1: 0.25}, a0, k).distances(g, np.array([7, 7, 7]), e)
    np.testing.assert_allclose(quarter, 1 - (s * 0.75 * gp @ ep.T + s * 0.25 * gw @ ew.T + (1 - s) * gc @ ec.T),
                               atol=1e-6)
    for table, trained, message in [({}, a0, "empty"), ({0: 0.5}, a0, "integer"), ({1: 2}, a0, "not in"),
                                    ({1: 0.5}, 1.0, r"share in \(0, 1\)")]:
        with pytest.raises(ValueError, match=message):
            _fg_by_gap(table, trained, k)
    with pytest.raises(ValueError, match="foreground layer"):
        SharesByGap(k, None, GapTable.from_table({1: 0.5}, a0, "foreground_share"), weighted=False)


def test_appearance_features_compare_each_gallery_row_at_its_gap():
    from collections import deque

    from association.features import FeatureContext, compute
    from association.learned import AppearanceGallery
    from mot.tracker import Track
    from mot.types import Detections

    rng = np.random.default_rng(2)
    k, a0 = 6, 0.5
    g, *_ = _fg_embeddings(rng, 3, k, 5, 0.5, a0)
    e, *_ = _fg_embeddings(rng, 2, k, 5, 0.5, a0)
    track = Track(1, np.array([0, 0, 10, 20], np.float32), 1.0, 1)
    track.appearance = AppearanceGallery(deque(g), deque(), g.mean(0), frames=deque([2, 9, 10]),
                                         crowded=deque([False] * 3))
    dets = Detections(np.tile(np.array([[0, 0, 10, 20]], np.float32), (2, 1)), np.ones(2, np.float32),
                      {"embeddings": e})
    by_gap = _fg_by_gap({1: 0.0, 2: 0.5}, a0, k)
    names = ["appearance_min", "appearance_mean", "appearance_ema"]
    got = compute(names, FeatureContext([track], dets, 11, by_gap=by_gap))[0]
    plain = compute(names, FeatureContext([track], dets, 11))[0]
    d = by_gap.distances(g, np.array([9, 2, 1]), e)
    np.testing.assert_allclose(got[:, 0], d.min(0), atol=1e-6)
    np.testing.assert_allclose(got[:, 1], d.mean(0), atol=1e-6)
    ema = g.mean(0) / np.linalg.norm(g.mean(0))
    np.testing.assert_allclose(got[:, 2], by_gap.distances(ema[None], np.array([1]), e)[0], atol=1e-6)
    assert not np.allclose(got, plain)


def test_the_moving_average_is_compared_at_the_mean_age_of_what_it_holds():
    """The moving average is no one-frame-old sample: each update ages what it holds by the frames
    since the last one and weighs it by ``ema``, and ``appearance_ema`` compares it at the frames
    since the track was seen plus that age (a colour-only share at one frame leaves it alone)."""
    from types import SimpleNamespace

    from association.features import FeatureContext, compute
    from association.learned import LearnedAssociation, LearnedParams
    from mot.tracker import Track
    from mot.types import Detections

    rng = np.random.default_rng(4)
    k, a0 = 6, 0.5
    g, *_ = _fg_embeddings(rng, 4, k, 5, 0.5, a0)
    e, *_ = _fg_embeddings(rng, 2, k, 5, 0.5, a0)
    box = np.array([[0, 0, 10, 20]], np.float32)
    owner = SimpleNamespace(params=LearnedParams(ema=0.8))
    track = Track(1, box[0], 1.0, 1)
    ages = []
    for row, frame in zip(g, [1, 2, 3, 7]):      # seen three frames running, then after four
        LearnedAssociation.observe(owner, track, Detections(box, np.ones(1, np.float32), {"embeddings": row[None]}),
                                   0, frame)
        ages.append(track.appearance.ema_age)
    np.testing.assert_allclose(ages, [0.0, 0.8, 0.8 * 1.8, 0.8 * (0.8 * 1.8 + 4)], atol=1e-9)
    ema = track.appearance.ema / np.linalg.norm(track.appearance.ema)
    by_gap = _fg_by_gap({1: 0.0, 2: 0.5}, a0, k)
    dets = Detections(np.tile(box, (2, 1)), np.ones(2, np.float32), {"embeddings": e})
    got = compute(["appearance_ema"], FeatureContext([track], dets, 8, by_gap=by_gap))[0][:, 0]
    np.testing.assert_allclose(got, by_gap.distances(ema[None], np.array([1 + ages[-1]]), e)[0], atol=1e-6)
    assert not np.allclose(got, by_gap.distances(ema[None], np.array([1]), e)[0], atol=1e-4)


def test_the_share_by_gap_comes_from_the_weights_or_the_config(tmp_path):
    from association.siamese import AppearanceModel, AppearanceParams
    from mot.training.foreground import attach, save_map
    from association.foreground import ForegroundNet

    _siamese_file(tmp_path / "plain.pt")
    save_map(tmp_path / "map.pt", ForegroundNet(), {"patch": [64, 32]})
    attach(tmp_path / "plain.pt", tmp_path / "map.pt", tmp_path / "fg.pt", 0.1, 0.5, {2: 0.5, 1: 0.0})
    model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "fg.pt")), device="cpu")
    fg = model.by_gap.foreground
    assert fg.gaps.tolist() == [1, 2] and fg.shares.tolist() == [0.0, 0.5] and fg.trained == 0.5
    assert model.by_gap.hist_dim == 2048 and model.by_gap.weighted and model.by_gap.colour is None
    assert AppearanceModel(AppearanceParams(weights=str(tmp_path / "fg.pt"), foreground_share={}),
                           device="cpu").by_gap is None
    cases = [(dict(weights=str(tmp_path / "plain.pt"), foreground_share={1: 0.0}), "no foreground map"),
             (dict(weights=str(tmp_path / "fg.pt"), crowd_share={1: 0.5}), "crowd_share cannot be on"),
             (dict(weights=str(tmp_path / "fg.pt"), foreground_share={"x": 0.5}), "not an integer")]
    for params, message in cases:
        with pytest.raises(UserError, match=message) as info:
            AppearanceModel(AppearanceParams(**params), device="cpu")
        assert "\n" not in str(info.value)


def test_embeddings_at_a_gap_compare_as_the_share_by_gap_does():
    """``at_gap`` rescales the two colour layers so whole-embedding comparisons (the benchmarks')
    give the distances the tracker uses at that gap, and keeps the rows of unit length."""
    rng = np.random.default_rng(3)
    k, a0 = 5, 0.5
    g, *_ = _fg_embeddings(rng, 4, k, 6, 0.5, a0)
    e, *_ = _fg_embeddings(rng, 3, k, 6, 0.5, a0)
    by_gap = _fg_by_gap({1: 0.0, 2: 0.5, 30: 0.9}, a0, k)
    for gap in (1, 2, 10, 30):
        gg, ee = by_gap.at_gap(g, gap), by_gap.at_gap(e, gap)
        np.testing.assert_allclose(np.linalg.norm(gg, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(1 - gg @ ee.T, by_gap.distances(g, np.full(4, gap), e), atol=1e-6)
    np.testing.assert_array_equal(by_gap.at_gap(g, 2), g)          # the trained mix: as embedded
    assert not np.allclose(by_gap.at_gap(g, 1), g)


def test_a_colour_share_by_gap_weighs_the_colour_layer_and_the_cnn_at_each_gap():
    """``hist_share_by_gap`` moves the colour layer's share (both colour layers together, the
    foreground share inside it) against the CNN's: at share 1 the CNN part counts for nothing."""
    rng = np.random.default_rng(5)
    k, s0, a0 = 5, 0.5, 0.5
    g, gp, gw, gc = _fg_embeddings(rng, 3, k, 4, s0, a0)
    e, ep, ew, ec = _fg_embeddings(rng, 2, k, 4, s0, a0)
    colour = GapTable.from_table({1: 1.0, 2: 0.5}, s0, "hist_share_by_gap")
    both = SharesByGap(k, colour, GapTable.from_table({1: 0.0, 2: 0.5}, a0, "foreground_share"), weighted=True)
    d = both.distances(g, np.array([1, 2, 30]), e)
    np.testing.assert_allclose(d[0], 1 - (gp @ ep.T)[0], atol=1e-6)        # plain colours alone
    np.testing.assert_allclose(d[1:], (1 - g @ e.T)[1:], atol=1e-6)        # the trained mix
    quarter = SharesByGap(k, GapTable.from_table({1: 0.25}, s0, "hist_share_by_gap"), None, weighted=True)
    expected = 1 - (0.25 * ((1 - a0) * gp @ ep.T + a0 * gw @ ew.T) + 0.75 * gc @ ec.T)
    np.testing.assert_allclose(quarter.distances(g, np.array([4, 4, 4]), e), expected, atol=1e-6)
    for gap in (1, 2, 30):                                                  # the benchmarks' view agrees
        gg, ee = both.at_gap(g, gap), both.at_gap(e, gap)
        np.testing.assert_allclose(np.linalg.norm(gg, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(1 - gg @ ee.T, both.distances(g, np.full(3, gap), e), atol=1e-6)
    # weights without a foreground map: the colour layer is one histogram
    h, hp, _, hc = _fg_embeddings(rng, 3, k, 4, s0, 0.0)
    h = np.hstack([h[:, :k], h[:, 2 * k:]])
    only = SharesByGap(k, GapTable.from_table({1: 1.0, 10: 0.0}, s0, "hist_share_by_gap"))
    d = only.distances(h, np.array([1, 10, 3]), h)
    np.testing.assert_allclose(d[0], 1 - hp[0] @ hp.T, atol=1e-6)
    np.testing.assert_allclose(d[1], 1 - hc[1] @ hc.T, atol=1e-6)
    with pytest.raises(ValueError, match=r"share in \(0, 1\)"):
        GapTable.from_table({1: 1.0}, 1.0, "hist_share_by_gap")


def test_shares_by_gap_saved_beside_embeddings_read_back_alike(tmp_path):
    """``table``/``from_arrays`` round trip (the benchmarks save it beside their embeddings), and the
    layout saved before the colour share (a foreground share alone) still reads."""
    rng = np.random.default_rng(6)
    k = 4
    emb, *_ = _fg_embeddings(rng, 5, k, 3, 0.5, 0.5)
    both = SharesByGap(k, GapTable.from_table({1: 1.0, 2: 0.5}, 0.5, "hist_share_by_gap"),
                       GapTable.from_table({1: 0.0, 2: 0.5}, 0.5, "foreground_share"), weighted=True)
    np.savez(tmp_path / "t.npz", **both.table())
    with np.load(tmp_path / "t.npz") as z:
        back = SharesByGap.from_arrays(z)
    for gap in (1, 3):
        np.testing.assert_array_equal(back.at_gap(emb, gap), both.at_gap(emb, gap))
    old = {"fg_gaps": np.array([1.0, 2.0]), "fg_shares": np.array([0.0, 0.5]), "fg_layer": np.array([0.5, k])}
    np.testing.assert_array_equal(SharesByGap.from_arrays(old).at_gap(emb, 1), _fg_by_gap({1: 0.0, 2: 0.5}, 0.5, k).at_gap(emb, 1))
    assert SharesByGap.from_arrays({"frames": np.zeros(1)}) is None


def test_the_colour_share_by_gap_comes_from_the_weights_or_the_config(tmp_path):
    from association.siamese import AppearanceModel, AppearanceParams

    _siamese_file(tmp_path / "plain.pt")
    model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "plain.pt"), hist_share_by_gap={1: 1.0, 2: 0.5}),
                            device="cpu")
    assert model.by_gap.colour.shares.tolist() == [1.0, 0.5] and model.by_gap.foreground is None
    assert not model.by_gap.weighted and model.by_gap.colour.trained == 0.5
    blob = torch.load(tmp_path / "plain.pt", weights_only=True)
    blob["meta"]["hist_share_by_gap"] = {"1": 1.0}
    torch.save(blob, tmp_path / "meta.pt")
    assert AppearanceModel(AppearanceParams(weights=str(tmp_path / "meta.pt")), device="cpu").by_gap.colour.shares.tolist() == [1.0]
    assert AppearanceModel(AppearanceParams(weights=str(tmp_path / "meta.pt"), hist_share_by_gap={}),
                           device="cpu").by_gap is None
    cases = [(dict(hist_share_by_gap={1: 1.0}, hist_share=1.0), "all the distance or none"),
             (dict(hist_share_by_gap={1: 1.0}, crowd_share={1: 0.5}), "crowd_share cannot be on"),
             (dict(hist_share_by_gap={0: 1.0}), "not an integer")]
    for params, message in cases:
        with pytest.raises(UserError, match=message) as info:
            AppearanceModel(AppearanceParams(weights=str(tmp_path / "plain.pt"), **params), device="cpu")
        assert "\n" not in str(info.value)


def _boxes(people, frames):
    ids = np.tile(np.arange(1, people + 1), frames)
    f = np.repeat(np.arange(1, frames + 1), people)
    tlwh = np.stack([30.0 * ids, np.full(len(ids), 10.0), np.full(len(ids), 20.0), np.full(len(ids), 50.0)], 1)
    return {"frames": f, "ids": ids, "tlwh": tlwh.astype(np.float32)}


def test_the_benchmark_scores_weights_with_a_share_by_gap_as_the_tracker_compares_them(tmp_path):
    """The appearance benchmark compares a model with a foreground share at each gap's share: here
    the plain colours tell people apart and the weighted ones are noise, so at one frame (share 0)
    it scores as the plain colours do, above the weights' own half and half."""
    from association.foreground import ForegroundNet
    from association.siamese import AppearanceModel, AppearanceParams
    from mot.studies.appearance import gap_views, luv_histograms, score
    from mot.training.foreground import attach, save_map

    _siamese_file(tmp_path / "plain.pt")
    save_map(tmp_path / "map.pt", ForegroundNet(), {"patch": [64, 32]})
    attach(tmp_path / "plain.pt", tmp_path / "map.pt", tmp_path / "fg.pt", 0.1, 0.5, {1: 0.0, 2: 0.5})
    model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "fg.pt")), device="cpu")
    plain = AppearanceModel(AppearanceParams(weights=str(tmp_path / "plain.pt")), device="cpu")
    views = gap_views({"fg": model.embed, "plain": plain.embed, "hist": luv_histograms})
    assert list(views) == ["fg"] and views["fg"] == model.by_gap.at_gap

    rng = np.random.default_rng(4)
    k, a0, people, frames = 8, 0.5, 5, 12
    boxes = _boxes(people, frames)
    n = len(boxes["ids"])
    emb, *_ = _fg_embeddings(rng, n, k, 6, 0.5, a0)
    colours = rng.normal(size=(people, k))
    p = colours[boxes["ids"] - 1] + 0.3 * rng.normal(size=(n, k))      # each person's plain colours
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    emb[:, :k] = np.sqrt(0.5 * (1 - a0)) * p
    emb[:, k:2 * k] *= 3.0                                              # the weighted colours: loud noise
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    by_gap = _fg_by_gap({1: 0.0, 2: 0.5}, a0, k)
    gaps = (1, 5)
    got = score(boxes, {"m": emb}, gaps, {"m": by_gap.at_gap})["m"]
    own_mix = score(boxes, {"m": emb}, gaps)["m"]
    for gap in gaps:
        assert got[gap] == score(boxes, {"m": by_gap.at_gap(emb, gap)}, (gap,))["m"][gap]
    assert got[1]["auc"] > own_mix[1]["auc"] + 0.02 and got[1]["rank1"] > own_mix[1]["rank1"]
    assert got[5] == own_mix[5]                                          # share 0.5 = the trained mix


def test_a_misspelt_fold_is_refused_before_any_training(tmp_path):
    from mot.training.foreground import ForegroundParams, collect_crops

    (tmp_path / "PennFudanPed" / "masks").mkdir(parents=True)
    (tmp_path / "MOTS" / "MOT17-05").mkdir(parents=True)
    with pytest.raises(UserError, match="--without MOT17-5: no such MOTS sequence") as err:
        collect_crops(tmp_path, tmp_path, ["MOT17-5"], ForegroundParams())
    assert "\n" not in str(err.value)
