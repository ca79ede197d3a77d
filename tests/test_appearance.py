"""Appearance: LUV patches, flow crops, the Siamese network, its losses, weights file and run-time model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from association.flow import FLOW_GAIN, FlowComputer, FlowParams, crop_flow
from association.patches import LUV_MEAN, LUV_STD, PAD_BGR, PatchParams, crop_patches
from association.siamese import (DEFAULT_WEIGHTS, AppearanceModel, AppearanceParams, SiameseNet,
                                 batch_hard_triplet_loss, contrastive_loss, embedding_distance, load_weights,
                                 SoftHistogram, network_meta, save_weights)
from mot.errors import UserError


def _texture(h=240, w=320, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 4, w // 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)


def _normalised_luv(bgr) -> np.ndarray:
    luv = cv2.cvtColor(np.uint8([[bgr]]), cv2.COLOR_BGR2Luv)[0, 0].astype(np.float32)
    return (luv - LUV_MEAN) / LUV_STD


@pytest.fixture
def weights(tmp_path):
    """A randomly initialised 5-channel model saved as a weights file."""
    torch.manual_seed(0)
    net = SiameseNet(5, 16, width=8).eval()
    path = tmp_path / "w.pt"
    save_weights(path, net, network_meta(net, PatchParams(), FlowParams()))
    return path


def test_patches_shape_and_normalisation():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = (200, 30, 40)
    patches = crop_patches(image, np.array([[10, 10, 40, 80], [120, 0, 50, 100]], np.float32))
    assert patches.shape == (2, 3, 128, 64) and patches.dtype == np.float32
    np.testing.assert_allclose(patches[0, :, 64, 32], _normalised_luv((200, 30, 40)), atol=1e-5)
    np.testing.assert_allclose(patches[1, :, 64, 32], _normalised_luv((0, 0, 0)), atol=1e-5)
    assert crop_patches(image, np.zeros((30, 4)), PatchParams(64, 32)).shape == (30, 3, 64, 32)


def test_patches_border_and_empty():
    image = np.full((100, 100, 3), 255, np.uint8)
    boxes = np.array([[-50, 0, 100, 100], [500, 500, 20, 40], [99.5, 99.5, 0.2, 0.2]], np.float32)
    patches = crop_patches(image, boxes)
    pad, white = _normalised_luv(PAD_BGR), _normalised_luv((255, 255, 255))
    np.testing.assert_allclose(patches[0, :, 64, 5], pad, atol=1e-5)     # left half is outside
    np.testing.assert_allclose(patches[0, :, 64, 60], white, atol=1e-5)  # right half inside
    np.testing.assert_allclose(patches[1], np.broadcast_to(pad[:, None, None], (3, 128, 64)), atol=1e-5)
    assert np.isfinite(patches).all()
    assert crop_patches(image, np.zeros((0, 4), np.float32)).shape == (0, 3, 128, 64)


def test_flow_first_frame_and_size_change_give_zeros():
    computer = FlowComputer(FlowParams(downscale=0.5))
    cur = _texture()
    assert computer.compute(None, cur).shape == (120, 160, 2)
    assert not computer.compute(None, cur).any()
    assert not computer.compute(_texture(100, 100), cur).any()
    assert crop_flow(computer.compute(None, cur), np.zeros((0, 4))).shape == (0, 2, 128, 64)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_a_shift_normalised_by_box_size(method):
    prev = _texture()
    cur = np.roll(prev, 4, axis=1)  # everything moves 4 px to the right
    params = FlowParams(method=method, downscale=1.0)
    flow = FlowComputer(params).compute(prev, cur)
    boxes = np.array([[100, 60, 40, 80], [150, 80, 80, 120]], np.float32)
    crops = crop_flow(flow, boxes, params)
    assert crops.shape == (2, 2, 128, 64)
    centre = np.median(crops[:, :, 32:96, 16:48], axis=(2, 3))
    np.testing.assert_allclose(centre[:, 0], 4 / boxes[:, 2] * FLOW_GAIN, rtol=0.2)
    np.testing.assert_allclose(centre[:, 1], 0, atol=0.05)


def test_network_embeddings_are_unit_length():
    for channels in (5, 3):
        net = SiameseNet(channels, 32, width=8).eval()
        out = net(torch.randn(4, channels, 128, 64))
        assert out.shape == (4, 32)
        np.testing.assert_allclose(out.norm(dim=1).detach().numpy(), 1, atol=1e-5)


def test_contrastive_loss_by_hand():
    d = torch.tensor([0.5, 0.2, 1.5, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    # 0.5^2 + (1 - 0.2)^2 + 0 + 0, over 4 pairs
    assert float(contrastive_loss(d, y, margin=1.0)) == pytest.approx((0.25 + 0.64) / 4)
    assert float(contrastive_loss(torch.zeros(0), torch.zeros(0))) == 0.0


def test_batch_hard_triplet_loss_by_hand():
    e = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # hardest positive / negative per anchor: a0 1 / 3, a1 1 / sqrt(10), a2 0.5 / 3, a3 0.5 / 3.5
    expected = np.mean([max(1 - 3 + 2.5, 0), max(1 - np.sqrt(10) + 2.5, 0), 0, 0])
    assert float(batch_hard_triplet_loss(e, labels, margin=2.5)) == pytest.approx(expected, rel=1e-5)
    assert float(batch_hard_triplet_loss(e, torch.tensor([0, 1, 2, 3]))) == 0.0  # no positives


def test_embedding_distance():
    a = np.eye(3, dtype=np.float32)
    d = embedding_distance(a, a[:2])
    assert d.shape == (3, 2)
    np.testing.assert_allclose(d, [[0, np.sqrt(2)], [np.sqrt(2), 0], [np.sqrt(2), np.sqrt(2)]], atol=1e-6)
    assert embedding_distance(np.zeros((0, 3)), a).shape == (0, 3)


def test_model_embeds_frames(weights):
    model = AppearanceModel(AppearanceParams(weights=str(weights), batch_size=2), device="cpu")
    prev, cur = _texture(seed=1), _texture(seed=2)
    boxes = np.array([[10, 10, 30, 60], [-10, 200, 40, 80], [100, 50, 25, 70]], np.float32)
    first = model.embed(cur, boxes)  # first frame: no previous image
    emb = model.embed(cur, boxes, prev)
    assert emb.shape == first.shape == (3, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert model.embed(cur, np.zeros((0, 4), np.float32), prev).shape == (0, 16)
    zeroed = AppearanceModel(AppearanceParams(weights=str(weights), use_flow=False), device="cpu")
    np.testing.assert_allclose(zeroed.embed(cur, boxes, prev), first, atol=1e-5)


def test_weights_errors_are_one_line(tmp_path, weights):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="not a readable Siamese weights file"):
        load_weights(bad)
    with pytest.raises(UserError, match="not found"):
        load_weights(tmp_path / "missing.pt")
    blob = torch.load(weights, weights_only=True)
    blob["meta"]["in_channels"] = 3  # metadata that does not fit the tensors
    torch.save(blob, tmp_path / "mismatch.pt")
    with pytest.raises(UserError, match="do not match their metadata") as info:
        load_weights(tmp_path / "mismatch.pt")
    assert "\n" not in str(info.value)
    blob["meta"].update(in_channels=5, luv_std=[1.0, 1.0, 1.0])
    torch.save(blob, tmp_path / "luv.pt")
    with pytest.raises(UserError, match="LUV normalisation"):
        load_weights(tmp_path / "luv.pt")
    blob["meta"].update(version=999)
    torch.save(blob, tmp_path / "version.pt")
    with pytest.raises(UserError, match="version"):
        load_weights(tmp_path / "version.pt")
    net = SiameseNet(3, 16, width=8)
    save_weights(tmp_path / "luv.pt", net, network_meta(net, PatchParams(), None))
    with pytest.raises(UserError, match="trained without flow"):
        AppearanceModel(AppearanceParams(weights=str(tmp_path / "luv.pt"), use_flow=True), device="cpu")


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="no shipped weights")
def test_shipped_weights_load():
    model = AppearanceModel(device="cpu")
    # the shipped recipe (docs/training.md): MobileNetV2 cut at module 14, 64x32 LUV patches, no flow
    assert model.meta["backbone"] == "mobilenetv2" and model.meta["depth"] == 14
    assert model.meta["patch_height"] == 64 and model.meta["patch_width"] == 32
    assert model.meta["in_channels"] == 3 and not model.use_flow
    # since 5 December 2026 with the learned foreground map, used from two frames on (G,
    # docs/appearance-last-cell.md): plain colours between consecutive frames, half and half beyond
    assert model.net.fg is not None and model.net.fg_floor == pytest.approx(0.1)
    assert model.by_gap.foreground is not None and model.crowd is None
    np.testing.assert_allclose(model.by_gap.foreground.shares, [0.0, 0.5])
    np.testing.assert_allclose(model.by_gap.foreground.gaps, [1.0, 2.0])
    assert DEFAULT_WEIGHTS.stat().st_size < 5e6


def test_soft_histogram_of_flat_colours():
    """A box whose top half is one colour and bottom half another: with sharp votes each stripe's
    histogram is one bin (that colour's LUV bin, as in ``colour_histograms``), so two boxes that
    differ only in the bottom colour are at the Hellinger distance of one stripe in two."""
    image = np.zeros((128, 128, 3), np.uint8)
    image[:64] = (200, 30, 40)
    image[64:, :64] = (20, 160, 60)
    image[64:, 64:] = (90, 90, 220)
    x = torch.from_numpy(crop_patches(image, np.array([[0, 0, 64, 128], [64, 0, 64, 128]], np.float32)))
    layer = SoftHistogram(bins=8, stripes=2, pool=2, sharpness=200.0)
    with torch.no_grad():
        h = layer(x).numpy()
    assert h.shape == (2, 2 * 512)
    np.testing.assert_allclose(np.linalg.norm(h, axis=1), 1.0, atol=1e-5)
    luv = cv2.cvtColor(np.uint8([[[200, 30, 40]]]), cv2.COLOR_BGR2Luv)[0, 0] // 32
    top_bin = luv[0] * 64 + luv[1] * 8 + luv[2]
    assert h[0, top_bin] == pytest.approx(1 / np.sqrt(2), abs=1e-3) and h[1, top_bin] == pytest.approx(1 / np.sqrt(2), abs=1e-3)
    # same top stripe, bottoms in different bins: squared distance 2 * (1/2) = 1
    assert ((h[0] - h[1]) ** 2).sum() == pytest.approx(1.0, abs=1e-3)


def test_soft_histogram_pyramid_joins_its_levels():
    """With levels = 3 the layer's output is the 4-, 2- and 1-stripe layers' outputs (same mask and
    sharpness) joined, each level with a third of the squared distance; stripes that do not halve
    that many times are refused."""
    torch.manual_seed(0)
    x = torch.randn(3, 3, 64, 32)
    layers = [SoftHistogram(bins=4, stripes=s, pool=2, height=64, width=32) for s in (4, 2, 1)]
    pyramid = SoftHistogram(bins=4, stripes=4, pool=2, height=64, width=32, levels=3)
    with torch.no_grad():
        pyramid.mask.copy_(torch.rand_like(pyramid.mask) * 3 - 1)
        pyramid.sharpness.fill_(2.0)
        for layer in layers:
            layer.load_state_dict(pyramid.state_dict())
        out = pyramid(x)
        expected = torch.cat([layer(x) for layer in layers], 1) / 3 ** 0.5
    assert out.shape == (3, (4 + 2 + 1) * 64) == (3, pyramid.output_dim)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="6 stripes do not halve into 3 pyramid levels"):
        SoftHistogram(stripes=6, levels=3)


def test_histogram_branch_shares_the_distance():
    """With the colour branch on, the squared distance of two embeddings is hist_share times the
    histogram part's plus (1 - hist_share) times the CNN part's, and gradients reach the mask."""
    torch.manual_seed(0)
    net = SiameseNet(5, 16, width=8, hist_stripes=4, hist_share=0.7).eval()
    x = torch.randn(2, 5, 128, 64)
    e = net(x)
    assert e.shape == (2, 16 + 4 * 512) == (2, net.output_dim)
    np.testing.assert_allclose(e.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    with torch.no_grad():
        h = net.hist(x[:, :3])
        c = torch.nn.functional.normalize(net.project(net.pool(net.features(x)).flatten(1)), dim=1)
    d2 = float(((e[0] - e[1]) ** 2).sum().detach())
    expected = 0.7 * float(((h[0] - h[1]) ** 2).sum()) + 0.3 * float(((c[0] - c[1]) ** 2).sum())
    assert d2 == pytest.approx(expected, rel=1e-5)
    ((e[0] - e[1]) ** 2).sum().backward()
    assert net.hist.mask.grad is not None and net.hist.mask.grad.abs().sum() > 0


def test_histogram_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    net = SiameseNet(3, 16, width=8, hist_stripes=2, hist_share=0.6, hist_levels=2).eval()
    with torch.no_grad():
        net.hist.mask.add_(torch.randn_like(net.hist.mask))
    save_weights(tmp_path / "h.pt", net, network_meta(net, PatchParams(), None))
    again, meta = load_weights(tmp_path / "h.pt")
    assert meta["hist_stripes"] == 2 and meta["hist_share"] == 0.6 and meta["hist_levels"] == 2
    assert again.output_dim == 16 + (2 + 1) * 512
    x = torch.randn(3, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x))


def test_cnn_part_is_the_embedding_without_its_colour_layer(tmp_path):
    """AppearanceModel.cnn_part: the run-time model's embedding cut to its CNN half, of unit length,
    equal to what SiameseNet.halves gives for the same patches (the matcher's ``cnn_min`` reads it)."""
    torch.manual_seed(0)
    net = SiameseNet(3, 16, width=8, hist_stripes=2, hist_share=0.6).eval()
    save_weights(tmp_path / "h.pt", net, network_meta(net, PatchParams(), None))
    model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "h.pt")), device="cpu")
    image, boxes = _texture(), np.array([[10, 20, 40, 90], [150, 60, 50, 120], [250, 10, 30, 80]], np.float32)
    cnn = model.cnn_part(model.embed(image, boxes))
    with torch.no_grad():
        _, expected = net.halves(torch.from_numpy(model.inputs(image, boxes)))
    assert cnn.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(cnn, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cnn, expected.numpy(), atol=1e-4)
