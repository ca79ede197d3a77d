"""Training the Siamese network on generated sequences: data, augmentation, a tiny run that learns."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from association.flow import FlowParams
from association.patches import PatchParams
from association.siamese import AppearanceModel, AppearanceParams, SiameseNet, batch_contrastive_loss, load_weights
from mot.training.siamese_data import CropSet, PKSampler, load_reid_crops, load_sequence_crops, make_inputs
from mot.training.siamese import TrainParams, batch_loss, train
from mot.errors import UserError

SMALL = PatchParams(64, 32)


@pytest.fixture(scope="module")
def crops(synthetic_root, tmp_path_factory) -> CropSet:
    return load_sequence_crops(synthetic_root / "SYN-A", 0, SMALL, FlowParams(), tmp_path_factory.mktemp("cache"))


def test_sequence_crops_are_cached_with_flow(crops, synthetic_root, tmp_path):
    assert crops.bgr.shape[1:] == (80, 40, 3) and crops.flow.shape[1:] == (2, 40, 20)
    assert len(crops) == len(crops.ids) == len(crops.frames) == len(crops.tlwh) > 50
    assert not crops.flow[crops.frames == 1].any()      # first frame: no flow
    assert np.abs(crops.flow[crops.frames > 1]).max() > 0  # the figures walk
    again = load_sequence_crops(synthetic_root / "SYN-A", 0, SMALL, FlowParams(), tmp_path)
    np.testing.assert_array_equal(again.ids, crops.ids)
    cached = load_sequence_crops(synthetic_root / "SYN-A", 0, SMALL, FlowParams(), tmp_path)
    np.testing.assert_array_equal(cached.tlwh, crops.tlwh)   # the boxes come with a cached read too


def test_pk_batches_hold_p_identities_of_k(crops):
    sampler = PKSampler([crops], p=3, k=4, max_gap=10, seed=0)
    _, rows = sampler.batch()
    ids = crops.ids[rows]
    assert len(rows) == 12 and len(np.unique(ids)) == 3
    assert all((ids == i).sum() == 4 for i in np.unique(ids))


def test_near_gap_puts_a_short_gap_positive_in_every_identity(crops):
    """near_gap 1: each identity's first two crops are at most one frame apart; the other crops still
    span the window (without it, gaps of at most one frame are rare)."""
    gaps, wide = [], []
    sampler = PKSampler([crops], p=3, k=4, max_gap=10, seed=0, near_gap=1)
    for _ in range(20):
        _, rows = sampler.batch()
        ids, frames = crops.ids[rows].reshape(3, 4), crops.frames[rows].reshape(3, 4)
        assert (ids == ids[:, :1]).all()                   # still P identities of K crops
        gaps += list(np.abs(frames[:, 0] - frames[:, 1]))
        wide += list(frames.max(1) - frames.min(1))
    assert max(gaps) <= 1 and max(wide) > 1
    plain = PKSampler([crops], p=3, k=4, max_gap=10, seed=0)
    plain_gaps = [abs(int(f[0]) - int(f[1])) for _ in range(20)
                  for f in crops.frames[plain.batch()[1]].reshape(3, 4)]
    assert max(plain_gaps) > 1


def test_neighbours_batches_take_the_people_nearest_one_person():
    """With neighbours, a batch of P = 2 people holds one person and the one nearest them in the frame."""
    x = np.array([0.0, 10.0, 30.0, 100.0, 300.0])             # five people in a row, 50 px tall
    frames = np.repeat([1, 2, 3], 5)
    tlwh = np.stack([np.tile(x, 3), np.zeros(15), np.full(15, 20.0), np.full(15, 50.0)], 1).astype(np.float32)
    crops = CropSet("row", np.zeros((15, 8, 4, 3), np.uint8), np.zeros((15, 2, 4, 2), np.float16),
                    np.tile(np.arange(5), 3), frames, tlwh)
    nearest = {0: 1, 1: 0, 2: 1, 3: 2, 4: 3}
    sampler = PKSampler([crops], p=2, k=2, max_gap=0, seed=0, neighbours=True)
    pairs = [tuple(crops.ids[sampler.batch()[1]][::2]) for _ in range(40)]
    assert all(nearest[a] == b for a, b in pairs) and len({a for a, _ in pairs}) == 5
    plain = PKSampler([crops], p=2, k=2, max_gap=0, seed=0)
    assert any(nearest[a] != b for a, b in (tuple(crops.ids[plain.batch()[1]][::2]) for _ in range(40)))


def test_half_weight_adds_the_loss_of_each_half(crops):
    """The loss with half_weight w is the joined loss plus w times the loss of each unit-norm half."""
    torch.manual_seed(0)
    _, rows = PKSampler([crops], p=4, k=4, max_gap=10, seed=1).batch()
    x, labels = make_inputs(crops, rows, SMALL, False, None), torch.from_numpy(crops.ids[rows])
    net = SiameseNet(3, 16, width=8, hist_stripes=2, patch=(64, 32))
    rng = np.random.default_rng(0)
    with torch.no_grad():
        joined = batch_loss(net, x, labels, TrainParams(), rng)
        with_halves = batch_loss(net, x, labels, TrainParams(half_weight=0.5), rng)
        hist, cnn = net.halves(x)
        expected = joined + 0.5 * (batch_contrastive_loss(hist, labels) + batch_contrastive_loss(cnn, labels))
        assert float(with_halves) == pytest.approx(float(expected), rel=1e-5)
        assert float(with_halves) > float(joined)
        torch.testing.assert_close(net.weigh(hist, cnn), net(x))


def test_augmentation_flips_patch_and_flow_together(crops):
    fake = CropSet("x", crops.bgr[:64], np.ones_like(crops.flow[:64]), crops.ids[:64], crops.frames[:64])
    x = make_inputs(fake, np.arange(64), SMALL, True, np.random.default_rng(0))
    assert x.shape == (64, 5, 64, 32)
    flow_x = x[:, 3, 16:48, 8:24].mean((1, 2))
    assert set(np.round(flow_x.numpy(), 3)) == {1.0, -1.0}   # flipped samples read -1
    np.testing.assert_allclose(x[:, 4].numpy(), 1.0, atol=1e-5)  # y flow is unchanged by a flip
    plain = make_inputs(fake, np.arange(2), SMALL, False, None)
    assert plain.shape == (2, 3, 64, 32)


def test_occlusion_puts_another_person_in_front():
    """occlude: a side of the chosen patches becomes the middle of another identity's patch."""
    from mot.training.siamese_data import occlude

    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).repeat(1, 3, 8, 10)   # patch i is all i
    ids = np.array([0, 0, 1, 2])
    out = occlude(x.clone(), ids, np.random.default_rng(0), prob=1.0)
    for i in range(4):
        changed = (out[i] != i).any(dim=(0, 1))               # columns that changed
        cols = np.flatnonzero(changed.numpy())
        assert 3 <= len(cols) <= 7 and (cols[0] == 0 or cols[-1] == 9)   # one side, 30-70% of the width
        assert set(out[i, :, :, cols].unique().tolist()) <= set(np.flatnonzero(ids != ids[i]).tolist())
    assert torch.equal(occlude(x.clone(), ids, np.random.default_rng(0), prob=0.0), x)


def test_zoomed_occluder_is_a_magnified_window_of_another_person():
    """occlude with zoom > 1: the covered side holds a part of another identity's patch, magnified
    (it spans fewer of that patch's rows than the whole height)."""
    from mot.training.siamese_data import occlude

    h, w = 64, 32
    rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(4, 3, h, w)
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1) * 1000 + rows   # patch i: 1000 i + row
    ids = np.array([0, 0, 1, 2])
    out = occlude(x.clone(), ids, np.random.default_rng(1), prob=1.0, zoom=4.0)
    spans = []
    for i in range(4):
        cols = np.flatnonzero((out[i] != x[i]).any(dim=(0, 1)).numpy())
        assert w * 0.3 - 1 <= len(cols) <= w * 0.7 + 1 and (cols[0] == 0 or cols[-1] == w - 1)
        region = out[i, :, :, cols]
        owner = torch.div(region, 1000, rounding_mode="floor")
        assert owner.unique().numel() == 1 and ids[int(owner.flatten()[0])] != ids[i]
        row = region - owner * 1000
        spans.append(float(row.max() - row.min()))
    assert max(spans) <= h - 1 and min(spans) < 0.9 * (h - 1)


def test_reid_crops_have_zero_flow(tmp_path):
    for cam in ("cam_a", "cam_b"):
        (tmp_path / cam).mkdir()
        for ident in range(3):
            cv2.imwrite(str(tmp_path / cam / f"{ident:03d}_0.jpg"), np.full((128, 48, 3), 40 * ident, np.uint8))
    reid = load_reid_crops(tmp_path, 9, SMALL)
    assert reid.bgr.shape == (6, 80, 40, 3) and not reid.flow.any()
    assert sorted(set(reid.ids.tolist())) == [900_000, 900_001, 900_002]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError):
        load_reid_crops(tmp_path / "empty", 0, SMALL)


def test_a_few_steps_lower_the_loss(crops):
    torch.manual_seed(0)
    _, rows = PKSampler([crops], p=4, k=4, max_gap=10, seed=1).batch()
    x, labels = make_inputs(crops, rows, SMALL, True, None), torch.from_numpy(crops.ids[rows])
    net = SiameseNet(5, 16, width=8)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = batch_contrastive_loss(net(x), labels, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_train_writes_loadable_weights(synthetic_root, tmp_path):
    params = TrainParams(train=["SYN-A"], val=["SYN-B"], max_iters=6, eval_every=3, p=4, k=2, width=8,
                         embedding_dim=16, val_batches=2, threads=1)
    summary = train(synthetic_root, tmp_path / "w.pt", params, cache=tmp_path / "cache", patch=SMALL,
                    progress=False)
    assert summary["iterations"] == 6 and len(summary["history"]) == 2
    _, meta = load_weights(tmp_path / "w.pt")
    assert meta["train_sequences"] == "SYN-A" and meta["val_sequences"] == "SYN-B"
    assert meta["near_gap"] == -1 and meta["half_weight"] == 0.0 and meta["occlude_prob"] == 0.0
    assert meta["occlude_zoom"] == 1.0
    model = AppearanceModel(AppearanceParams(weights=str(tmp_path / "w.pt")), device="cpu")
    image = cv2.imread(str(synthetic_root / "SYN-A" / "img1" / "000002.jpg"))
    # the recipe's default: a 4-stripe 8x8x8 colour-histogram branch beside the 16-d CNN embedding
    assert meta["hist_stripes"] == 4 and model.embedding_dim == 16 + 4 * 512
    emb = model.embed(image, np.array([[10, 10, 30, 80]], np.float32), image)
    assert emb.shape == (1, 16 + 4 * 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_validation_must_be_held_out(synthetic_root, tmp_path):
    with pytest.raises(UserError, match="both in train and val"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-A"]))


def test_stop_after_reproduces_a_cut_run(synthetic_root, tmp_path):
    """A run cut at iteration 4 of a 6-iteration schedule equals the first 4 iterations of the full
    one (same schedule, same batches), so a wall-clock cut can be reproduced exactly."""
    common = dict(train=["SYN-A"], val=["SYN-B"], max_iters=6, eval_every=2, p=4, k=2, width=8, embedding_dim=16,
                  val_batches=2, threads=1, patience=99)
    runs = {}
    for name, extra in (("cut", {"stop_after": 4}), ("again", {"stop_after": 4}), ("full", {})):
        runs[name] = train(synthetic_root, tmp_path / f"{name}.pt", TrainParams(**common, **extra),
                           cache=tmp_path / "cache", patch=SMALL, progress=False)
    assert runs["cut"]["iterations"] == 4 and runs["cut"]["stop"] == "stop_after"
    assert runs["full"]["iterations"] == 6
    assert [h["val_loss"] for h in runs["cut"]["history"]] == [h["val_loss"] for h in runs["full"]["history"][:2]]
    a = torch.load(tmp_path / "cut.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "again.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_colour_branch_settings_are_refused(synthetic_root, tmp_path):
    with pytest.raises(UserError, match="hist_share must be in"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], hist_share=1.0))
    with pytest.raises(UserError, match="hist_stripes must be >= 0"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], hist_stripes=-1))
    with pytest.raises(UserError, match="hist_stripes must halve that many times"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], hist_stripes=6,
                                                            hist_levels=3))
    with pytest.raises(UserError, match="half_weight needs"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], hist_stripes=0,
                                                            half_weight=0.5))
    with pytest.raises(UserError, match="near_gap must be"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], near_gap=31))
    with pytest.raises(UserError, match="occlude_zoom must be >= 1"):
        train(synthetic_root, tmp_path / "w.pt", TrainParams(train=["SYN-A"], val=["SYN-B"], occlude_zoom=0.5))
    assert not (tmp_path / "w.pt").exists()
