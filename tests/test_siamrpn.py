"""The SiamRPN refiner: crops, anchors, targets, batching, weights metadata, tracker hooks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from association.iou import IoUAssociation, IoUParams
from mot.config import RefinerConfig, TrackerConfig, load_config
from mot.errors import UserError
from mot.geometry import iou_matrix_tlwh
from mot.refiner import Refiner, RefinerState, SiamRPN
from mot.siamrpn import (PIXEL_MEAN, PIXEL_STD, Geometry, SiamRPNNet, assign_targets, crop_regions, decode, encode,
                         load_weights, make_anchors, save_weights, square_regions)
from mot.tracker import Track, TrackManager, TrackState
from mot.training.siamrpn_data import polygon_to_tlwh
from mot.types import Detections

ROOT = Path(__file__).resolve().parents[1]
TINY = Geometry(template_size=32, search_size=64, anchor_size=15.0, anchor_ratios=[0.4, 0.6], width=4)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = SiamRPNNet(TINY)
    with torch.no_grad():                         # non-trivial BN statistics, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    save_weights(path, net.eval(), {"command": "test"})
    return path


def test_crop_at_image_borders_is_padded_with_mean_colour():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :, 1] = 200
    mean = image.reshape(-1, 3).mean(axis=0)
    # A 10x10 square whose top-left 5x5 quarter lies outside the image; cropped at full size.
    out = crop_regions(image, np.array([[-5, -5, 10, 10], [100, 100, 10, 10]], np.float32), 10)
    raw = out * PIXEL_STD + PIXEL_MEAN                        # back to pixel values, (N, 3, H, W)
    assert raw.shape == (2, 3, 10, 10)
    assert np.allclose(raw[0, :, 5:, 5:].transpose(1, 2, 0), image[:5, :5], atol=1e-3)
    assert np.allclose(raw[0, :, :5, :].transpose(1, 2, 0), mean, atol=1)
    assert np.allclose(raw[1].transpose(1, 2, 0), mean, atol=1)   # wholly outside: all padding


def test_square_regions_are_whole_pixels_centred():
    r = square_regions(np.array([[10.3, 20.7]], np.float32), np.array([9.6], np.float32))
    assert r.tolist() == [[5.0, 16.0, 10.0, 10.0]]
    assert np.abs(r[0, :2] + r[0, 2:] / 2 - [10.3, 20.7]).max() <= 0.5


def test_anchor_generation():
    g = Geometry()
    a = make_anchors(g)
    n = g.score_size
    assert a.shape == (g.k, n, n, 4) and n == 9
    assert np.allclose(a[:, n // 2, n // 2, :2], 0)                      # centre cell at the crop centre
    assert np.allclose(np.diff(a[0, 0, :, 0]), g.stride)                 # columns one stride apart
    assert np.allclose(np.diff(a[0, :, 0, 1]), g.stride)
    assert np.allclose(a[:, 0, 0, 2] / a[:, 0, 0, 3], g.anchor_ratios)   # width / height
    assert np.allclose(np.sqrt(a[:, 0, 0, 2] * a[:, 0, 0, 3]), g.anchor_size)


def test_target_assignment_hand_made():
    g = Geometry(template_size=16, search_size=32, stride=8, anchor_size=8.0, anchor_ratios=[1.0])
    anchors = make_anchors(g)                      # 3x3 cells of 8x8 anchors at -8, 0, 8
    labels, deltas = assign_targets(anchors, np.array([2.0, 0.0, 8.0, 8.0]), pos_iou=0.6, neg_iou=0.3)
    # Centre anchor: overlap 6x8 = 48, union 80 -> IoU 0.6 (positive); right one: 16 / 112 (negative).
    assert labels[0, 1, 1] == 1
    assert labels[0, 1, 2] == 0 and labels[0, 0, 0] == 0
    assert (labels == 1).sum() == 1
    assert np.allclose(deltas[0, 1, 1], [0.25, 0.0, 0.0, 0.0])
    # A box between two anchors (IoU 1/3 with each): ignored by the thresholds, but the best one
    # (the first) is made positive so the target still has one.
    labels, _ = assign_targets(anchors, np.array([4.0, 0.0, 8.0, 8.0]), pos_iou=0.6, neg_iou=0.3)
    assert labels[0, 1, 1] == 1 and labels[0, 1, 2] == -1


def test_encode_decode_round_trip():
    a = np.array([[0, 0, 10, 20], [5, -3, 8, 8]], np.float32)
    b = np.array([[1, 2, 12, 18], [4, -1, 6, 10]], np.float32)
    back = decode(torch.from_numpy(a), torch.from_numpy(encode(a, b))).numpy()
    assert np.allclose(back, b, atol=1e-4)


def test_polygon_to_box_keeps_centre_and_area():
    square = np.array([[0, 5, 5, 0, 10, 5, 5, 10]], np.float32)           # a 45-degree square
    box = polygon_to_tlwh(square)[0]
    assert np.allclose(box[:2] + box[2:] / 2, [5, 5])
    assert np.isclose(box[2] * box[3], 50, rtol=1e-4)


def test_batched_search_equals_one_by_one(tiny_weights):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 12, 30], [-5, 40, 14, 36], [140, 90, 16, 40], [60, 30, 10, 25]], np.float32)
    s = SiamRPN(tiny_weights, "cpu")
    z = s.templates(image, boxes)
    assert z.shape[0] == 4
    batched, scores = s.search(image, z, boxes + 2)
    for i in range(4):
        one, sc = s.search(image, s.templates(image, boxes[i:i + 1]), boxes[i:i + 1] + 2)
        assert np.allclose(one[0], batched[i], atol=1e-3) and np.isclose(sc[0], scores[i], atol=1e-5)
    s.batch_size = 3                                 # split batches give the same answer too
    assert np.allclose(s.search(image, z, boxes + 2)[0], batched, atol=1e-3)
    assert s.search(image, z[:0], np.zeros((0, 4), np.float32))[0].shape == (0, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_is_picked_automatically_and_agrees_with_cpu(tiny_weights):
    image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 12, 30], [60, 30, 10, 25]], np.float32)
    gpu, cpu = SiamRPN(tiny_weights, "auto"), SiamRPN(tiny_weights, "cpu")
    assert gpu.device.type == "cuda"
    a = gpu.search(image, gpu.templates(image, boxes), boxes)[0]
    b = cpu.search(image, cpu.templates(image, boxes), boxes)[0]
    assert np.allclose(a, b, atol=1e-2)


def test_weights_metadata_checked_on_load(tiny_weights, tmp_path):
    net, meta = load_weights(tiny_weights)
    assert meta["geometry"]["template_size"] == 32 and meta["command"] == "test"
    blob = torch.load(tiny_weights, weights_only=True)

    def broken(change, name):
        b = {"meta": dict(blob["meta"]), "state_dict": dict(blob["state_dict"])}
        change(b)
        p = tmp_path / name
        torch.save(b, p)
        return p

    with pytest.raises(UserError, match="version 99, this code reads 1"):
        load_weights(broken(lambda b: b["meta"].update(version=99), "v.pt"))
    with pytest.raises(UserError, match="anchors in the metadata do not match"):
        load_weights(broken(lambda b: b["meta"].update(anchors=[[1.0, 2.0]] * 2), "a.pt"))
    geom = {**blob["meta"]["geometry"], "width": 8}
    with pytest.raises(UserError, match="do not fit the network"):
        load_weights(broken(lambda b: b["meta"].update(geometry=geom), "g.pt"))
    with pytest.raises(UserError, match="geometry metadata must have keys"):
        load_weights(broken(lambda b: b["meta"].update(geometry={"template_size": 32}), "k.pt"))
    with pytest.raises(UserError, match="not a SiamRPN weights file"):
        load_weights(broken(lambda b: b["meta"].update(format="other"), "f.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="not a readable SiamRPN weights file"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="weights not found"):
        load_weights(tmp_path / "missing.pt")


def test_shipped_weights_load():
    net, meta = load_weights(ROOT / "mot" / "weights" / "siamrpn.pt")
    assert meta["command"].startswith("python scripts/train_siamrpn.py")
    assert (ROOT / "mot" / "weights" / "siamrpn.pt").stat().st_size < 3_000_000


class _OracleSearcher:
    """Stands in for the network: 'finds' each track at its true position (the glue under test)."""

    def __init__(self, truth):
        self.truth = truth            # frame -> (4,) tlwh of the person
        self.frame = 0

    def templates(self, image, tlwh):
        return torch.zeros(len(tlwh), 1)

    def search(self, image, templates, tlwh):
        return np.repeat(self.truth[self.frame][None], len(tlwh), axis=0), np.full(len(tlwh), 0.9, np.float32)


def _walk(frames):
    return {f: np.array([10 + 3 * f, 20, 20, 50], np.float32) for f in frames}


def test_track_carried_through_detector_gap_then_same_id():
    truth = _walk(range(1, 15))
    gap = {6, 7, 8}
    searcher = _OracleSearcher(truth)
    cfg = RefinerConfig(enabled=True, carry_max_frames=5)
    tracker = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=2, max_age=1), IoUAssociation(IoUParams(min_iou=0.5)),
                      Refiner(cfg, searcher=searcher))
    image = np.zeros((10, 10, 3), np.uint8)
    rows = []
    for f in range(1, 15):
        searcher.frame = f
        dets = Detections.empty() if f in gap else Detections(truth[f][None] + 1.0, np.ones(1, np.float32))
        rows.append(tracker.update(dets, f, image))
    out = {int(f): (int(i), b) for r in rows for f, i, b in zip(r.frames, r.ids, r.tlwh)}
    assert all(f in out for f in gap)                                  # the gap frames are output
    assert {i for i, _ in out.values()} == {1}                         # one identity throughout
    assert all(iou_matrix_tlwh(out[f][1][None], truth[f][None])[0, 0] > 0.8 for f in gap)
    assert tracker.tracks[0].hits == 14 - len(gap)                     # carried frames are not hits
    assert tracker.tracks[0].refinement.refined_score == pytest.approx(0.9)


def test_carry_stops_after_max_frames_and_below_score():
    truth = _walk(range(1, 12))
    searcher = _OracleSearcher(truth)
    tracker = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1, max_age=30), IoUAssociation(IoUParams(min_iou=0.5)),
                      Refiner(RefinerConfig(enabled=True, carry_max_frames=2, carry_output="immediate"),
                              searcher=searcher))
    held = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1, max_age=30), IoUAssociation(IoUParams(min_iou=0.5)),
                   Refiner(RefinerConfig(enabled=True, carry_max_frames=2, carry_output="on_rematch"),
                           searcher=searcher))
    image = np.zeros((10, 10, 3), np.uint8)
    out, out_held = [], []
    for f in range(1, 8):
        searcher.frame = f
        dets = Detections(truth[f][None], np.ones(1, np.float32)) if f <= 2 else Detections.empty()
        out.append(tracker.update(dets, f, image).frames.tolist())
        out_held.append(held.update(dets, f, image).frames.tolist())
    assert out == [[1], [2], [3], [4], [], [], []]
    assert tracker.tracks[0].state is TrackState.LOST
    assert out_held == [[1], [2], [], [], [], [], []]          # never re-found: carried rows dropped
    tracker2 = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1), IoUAssociation(IoUParams(min_iou=0.5)),
                       Refiner(RefinerConfig(enabled=True, carry_min_score=0.95), searcher=searcher))
    searcher.frame = 1
    tracker2.update(Detections(truth[1][None], np.ones(1, np.float32)), 1, image)
    searcher.frame = 2
    assert len(tracker2.update(Detections.empty(), 2, image)) == 0     # score 0.9 < 0.95: not carried


class _BiasedSearcher(_OracleSearcher):
    """'Finds' each track 6 px right of the person: a refiner that drifts."""

    def search(self, image, templates, tlwh):
        boxes, scores = super().search(image, templates, tlwh)
        return boxes + np.array([6, 0, 0, 0], np.float32), scores


def _run_gap(refiner, truth, gap, kalman=True):
    motion = "kalman" if kalman else "velocity"
    tracker = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=2, max_age=10, motion=motion), IoUAssociation(IoUParams(min_iou=0.3)),
                      refiner)
    image = np.zeros((10, 10, 3), np.uint8)
    rows = []
    for f in sorted(truth):
        if refiner is not None:
            refiner.searcher.frame = f
        dets = Detections.empty() if f in gap else Detections(truth[f][None], np.ones(1, np.float32))
        rows.append(tracker.update(dets, f, image))
    out = {int(f): b for r in rows for f, b in zip(r.frames, r.tlwh)}
    return tracker, out


def test_carried_boxes_are_not_kalman_measurements():
    """A drifting refiner box is output for the gap but does not move the filter: after the track is
    found again its state equals that of the same track merely lost through the gap."""
    truth, gap = _walk(range(1, 16)), {7, 8, 9}
    carried, out = _run_gap(Refiner(RefinerConfig(enabled=True), searcher=_BiasedSearcher(truth)), truth, gap)
    lost, out_lost = _run_gap(None, truth, gap)
    assert all(f in out for f in gap) and not any(f in out_lost for f in gap)
    np.testing.assert_allclose(carried.tracks[0].kalman.mean, lost.tracks[0].kalman.mean, rtol=1e-6)
    assert all(np.allclose(out[f], out_lost[f]) for f in out_lost)


@pytest.mark.parametrize("mode", ["none", "drift", "interpolate"])
def test_carry_correction_once_found_again(mode):
    """The person walks 3 px a frame; the refiner sees them 6 px too far right. Held boxes: as the
    refiner saw them (none), less the error at the re-found frame in proportion to their place in
    the gap (drift: the frame after the gap has error 6, so frame 7 of gap 7..9 after frame 6 loses
    6 * 1/4), or on the line between the detection boxes either side (interpolate: the truth)."""
    truth, gap = _walk(range(1, 16)), {7, 8, 9}
    _, out = _run_gap(Refiner(RefinerConfig(enabled=True, carry_correction=mode), searcher=_BiasedSearcher(truth)),
                      truth, gap)
    for f in sorted(gap):
        err = out[f][0] - truth[f][0]
        expected = {"none": 6.0, "drift": 6.0 - 6.0 * (f - 6) / 4, "interpolate": None}[mode]
        if expected is None:
            # the line between the filtered boxes at frames 6 and 10 (within a pixel of the truth)
            assert abs(err) < 1.0
        else:
            assert err == pytest.approx(expected, abs=0.3), (f, err)
    with pytest.raises(UserError, match="carry_correction must be none, drift or interpolate"):
        load_config(None, ["refiner.carry_correction=spline"])


@pytest.mark.parametrize("agreement, kept", [(0.0, True), (0.5, True), (0.6, False)])
def test_carry_min_agreement_drops_gaps_the_refiner_lost(agreement, kept):
    """The biased refiner's box at the re-found frame overlaps the detection there by IoU 0.54
    (6 px off a 20 px wide box): below the agreement asked for, the held gap boxes are dropped, and
    nothing else of the track changes."""
    truth, gap = _walk(range(1, 16)), {7, 8, 9}
    cfg = RefinerConfig(enabled=True, carry_min_agreement=agreement)
    _, out = _run_gap(Refiner(cfg, searcher=_BiasedSearcher(truth)), truth, gap)
    _, out_lost = _run_gap(None, truth, gap)
    assert all((f in out) == kept for f in gap)
    assert sorted(set(out) - gap) == sorted(out_lost)
    assert all(np.allclose(out[f], out_lost[f]) for f in out_lost)


def test_carry_min_agreement_keeps_a_refiner_on_the_person():
    truth, gap = _walk(range(1, 16)), {7, 8, 9}
    _, out = _run_gap(Refiner(RefinerConfig(enabled=True, carry_min_agreement=0.9), searcher=_OracleSearcher(truth)),
                      truth, gap)
    assert all(f in out for f in gap)
    with pytest.raises(UserError, match="carry_min_agreement must be in"):
        load_config(None, ["refiner.carry_min_agreement=1.5"])


def test_carry_only_tracks_with_high_ranked_scores():
    """carry_min_score_rank 0.5: only a track whose median detection score is above the median of
    all detection scores seen so far is carried (scores are ranked, so their scale does not matter)."""
    truth = _walk(range(1, 12))
    searcher = _OracleSearcher(truth)
    refiner = Refiner(RefinerConfig(enabled=True, carry_min_score_rank=0.5), searcher=searcher)
    tracker = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1, max_age=30), IoUAssociation(IoUParams(min_iou=0.5)), refiner)
    image = np.zeros((10, 10, 3), np.uint8)
    far = np.array([200, 200, 20, 50], np.float32)     # a second, weak track far away
    for f in (1, 2):
        searcher.frame = f
        tracker.update(Detections(np.stack([truth[f], far]), np.array([80.0, 10.0], np.float32)), f, image)
    searcher.frame = 3
    rows = tracker.update(Detections.empty(), 3, image)
    assert rows.frames.tolist() == []                  # carried rows are held until re-found
    carried = {t.id: t.refinement.carried for t in tracker.tracks}
    assert carried == {1: 1, 2: 0}                     # the strong track is carried, the weak one is not
    # scores seen [80, 10, 80, 10] (frame 3 has none): the top score ranks 1, 10 mid-ranks 0.25
    assert refiner._score_rank(tracker.tracks[0]) == 1.0 and refiner._score_rank(tracker.tracks[1]) == 0.25


def test_fuse_modes():
    searcher = _OracleSearcher({1: np.array([0, 0, 10, 20], np.float32)})
    track = type("T", (), {})()
    track.refinement = RefinerState(result=(1, np.array([0, 0, 10, 20], np.float32), 0.9))
    det = np.array([2, 2, 10, 20], np.float32)
    assert np.allclose(Refiner(RefinerConfig(fuse="none"), searcher=searcher).fuse(track, det), det)
    assert np.allclose(Refiner(RefinerConfig(fuse="replace"), searcher=searcher).fuse(track, det), [0, 0, 10, 20])
    mixed = Refiner(RefinerConfig(fuse="average", fuse_weight=0.5), searcher=searcher).fuse(track, det)
    assert np.allclose(mixed, [1, 1, 10, 20])
    picky = Refiner(RefinerConfig(fuse="replace", fuse_min_score=0.95), searcher=searcher)
    assert np.allclose(picky.fuse(track, det), det)


def test_refiner_config_and_no_refiner_yaml():
    cfg = load_config(ROOT / "configs" / "no_refiner.yaml")
    assert cfg.refiner.enabled is False
    default = load_config(None)                  # = configs/default.yaml (tests/test_config.py)
    assert dataclasses.replace(default, refiner=dataclasses.replace(default.refiner, enabled=False)) == cfg
    with pytest.raises(UserError, match="refiner: fuse must be none, replace or average"):
        load_config(None, ["refiner.fuse=mean"])
    with pytest.raises(UserError, match="unknown key 'refiner.carry_frames'"):
        load_config(None, ["refiner.carry_frames=3"])


class _CountingSearcher(_OracleSearcher):
    """Templates numbered by the frame that cut them, so a test can tell old from new."""

    def templates(self, image, tlwh):
        return torch.full((len(tlwh), 1), float(self.frame))


@pytest.mark.parametrize("limit, kept_old", [(1.0, False), (0.3, True)])
def test_template_kept_while_the_box_overlaps_another_detection(limit, kept_old):
    """Frame 1: two people apart; frame 2: the second walks into the first (IoU 0.6 with it). With
    template_max_overlap 0.3 the first keeps its frame-1 template; at 1.0 it takes the mixed crop."""
    a = np.array([100, 50, 20, 50], np.float32)
    far, near = np.array([300, 50, 20, 50], np.float32), np.array([105, 50, 20, 50], np.float32)
    searcher = _CountingSearcher({1: a, 2: a})
    refiner = Refiner(RefinerConfig(enabled=True, template_max_overlap=limit), searcher=searcher)
    tracker = TrackManager(TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1), IoUAssociation(IoUParams(min_iou=0.5)), refiner)
    image = np.zeros((10, 10, 3), np.uint8)
    for f, other in ((1, far), (2, near)):
        searcher.frame = f
        tracker.update(Detections(np.stack([a, other]), np.ones(2, np.float32)), f, image)
    first = next(t for t in tracker.tracks if t.start_frame == 1 and np.allclose(t.tlwh[:2], a[:2], atol=1))
    assert float(first.refinement.template[0]) == (1.0 if kept_old else 2.0)
    newcomer = next(t for t in tracker.tracks if t.start_frame == 2)
    assert float(newcomer.refinement.template[0]) == 2.0        # no template yet: takes the overlapped one
    with pytest.raises(UserError, match="template_max_overlap must be in"):
        load_config(None, ["refiner.template_max_overlap=2"])


def test_score_sample_stays_bounded_and_keeps_ranks():
    """Past its cap the sorted score sample is thinned, and a score's rank barely moves."""
    refiner = Refiner(RefinerConfig(enabled=True), searcher=_OracleSearcher({}))
    rng = np.random.default_rng(0)
    for _ in range(70):
        refiner.observe_scores(rng.uniform(0, 100, 1000).astype(np.float32))
    assert len(refiner.ranks) <= refiner.ranks.memory
    assert np.all(np.diff(refiner.ranks._sorted) >= 0)
    track = Track(1, np.array([0, 0, 10, 20], np.float32), 75.0, 1)
    assert refiner._score_rank(track) == pytest.approx(0.75, abs=0.01)


def test_score_rank_takes_the_median_of_the_track():
    """A person seen by a CNN detector: scores near 1 with one weak detection. Its median (0.975)
    ranks above 4 of the 6 scores seen; its mean (0.765) would rank above only 1 of them."""
    refiner = Refiner(RefinerConfig(enabled=True), searcher=_OracleSearcher({}))
    refiner.observe_scores(np.array([0.95, 0.96, 0.97, 0.99, 0.99, 0.1], np.float32))
    track = Track(1, np.array([0, 0, 10, 20], np.float32), 0.97, 1)
    for f, score in ((2, 0.98), (3, 0.99), (4, 0.12)):
        track.update(np.array([0, 0, 10, 20], np.float32), score, f, 0.6)
    assert track.scores == pytest.approx([0.97, 0.98, 0.99, 0.12])
    assert refiner._score_rank(track) == pytest.approx(4 / 6)

