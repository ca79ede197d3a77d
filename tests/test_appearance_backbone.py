"""The MobileNetV2 backbone (ImageNet weights adapted to LUV), the three topologies, re-id data,
compression augmentation, hard negatives and the scene adaptation (pair mining, a two-pass run). CPU only; the
pretrained file is faked (a state dict with MobileNetV2's names), so no download is needed."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from association.adaptation import AdaptationParams, adapt, mine_pairs
from association.backbone import (IMAGENET_MEAN, IMAGENET_STD, MobileNetV2Features, fuse_batch_norm, load_imagenet,
                                  luv_to_rgb_map)
from association.patches import LUV_MEAN, LUV_STD
from association.siamese import AppearanceModel, AppearanceParams, SiameseNet, load_weights, network_meta, save_weights
from association.flow import FlowParams
from association.patches import PatchParams
from association.topologies import TOPOLOGIES, InNetworkNet, JointNet, build_network, pair_logits, topology_of
import mot
from mot.config import load_config
from mot.errors import UserError
from mot.io import TrackResults, read_ground_truth
from mot.pipeline import track_frames, track_sequence, without_adaptation
from mot.sequence import open_sequence
from mot.timing import StageTimer
from mot.studies.appearance import hard_negatives
from mot.training.siamese import TrainParams, batch_loss, build_model
from mot.training.siamese_data import compress, reid_files

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
PATCH = PatchParams(64, 32)


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    """A whole MobileNetV2 state dict (torchvision names) with random weights and statistics."""
    torch.manual_seed(0)
    net = MobileNetV2Features(3, 19)
    sd = {k: (torch.rand_like(v) + 0.5 if "running_var" in k else torch.randn_like(v.float()).to(v.dtype))
          for k, v in net.state_dict().items()}
    sd["classifier.1.weight"] = torch.randn(10, 1280)   # extra keys (the classifier) are ignored
    path = tmp_path_factory.mktemp("pre") / "mnv2.pt"
    torch.save(sd, path)
    return path, sd


def test_backbone_loads_by_name_and_maps_the_stem_to_luv(fake_imagenet):
    path, sd = fake_imagenet
    net = MobileNetV2Features(5, 14)
    load_imagenet(net, path)
    own = net.state_dict()
    torch.testing.assert_close(own["features.13.conv.6.weight"], sd["features.13.conv.6.weight"])
    assert not own["features.0.0.weight"][:, 3:].any()          # flow channels start at zero
    assert "features.14.conv.0.weight" not in own                # cut after 14 modules
    # The LUV stem followed by its batch norm answers a colour as the RGB stem answers it in RGB.
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    bgr = cv2.resize(bgr.reshape(64, 16, 3), (16, 64), interpolation=cv2.INTER_NEAREST).reshape(4, 16, 16, 3)
    luv = (cv2.cvtColor(bgr.reshape(64, 16, 3), cv2.COLOR_BGR2Luv).reshape(4, 16, 16, 3).astype(np.float32)
           - LUV_MEAN) / LUV_STD
    rgb = (bgr[..., ::-1].astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    ref = MobileNetV2Features(3, 1)
    load_imagenet(ref, path, rgb=True)
    ours = MobileNetV2Features(3, 1)
    load_imagenet(ours, path)
    with torch.no_grad():
        stem = lambda n, x: n.features[0][1](n.features[0][0](torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))  # noqa: E731
        a, b = stem(ref, rgb)[..., 1:-1, 1:-1].flatten(), stem(ours, luv)[..., 1:-1, 1:-1].flatten()
    assert np.corrcoef(a.numpy(), b.numpy())[0, 1] > 0.9


def test_luv_map_fits_colours():
    a, c = luv_to_rgb_map()
    assert a.shape == (3, 3) and c.shape == (3,)
    assert a[:, 0].min() > 0   # lightness raises every RGB channel


@pytest.mark.parametrize("damage", ["missing", "junk", "names", "shape"])
def test_a_wrong_pretrained_file_is_a_one_line_user_error(fake_imagenet, tmp_path, damage):
    path, sd = fake_imagenet
    bad = tmp_path / "bad.pt"
    if damage == "junk":
        bad.write_bytes(b"not a torch file at all")
    elif damage == "names":
        torch.save({k.replace("features", "layers"): v for k, v in sd.items()}, bad)
    elif damage == "shape":
        torch.save(dict(sd, **{"features.3.conv.0.weight": torch.zeros(7, 24, 1, 1)}), bad)
    with pytest.raises(UserError) as err:
        load_imagenet(MobileNetV2Features(3, 14), bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_train_script_reports_a_bad_pretrained_file_in_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_siamese.py"), "--data", str(tmp_path),
                           "--pretrained", str(bad), "--out", str(tmp_path / "w.pt"), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "bad.pt" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w.pt").exists()


def test_fused_batch_norm_gives_the_same_output():
    torch.manual_seed(1)
    net = SiameseNet(3, 16, backbone="mobilenetv2", depth=8, patch=(64, 32))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    net.eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        ref = net(x)
        fused = fuse_batch_norm(net)(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("backbone", ["plain", "mobilenetv2"])
def test_topology_shapes_loss_and_weights_round_trip(topology, backbone, tmp_path):
    torch.manual_seed(0)
    params = TrainParams(topology=topology, backbone=backbone, depth=5, width=8, embedding_dim=16,
                         hist_stripes=2, use_flow=True, patch_height=64, patch_width=32, joint_pairs=8)
    net = build_model(params, PATCH)
    assert topology_of(net) == topology
    x = torch.randn(8, 5, 64, 32)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    scores = pair_logits(net.eval(), x[:4], x[4:])
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    if topology == "joint":
        assert net(torch.cat([x[:2], x[2:4]], 1)).shape == (2, 2)
    else:
        assert net(x).shape == (8, (16 + 2 * 512))
    net.train()
    loss = batch_loss(net, x, ids, params, np.random.default_rng(0))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    save_weights(tmp_path / "w.pt", net, network_meta(net, PATCH, FlowParams()))
    again, meta = load_weights(tmp_path / "w.pt")
    assert meta["topology"] == topology and type(again) is type(net)
    torch.testing.assert_close(pair_logits(again.eval(), x[:4], x[4:]), pair_logits(net.eval(), x[:4], x[4:]))
    if topology == "joint":
        with pytest.raises(UserError, match="pair"):
            AppearanceModel(AppearanceParams(weights=str(tmp_path / "w.pt")), device="cpu")
    else:
        model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "w.pt")), device="cpu")
        image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        emb = model.embed(image, np.array([[10, 10, 30, 60], [50, 20, 30, 70]], np.float32))
        assert emb.shape == (2, 16 + 2 * 512)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_in_network_head_starts_as_a_decreasing_function_of_distance():
    net = InNetworkNet(SiameseNet(3, 8, width=4))
    e = torch.zeros(2, 8)
    far = torch.ones(2, 8)
    assert (net.head_logits(e, e) > net.head_logits(e, far)).all()


def test_joint_net_mirrors_the_branch_and_reads_stacked_channels():
    net = build_network("joint", SiameseNet(5, 8, backbone="mobilenetv2", depth=4, patch=(64, 32)))
    assert isinstance(net, JointNet) and net.features.in_channels == 10
    assert net.spec()["in_channels"] == 5


def test_reid_layouts(tmp_path):
    img = np.full((128, 48, 3), 90, np.uint8)
    (tmp_path / "c01").mkdir()
    for name in ("0003001.jpg", "0003004.jpg", "0007002.jpg"):
        cv2.imwrite(str(tmp_path / "c01" / name), img)
    got = [(f.name, i, c) for f, i, c in reid_files(tmp_path / "c01")]
    assert got == [("0003001.jpg", 3, 0), ("0003004.jpg", 3, 1), ("0007002.jpg", 7, 0)]
    (tmp_path / "c03").mkdir()
    for name in ("1001_00.jpg", "1001_07.jpg"):
        cv2.imwrite(str(tmp_path / "c03" / name), img)
    assert [(i, c) for _, i, c in reid_files(tmp_path / "c03")] == [(1001, 0), (1001, 1)]
    (tmp_path / "bad").mkdir()
    cv2.imwrite(str(tmp_path / "bad" / "person.jpg"), img)
    with pytest.raises(UserError, match="person.jpg"):
        reid_files(tmp_path / "bad")


def test_compression_changes_pixels_only_when_drawn():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (6, 40, 20, 3), dtype=np.uint8)
    same = compress(crops, np.random.default_rng(1), 0.0, (10, 20))
    np.testing.assert_array_equal(same, crops)
    out = compress(crops, np.random.default_rng(1), 1.0, (10, 20))
    assert out.shape == crops.shape and all((out[i] != crops[i]).any() for i in range(6))


def test_hard_negative_is_the_nearest_other_person():
    frames = np.array([1, 1, 1, 2, 2, 2])
    ids = np.array([1, 2, 3, 1, 2, 3])
    tlwh = np.array([[0, 0, 10, 20], [15, 0, 10, 20], [200, 0, 10, 20],
                     [2, 0, 10, 20], [14, 0, 10, 20], [201, 0, 10, 20]], np.float32)
    a, n = hard_negatives(frames, ids, tlwh, 1)
    assert dict(zip(ids[a].tolist(), ids[n].tolist())) == {1: 2, 2: 1, 3: 2}


def test_pair_mining_on_a_generated_sequence(synthetic_root):
    gt = read_ground_truth(synthetic_root / "SYN-A" / "gt" / "gt.txt")
    frames, ids, tlwh = gt.frames, gt.ids.copy(), gt.tlwh
    scores = np.full(len(ids), 0.9, np.float32)
    # A track the tracker is unsure of (low scores) and a short one give no pairs.
    unsure, short = np.unique(ids)[:2]
    scores[ids == unsure] = 0.2
    keep = (ids != short) | (frames <= frames[ids == short].min() + 2)
    frames, ids, tlwh, scores = frames[keep], ids[keep], tlwh[keep], scores[keep]
    params = AdaptationParams(min_length=10, min_rank=0.3, max_gap=5, max_iou=0.3, max_pairs=500)
    a, b, same = mine_pairs(frames, ids, tlwh, scores, params)
    assert same.any() and (~same).any() and same.sum() <= 500 and (~same).sum() <= 500
    assert (ids[a][same] == ids[b][same]).all()
    gaps = np.abs(frames[a] - frames[b])
    assert (gaps[same] >= 1).all() and (gaps[same] <= 5).all()
    assert (ids[a][~same] != ids[b][~same]).all() and (frames[a][~same] == frames[b][~same]).all()
    assert not np.isin(ids[np.concatenate([a, b])], [unsure, short]).any()
    from mot.geometry import iou_matrix_tlwh
    ious = np.array([iou_matrix_tlwh(tlwh[i:i + 1], tlwh[j:j + 1])[0, 0] for i, j in zip(a[~same], b[~same])])
    assert (ious <= 0.3).all()
    # Adapting on them moves the projection and lowers the pair loss on the scene.
    torch.manual_seed(0)
    net = SiameseNet(3, 8, width=4, patch=(32, 16))
    inputs = np.random.default_rng(0).standard_normal((len(ids), 3, 32, 16)).astype(np.float32)
    inputs[:, 0] += (ids % 5)[:, None, None].astype(np.float32)   # identity shows in the L channel
    before = net.project.weight.clone()
    first_conv = net.features[0][0].weight.clone()
    out = adapt(net, inputs, a, b, same, AdaptationParams(steps=40, batch=32, lr=1e-2))
    assert out["steps"] == 40 and out["loss_last"] < out["loss_first"]
    assert not torch.equal(before, net.project.weight)
    torch.testing.assert_close(first_conv, net.features[0][0].weight)   # only the projection learns


def test_adaptation_params_are_checked():
    assert AdaptationParams().validate() is None
    assert "min_length" in AdaptationParams(min_length=1).validate()
    assert "max_iou" in AdaptationParams(max_iou=2).validate()
    assert "min_rank" in AdaptationParams(min_rank=1.5).validate()
    with pytest.raises(UserError, match="adaptation.enabled needs an appearance feature"):
        load_config(ROOT / "configs" / "context.yaml", ["association.params.adaptation.enabled=true"])
    with pytest.raises(UserError, match="association.params.adaptation.steps"):
        load_config(None, ["association.params.adaptation.steps=many"])
    with pytest.raises(UserError) as info:   # the whole key, named once
        load_config(None, ["association.params.adaptation.min_rank=2"])
    assert str(info.value).startswith("config: association.params.adaptation: ") and str(info.value).count("params") == 1


def test_pair_mining_is_scale_free(synthetic_root):
    """Confidence is the scores' rank: multiplying them by 50 mines the same pairs."""
    gt = read_ground_truth(synthetic_root / "SYN-A" / "gt" / "gt.txt")
    scores = np.random.default_rng(3).uniform(0, 1, len(gt.ids)).astype(np.float32)
    params = AdaptationParams(min_length=5, min_rank=0.4, max_pairs=300)
    one = mine_pairs(gt.frames, gt.ids, gt.tlwh, scores, params)
    fifty = mine_pairs(gt.frames, gt.ids, gt.tlwh, scores * 50, params)
    for x, y in zip(one, fifty):
        np.testing.assert_array_equal(x, y)


def test_adapted_run_tracks_with_the_adapted_model(synthetic_root, tmp_path):
    """With adaptation on, a first pass's confident tracklets fine-tune the projection before the
    tracking pass: the run's embedder is no longer the shipped one, and the run still writes its file."""
    seq = open_sequence(synthetic_root / "SYN-A")
    overrides = ["association.params.adaptation.enabled=true", "association.params.adaptation.min_length=5",
                 "association.params.adaptation.min_rank=0.2", "association.params.adaptation.steps=5",
                 "runtime.prefetch=0"]
    cfg = load_config(None, overrides)
    tracker = mot.Tracker(seq.info.frame_rate, cfg)
    assert tracker.adapts
    shipped = tracker.association.embedder.net.project.weight.detach().clone()
    first = track_sequence(seq, without_adaptation(cfg))
    assert len(first) > 0
    out = tracker.adapt(first, seq.frames(prefetch=0))
    assert out["steps"] == 5 and out["pairs"] > 0 and out["tracks"] >= 2 and out["patches"] > 0
    assert not torch.equal(shipped, tracker.association.embedder.net.project.weight)
    with pytest.raises(ValueError, match="before the first update"):
        image = next(iter(seq.frames(prefetch=0)))[1]
        tracker.update(mot.Detections(np.zeros((0, 4)), []), image)
        tracker.adapt(first, seq.frames(prefetch=0))
    timer = StageTimer()
    rows = TrackResults.concatenate([r for _, r in track_frames(seq, cfg, timer=timer)])
    assert len(rows) > 0 and timer.seconds["adaptation"] > 0
    assert not mot.Tracker(seq.info.frame_rate, without_adaptation(cfg)).adapts
