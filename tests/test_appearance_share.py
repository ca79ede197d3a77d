"""The inference colour share (``AppearanceParams.hist_share``) and its choice on a validation scene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from association.patches import PatchParams
from association.siamese import (
    AppearanceModel,
    AppearanceParams,
    SiameseNet,
    network_meta,
    save_weights,
)
from mot.config import from_dict
from mot.errors import UserError
from mot.studies.appearance_loso import (
    SCENES,
    SCORED,
    choose_share,
    reweight,
    share_criterion,
    split,
    validation_scene,
)

ROOT = Path(__file__).resolve().parents[1]
PATCH = PatchParams(64, 32)
BOXES = np.array([[10, 10, 30, 60], [50, 20, 30, 70], [90, 5, 25, 80]], np.float32)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (120, 160, 3), dtype=np.uint8)


@pytest.fixture
def coloured(tmp_path):
    """A small LUV model with a colour layer at hist_share 0.5 (random weights)."""
    torch.manual_seed(0)
    net = SiameseNet(3, 16, width=8, hist_stripes=2, hist_share=0.5, patch=(PATCH.height, PATCH.width))
    path = tmp_path / "w.pt"
    save_weights(path, net, network_meta(net, PATCH, None))
    return path


def test_invalid_share_is_a_one_line_user_error(coloured):
    for bad in (1.5, -0.2, 1.0001):
        with pytest.raises(UserError, match="hist_share must be in") as info:
            from_dict(AppearanceParams, {"hist_share": bad}, "appearance")
        assert "\n" not in str(info.value)
        with pytest.raises(UserError, match="hist_share must be in"):
            AppearanceModel(AppearanceParams(weights=str(coloured), hist_share=bad), device="cpu")
    assert from_dict(AppearanceParams, {"hist_share": 0.8}, "appearance").hist_share == 0.8


def test_share_without_a_colour_layer_is_refused(tmp_path):
    net = SiameseNet(3, 16, width=8)
    save_weights(tmp_path / "plain.pt", net, network_meta(net, PATCH, None))
    with pytest.raises(UserError, match="no colour layer"):
        AppearanceModel(AppearanceParams(weights=str(tmp_path / "plain.pt"), hist_share=0.7), device="cpu")


def test_share_changes_the_embedding_as_reweight_says(coloured):
    image = _image()
    base = AppearanceModel(AppearanceParams(weights=str(coloured)), device="cpu")
    same = AppearanceModel(AppearanceParams(weights=str(coloured), hist_share=0.5), device="cpu")
    high = AppearanceModel(AppearanceParams(weights=str(coloured), hist_share=0.8), device="cpu")
    e0, e_same, e8 = base.embed(image, BOXES), same.embed(image, BOXES), high.embed(image, BOXES)
    np.testing.assert_allclose(e_same, e0, atol=1e-6)
    assert np.abs(e8 - e0).max() > 1e-2
    np.testing.assert_allclose(np.linalg.norm(e8, axis=1), 1.0, atol=1e-5)
    hist_dim = base.net.hist.output_dim
    # the colour part carries 0.8 of the squared norm, the CNN part 0.2
    np.testing.assert_allclose((e8[:, :hist_dim] ** 2).sum(1), 0.8, atol=1e-5)
    np.testing.assert_allclose(reweight(e0, hist_dim, 0.5, 0.8), e8, atol=1e-5)
    # the squared distance is s times the colour part's plus (1 - s) times the CNN part's
    d2 = lambda e: ((e[0] - e[1]) ** 2).sum()
    colour, cnn = d2(e0[:, :hist_dim]) / 0.5, d2(e0[:, hist_dim:]) / 0.5
    assert d2(e8) == pytest.approx(0.8 * colour + 0.2 * cnn, rel=1e-4)


@pytest.mark.parametrize("flow", [False, True])
def test_flip_average_embeds_a_patch_and_its_mirror_alike(tmp_path, flow):
    from association.flow import FlowParams

    torch.manual_seed(0)
    net = SiameseNet(5 if flow else 3, 16, width=8, hist_stripes=2, hist_share=0.7, patch=(PATCH.height, PATCH.width))
    save_weights(tmp_path / "w.pt", net, network_meta(net, PATCH, FlowParams() if flow else None))
    x = np.random.default_rng(1).normal(size=(4, net.in_channels, PATCH.height, PATCH.width)).astype(np.float32)
    mirror = x[..., ::-1].copy()
    if flow:
        mirror[:, 3] *= -1                               # the x flow points the other way in the mirror
    plain = AppearanceModel(AppearanceParams(weights=str(tmp_path / "w.pt"), use_flow=None), device="cpu")
    flipped = AppearanceModel(AppearanceParams(weights=str(tmp_path / "w.pt"), use_flow=None, flip_average=True),
                              device="cpu")
    assert np.abs(plain.embed_inputs(x) - plain.embed_inputs(mirror)).max() > 1e-3
    e, e_mirror = flipped.embed_inputs(x), flipped.embed_inputs(mirror)
    np.testing.assert_allclose(e, e_mirror, atol=1e-5)
    hist_dim = plain.net.hist.output_dim
    np.testing.assert_allclose((e[:, :hist_dim] ** 2).sum(1), 0.7, atol=1e-5)     # the share is kept
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # each part is the normalised mean of the two views' parts
    h, c = (t.detach().numpy() for t in plain.net.halves(torch.from_numpy(np.concatenate([x, mirror]))))
    mean = lambda p: (p[:4] + p[4:]) / np.linalg.norm(p[:4] + p[4:], axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(e[:, hist_dim:], mean(c) * 0.3 ** 0.5, atol=1e-5)
    np.testing.assert_allclose(e[:, :hist_dim], mean(h) * 0.7 ** 0.5, atol=1e-5)


def _scores(auc: float, rank1: float) -> dict:
    return {g: {"auc": auc, "rank1": rank1} for g in (1, 10, 30)}


def test_choose_share_maximises_auc_plus_rank1():
    by_share = {0.5: _scores(0.90, 0.70), 0.7: _scores(0.92, 0.71), 0.9: _scores(0.95, 0.60)}
    assert share_criterion(by_share[0.7]) == pytest.approx(1.63)
    assert choose_share(by_share) == 0.7
    by_share[0.9] = _scores(0.96, 0.70)
    assert choose_share(by_share) == 0.9
    assert choose_share({0.6: _scores(0.9, 0.7), 0.8: _scores(0.9, 0.7)}) == 0.6  # ties: the first


def test_the_reported_scene_never_chooses():
    for scene in SCENES:
        val = validation_scene(scene)
        train, val_seqs, test = split(scene)
        assert val != scene
        assert set(SCORED[scene]) <= set(SCENES[scene]) and set(SCORED[val]) <= set(val_seqs)
        assert not set(train) & (set(test) | set(val_seqs))


def test_script_rejects_a_bad_share_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "appearance_loso.py"), "--data", str(tmp_path),
                           "--pretrained", str(tmp_path / "x.pt"), "--models", str(tmp_path / "m"),
                           "--hist-share", "0.7", "1.2", "--out", str(tmp_path / "r.json")],
                          check=False, capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: hist_share must be in [0, 1], got 1.2"
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "m").exists()


def test_loso_chooses_the_share_on_validation_and_reports_it(synthetic_root, tmp_path, monkeypatch):
    """run_loso on two generated sequences (a fold model given, so nothing trains)."""
    from association.backbone import MobileNetV2Features
    from mot.studies import appearance_loso as loso

    scenes = {"A": ["SYN-A"], "TUD-Campus": ["SYN-B"], "PETS09": ["SYN-B"]}
    monkeypatch.setattr(loso, "SCENES", scenes)
    monkeypatch.setattr(loso, "SCORED", scenes)
    torch.manual_seed(0)
    torch.save(MobileNetV2Features(3, 19).state_dict(), tmp_path / "imagenet.pt")
    net = SiameseNet(3, 16, width=8, hist_stripes=2, hist_share=0.5, patch=(PATCH.height, PATCH.width))
    save_weights(tmp_path / "m" / "loso_A.pt", net, network_meta(net, PATCH, None))

    def run(shares):
        return loso.run_loso([str(synthetic_root)], ["A"], tmp_path / "m", str(tmp_path / "imagenet.pt"), None,
                             shipped=False, shares=shares, keep=tmp_path / "emb")

    grid = [0.5, 0.7, 0.9]
    result = run(grid)
    entry = result["scenes"]["A"]
    assert entry["val_scene"] == "TUD-Campus" and entry["test"] == ["SYN-A"]
    by_share = {float(s): v["scores"] for s, v in entry["validation"].items()}
    assert list(by_share) == grid and entry["chosen_share"] == choose_share(by_share)
    assert entry["chosen_share_by_gap"] == {g: choose_share(by_share, (g,)) for g in (1, 10, 30)}
    assert set(result["pooled"]) == {"recipe, s chosen on validation", "recipe, s as trained",
                                     "recipe, s per gap chosen on validation", "LUV colour histogram",
                                     "ImageNet MobileNetV2 (raw)"}
    assert (tmp_path / "emb" / "A_SYN-A.npz").is_file() and (tmp_path / "emb" / "A-val_SYN-B.npz").is_file()
    # the same choice again from the saved embeddings, without a network
    again = loso.choose_saved(tmp_path / "emb", "A", net.hist.output_dim, 0.5, grid)
    assert again["chosen_share"] == entry["chosen_share"]
    assert again["chosen_share_by_gap"] == entry["chosen_share_by_gap"]
    assert again["scores"]["one share"] == entry["scores"][f"recipe, s={entry['chosen_share']:g} (chosen on TUD-Campus)"]
    sweep = loso.share_sweep(tmp_path / "emb", "A", net.hist.output_dim, 0.5, [0.5, 1.0])
    assert sweep["s=0.5"] == entry["scores"]["recipe, s=0.5 (as trained)"]
    for g in (1, 10):
        for key in ("auc", "auc_hard", "rank1"):
            assert sweep["s=1"][g][key] == pytest.approx(sweep["colour part alone"][g][key], abs=1e-3)
    # only the trained share on offer: the chosen row is the as-trained row
    same = run([0.5])["pooled"]
    assert same["recipe, s chosen on validation"] == same["recipe, s as trained"]


def test_choose_share_leaves_out_gaps_without_pairs():
    nan = float("nan")
    by_share = {0.5: {1: {"auc": 0.9, "rank1": 0.8}, 10: {"auc": nan, "rank1": nan}},
                0.9: {1: {"auc": 0.95, "rank1": 0.8}, 10: {"auc": nan, "rank1": nan}}}
    assert choose_share(by_share, (1, 10)) == 0.9
    assert choose_share(by_share, (10,)) == 0.5


def _saved_scene(folder, name, colour_noise, cnn_noise, seed, baseline_noise=None):
    """A scene of 6 people over 40 frames whose colour and CNN parts are as informative as told
    (and, with ``baseline_noise``, the two baselines' embeddings, each that noisy)."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(np.arange(1, 41), 6)
    ids = np.tile(np.arange(6), 40)
    tlwh = np.column_stack([ids * 50.0, np.zeros_like(frames, float), np.full(len(ids), 20.0),
                            np.full(len(ids), 60.0)]).astype(np.float32)
    parts = []
    for dim, noise in ((32, colour_noise), (8, cnn_noise)):
        e = rng.standard_normal((6, dim))[ids] + noise * rng.standard_normal((len(ids), dim))
        parts.append(np.sqrt(0.5) * e / np.linalg.norm(e, axis=1, keepdims=True))
    baselines = {}
    for key in ("hist", "imagenet") if baseline_noise is not None else ():
        e = np.random.default_rng(99).standard_normal((6, 16))[ids]
        e = e + baseline_noise * np.random.default_rng(100).standard_normal(e.shape)
        baselines[f"emb_{key}"] = (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)
    np.savez(folder / f"{name}_{name}.npz", frames=frames, ids=ids, tlwh=tlwh,
             emb_recipe=np.hstack(parts).astype(np.float32), **baselines)


def test_choose_on_other_folds_never_uses_the_reported_scene(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"], "B": ["B"], "C": ["C"]})
    _saved_scene(tmp_path, "A", colour_noise=0.3, cnn_noise=3.0, seed=1)   # colour tells people apart
    _saved_scene(tmp_path, "B", colour_noise=3.0, cnn_noise=0.3, seed=2)   # the CNN does
    _saved_scene(tmp_path, "C", colour_noise=3.0, cnn_noise=0.3, seed=3)
    shares = [0.1, 0.5, 0.9]
    out = loso.choose_on_other_folds(tmp_path, ["A", "B", "C"], 32, 0.5, shares, gaps=(1, 10))
    # A's share comes from B and C (where the CNN is better): low, though A itself wants a high one
    sweep_a = loso.share_sweep(tmp_path, "A", 32, 0.5, shares, gaps=(1, 10), baselines=())
    assert loso.choose_share({s: sweep_a[f"s={s:g}"] for s in shares}, (1, 10)) == 0.9
    assert out["A"]["chosen_share"] == 0.1
    assert out["A"]["scores"]["one share"] == sweep_a["s=0.1"]
    for g in (1, 10):
        assert out["A"]["scores"]["a share per gap"][g] == sweep_a[f"s={out['A']['chosen_share_by_gap'][g]:g}"][g]


def test_share_study_errors_are_one_line(tmp_path):
    from mot.studies.appearance_loso import share_study

    for args, match in ((([0.5, 1.2], "sweep"), "shares must be in"), (([0.5], "nonsense"), "unknown study"),
                        (([0.5], "sweep"), "no saved embeddings")):
        with pytest.raises(UserError, match=match) as info:
            share_study(tmp_path, ["KITTI-17"], *args)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="at least two scenes"):
        share_study(tmp_path, ["KITTI-17"], [0.5], "other-folds")
    with pytest.raises(UserError, match="trained share"):
        share_study(tmp_path, ["KITTI-17"], [0.5], "sweep", trained_share=1.0)


def test_choose_recipe_on_other_folds_never_uses_the_reported_scene(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"], "B": ["B"], "C": ["C"]})
    good, bad = dict(colour_noise=0.3, cnn_noise=0.3), dict(colour_noise=3.0, cnn_noise=3.0)
    for recipe, quality in (("r1", {"A": good, "B": bad, "C": bad}), ("r2", {"A": bad, "B": good, "C": good})):
        (tmp_path / recipe).mkdir()
        for seed, scene in enumerate("ABC"):
            _saved_scene(tmp_path / recipe, scene, seed=seed, **quality[scene])
    folders = {"r1": tmp_path / "r1", "r2": tmp_path / "r2"}
    out = loso.recipe_study(folders, ["A", "B", "C"])
    a = out["A"]["scores"]
    assert out["A"]["chosen_recipe"] == "r2"                    # chosen on B and C, where r2 is better
    assert loso.share_criterion(a["r1"]) > loso.share_criterion(a["r2"])   # though A itself favours r1
    assert a["chosen on the other folds"] == a["r2"]
    assert set(out["pooled"]) >= {"r1", "r2", "chosen on the other folds"}
    with pytest.raises(UserError, match="at least two scenes and two recipes"):
        loso.recipe_study({"r1": tmp_path / "r1"}, ["A", "B"])
    with pytest.raises(UserError, match="no folder"):
        loso.recipe_study({"r1": tmp_path / "r1", "r3": tmp_path / "r3"}, ["A", "B"])


def test_rank1_query_by_query_and_the_paired_test():
    from mot.studies.appearance import mcnemar_p, paired_rank1, rank1, rank1_hits

    # two frames of three people; in frame 2 person 1 looks like person 2 to embedding a only
    frames = np.array([1, 1, 1, 2, 2, 2])
    ids = np.array([0, 1, 2, 0, 1, 2])
    good = np.eye(3, dtype=np.float32)[ids]
    bad = good.copy()
    bad[4] = [0, 0.6, 0.8]
    rows, hits = rank1_hits(frames, ids, bad, gap=1)
    assert rows.tolist() == [3, 4, 5] and hits.tolist() == [True, False, True]
    assert rank1(frames, ids, bad, 1) == (2, 3)
    boxes = {"frames": frames, "ids": ids}
    assert paired_rank1(boxes, good, bad, 1) == (1, 0)
    assert paired_rank1(boxes, bad, good, 1) == (0, 1)
    assert paired_rank1(boxes, good, good, 1) == (0, 0)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(8, 9) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar_p(3, 12) == pytest.approx(mcnemar_p(12, 3)) and mcnemar_p(3, 12) < 0.05


def test_seed_study_scores_every_seed_their_mean_and_the_paired_rank1(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso
    from mot.studies.appearance import paired_rank1

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"], "B": ["B"]})
    for label, noise in (("s0", 0.3), ("s1", 3.0)):
        (tmp_path / label).mkdir()
        for seed, scene in enumerate("AB"):
            _saved_scene(tmp_path / label, scene, noise, noise, seed=seed, baseline_noise=1.0)
    folders = {"s0": tmp_path / "s0", "s1": tmp_path / "s1"}
    out = loso.seed_study(folders, ["A", "B"], gaps=(1, 10))
    a = out["A"]
    assert list(a["scores"]) == ["s0", "s1", "mean of seeds", "LUV colour histogram", "ImageNet MobileNetV2 (raw)"]
    for g in (1, 10):
        for m in ("auc", "auc_hard", "rank1"):
            assert a["scores"]["mean of seeds"][g][m] == pytest.approx(
                (a["scores"]["s0"][g][m] + a["scores"]["s1"][g][m]) / 2)
    # the clean seed beats the baselines in every cell, the noisy one in fewer
    assert a["wins"]["s0"] == 6 and a["wins"]["s1"] < 6
    with np.load(tmp_path / "s1" / "A_A.npz") as z:
        boxes = {"frames": z["frames"], "ids": z["ids"]}
        direct = paired_rank1(boxes, z["emb_recipe"], z["emb_hist"], 1)
    c = a["paired"]["s1"]["hist"][1]
    assert (c["seed_only"], c["baseline_only"]) == direct and 0 <= c["p"] <= 1
    # pooled: the two scenes' query counts added
    pooled = out["pooled"]["paired"]["s1"]["hist"][1]
    b = out["B"]["paired"]["s1"]["hist"][1]
    assert pooled["seed_only"] == c["seed_only"] + b["seed_only"]
    assert "cells won of 6" in loso.seed_study_text(out, gaps=(1, 10))


def test_seed_study_refuses_what_it_cannot_compare(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"]})
    for label, seed in (("s0", 0), ("s1", 1)):
        (tmp_path / label).mkdir()
        _saved_scene(tmp_path / label, "A", 0.3, 0.3, seed=seed, baseline_noise=1.0)
    with pytest.raises(UserError, match="at least two"):
        loso.seed_study({"s0": tmp_path / "s0"}, ["A"])
    with pytest.raises(UserError, match="no folder"):
        loso.seed_study({"s0": tmp_path / "s0", "s2": tmp_path / "s2"}, ["A"])
    with np.load(tmp_path / "s1" / "A_A.npz") as z:   # another benchmark: the boxes differ
        saved = dict(z)
    saved["ids"] = saved["ids"][::-1].copy()
    np.savez(tmp_path / "s1" / "A_A.npz", **saved)
    with pytest.raises(UserError, match="other boxes") as info:
        loso.seed_study({"s0": tmp_path / "s0", "s1": tmp_path / "s1"}, ["A"])
    assert "\n" not in str(info.value)


def test_seed_script_gives_a_one_line_error_and_writes_nothing(tmp_path):
    (tmp_path / "s0").mkdir()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "appearance_share_sweep.py"),
                           "--seeds", f"0={tmp_path / 's0'}", f"1={tmp_path / 's1'}", "--out", str(tmp_path / "r.json")],
                          check=False, capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --seeds 1: no folder {tmp_path / 's1'}"
    assert not (tmp_path / "r.json").exists()


def _gt_with_visibility(root, name, hidden_ids):
    """root/name/gt/gt.txt for _saved_scene's boxes (6 people, 40 frames): ``hidden_ids`` 20% visible."""
    (root / name / "gt").mkdir(parents=True)
    rows = [f"{f},{i},{i * 50},0,20,60,1,1,{0.2 if i in hidden_ids else 0.9}" for f in range(1, 41) for i in range(6)]
    (root / name / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")


def test_reid_target_scores_the_visible_boxes_of_each_footage(tmp_path, monkeypatch):
    from mot.studies import reid_target as rt
    from mot.studies.appearance import score

    monkeypatch.setattr(rt, "SCORED", {"A": ["A"], "B": ["B"]})
    monkeypatch.setattr(rt, "FOOTAGE", {
        "all": {"scenes": ("A",), "min_visibility": 0.0, "reference": {"re-id CNN (issue)": (99.0, 90.0, 80.0)}},
        "visible": {"scenes": ("B",), "min_visibility": 0.5, "reference": {"re-id CNN (issue)": (99.0, 90.0, 80.0)}}})
    monkeypatch.setattr(rt, "GAPS", (1, 10))
    data = tmp_path / "data"
    _gt_with_visibility(data, "A", hidden_ids=())
    _gt_with_visibility(data, "B", hidden_ids=(0, 1))
    for label, noise in (("s0", 0.5), ("s1", 2.0)):
        (tmp_path / label).mkdir()
        for seed, scene in enumerate("AB"):
            _saved_scene(tmp_path / label, scene, noise, noise, seed=seed, baseline_noise=1.0)
    out = rt.reid_target_study({"s0": tmp_path / "s0", "s1": tmp_path / "s1"}, [data])
    assert out["all"]["kept"] == 1.0 and out["visible"]["kept"] == pytest.approx(4 / 6)
    auc = out["visible"]["auc"]
    assert list(auc) == ["s0", "s1", "mean of seeds", "LUV colour histogram", "ImageNet MobileNetV2 (raw)",
                         "re-id CNN (issue)"]
    assert auc["mean of seeds"] == pytest.approx([(a + b) / 2 for a, b in zip(auc["s0"], auc["s1"])])
    assert out["visible"]["gap_to_reid"] == pytest.approx([m - r for m, r in zip(auc["mean of seeds"], (99.0, 90.0))])
    with np.load(tmp_path / "s1" / "B_B.npz") as z:       # the histogram on the visible people only
        keep = z["ids"] >= 2
        direct = score({k: z[k][keep] for k in ("frames", "ids", "tlwh")}, {"h": z["emb_hist"][keep]}, (1, 10))
    assert auc["LUV colour histogram"] == pytest.approx([100 * direct["h"][g]["auc"] for g in (1, 10)])
    assert "mean of seeds minus the issue's re-id CNN" in rt.reid_target_text(out)


def test_reid_target_errors_are_one_line(tmp_path, monkeypatch):
    from mot.studies import reid_target as rt

    monkeypatch.setattr(rt, "SCORED", {"A": ["A"]})
    monkeypatch.setattr(rt, "FOOTAGE", {"all": {"scenes": ("A",), "min_visibility": 0.5, "reference": {
        "re-id CNN (issue)": (1.0, 1.0, 1.0)}}})
    (tmp_path / "s0").mkdir()
    _saved_scene(tmp_path / "s0", "A", 0.5, 0.5, seed=0, baseline_noise=1.0)
    (tmp_path / "data" / "A" / "gt").mkdir(parents=True)
    (tmp_path / "data" / "A" / "gt" / "gt.txt").write_text("1,0,0,0,20,60,1,1,0.9\n")   # one box of 240
    (tmp_path / "empty").mkdir()
    for folders, match in (({"s0": tmp_path / "s1"}, "no folder"), ({"s0": tmp_path / "s0"}, "no box of identity"),
                           ({"s0": tmp_path / "empty"}, "no saved embeddings")):
        with pytest.raises(UserError, match=match) as info:
            rt.reid_target_study(folders, [tmp_path / "data"])
        assert "\n" not in str(info.value)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "appearance_reid_target.py"), "--data",
                           str(tmp_path / "data"), "--seeds", f"0={tmp_path / 'nowhere'}", "--out", str(tmp_path / "r.json")],
                          check=False, capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: --seeds 0: no folder {tmp_path / 'nowhere'}"
    assert not (tmp_path / "r.json").exists()


def test_overlapped_flags_boxes_that_overlap_another_of_their_frame():
    from mot.studies.appearance_loso import overlapped

    frames = np.array([1, 1, 1, 2, 2])
    tlwh = np.array([[0, 0, 10, 20], [1, 0, 10, 20], [50, 0, 10, 20],    # frame 1: the first two overlap
                     [0, 0, 10, 20], [30, 0, 10, 20]], np.float32)         # frame 2: boxes at the same places as
    assert overlapped(frames, tlwh).tolist() == [True, True, False, False, False]   # frame 1's, apart
    assert not overlapped(frames, tlwh, iou=0.9).any()          # IoU 9/11 = 0.82


def _crowded_scene(folder, name, seed, colour_noise=0.5, cnn_noise=0.5):
    """A saved scene in which people 0 and 1 stand on top of each other (crowded) and 2-5 apart."""
    _saved_scene(folder, name, colour_noise=colour_noise, cnn_noise=cnn_noise, seed=seed, baseline_noise=0.8)
    path = folder / f"{name}_{name}.npz"
    z = dict(np.load(path))
    z["tlwh"][z["ids"] == 1, 0] = z["tlwh"][z["ids"] == 0, 0] + 2.0
    np.savez(path, **z)


def test_crowd_scorer_at_the_trained_share_scores_as_the_embeddings_do(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso
    from mot.studies.appearance import score

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"]})
    _crowded_scene(tmp_path, "A", seed=1)
    (boxes, emb), = loso._load_saved(tmp_path, "A", ["A"])
    scorer = loso.CrowdShareScorer(boxes, emb["recipe"], 32, 0.5, (1, 10))
    assert scorer.crowd.sum() == 80                       # people 0 and 1 in all 40 frames
    plain = score(boxes, {"m": emb["recipe"]}, (1, 10))["m"]
    got = loso.score_pairs(boxes, scorer, (1, 10), max_neg=1 << 62)
    for g in (1, 10):
        for k in ("auc", "auc_hard", "rank1", "pos", "queries"):
            assert got[g][k] == pytest.approx(plain[g][k], abs=1e-6)
    # another share moves crowded pairs exactly as reweight would, and leaves the others alone
    scorer.share = 0.9
    a, b = np.array([0, 0, 2]), np.array([7, 8, 9])       # frame 1 -> 2: (0, 1) crowded, (0, 2), (2, 3) not
    at_09 = reweight(emb["recipe"], 32, 0.5, 0.9)
    assert scorer(a, b)[0] == pytest.approx(-np.linalg.norm(at_09[0] - at_09[7]), abs=1e-5)
    assert scorer(a, b)[1] == pytest.approx(-np.linalg.norm(at_09[0] - at_09[8]), abs=1e-5)
    assert scorer(a, b)[2] == pytest.approx(-np.linalg.norm(emb["recipe"][2] - emb["recipe"][9]), abs=1e-5)
    with pytest.raises(ValueError, match="not one of the given gaps"):
        scorer(np.array([0]), np.array([6 * 5]))          # frame 1 -> 6: five frames apart


def test_crowd_share_study_chooses_on_the_other_folds(tmp_path, monkeypatch):
    from mot.studies import appearance_loso as loso

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"], "B": ["B"], "C": ["C"]})
    _crowded_scene(tmp_path, "A", seed=1, colour_noise=0.3, cnn_noise=3.0)   # colour tells people apart
    _crowded_scene(tmp_path, "B", seed=2, colour_noise=3.0, cnn_noise=0.3)   # the CNN does
    _crowded_scene(tmp_path, "C", seed=3, colour_noise=3.0, cnn_noise=0.3)
    shares = [0.1, 0.5, 0.9]
    out = loso.crowd_share_study(tmp_path, ["A", "B", "C"], shares, hist_dim=32, gaps=(1, 10))

    def best_share(scenes, g):
        best = None
        for s in shares:
            rows = []
            for o in scenes:
                (boxes, emb), = loso._load_saved(tmp_path, o, [o])
                scorer = loso.CrowdShareScorer(boxes, emb["recipe"], 32, 0.5, (1, 10))
                scorer.share = s
                rows.append({"m": loso.score_pairs(boxes, scorer, (g,), max_neg=1 << 62)})
            value = loso.share_criterion(loso.pooled(rows)["m"], (g,))
            if best is None or value > best[1] + 1e-12:
                best = (s, value)
        return best[0]

    for scene in "ABC":
        for g in (1, 10):     # the share reported for a scene is the best on the other two, pooled
            assert out[scene]["chosen_share_by_gap"][g] == best_share([s for s in "ABC" if s != scene], g)
        assert set(out[scene]["wins"]) == {"crowd share (other folds)", "trained share"}
        assert out[scene]["crowded"] == pytest.approx(80 / 240)
    assert "pooled" in out and "cells won of 6" in loso.crowd_share_text(out)
    # the table to ship with a model trained on every scene: chosen on all of them
    assert out["pooled"]["all_scenes_share_by_gap"] == {g: best_share("ABC", g) for g in (1, 10)}
    with pytest.raises(UserError, match="does not split") as info:     # the colour part is 32 of 40 numbers
        loso.crowd_share_study(tmp_path, ["A", "B", "C"], shares, hist_dim=40, gaps=(1, 10))
    assert "\n" not in str(info.value)


def test_crowd_share_errors_are_one_line(tmp_path):
    from mot.studies.appearance_loso import crowd_share_study

    for args, match in (((["KITTI-17"], [0.5]), "at least two scenes"),
                        ((["KITTI-17", "TUD-Campus"], [0.5, 1.5]), "shares must be in"),
                        ((["KITTI-17", "TUD-Campus"], [0.5], 2048, 0.5, 1.5), "crowd-iou must be in"),
                        ((["KITTI-17", "TUD-Campus"], [0.5]), "no saved embeddings")):
        with pytest.raises(UserError, match=match) as info:
            crowd_share_study(tmp_path, *args)
        assert "\n" not in str(info.value)


def test_saved_embeddings_keep_the_share_by_gap_and_the_seed_study_compares_by_it(tmp_path, monkeypatch):
    """Embeddings saved from weights with a foreground share keep its table (``saved_view``), and the
    seed study scores each seed as the tracker compares it at each gap: at one frame (share 0) the
    noisy map-weighted colours do not count, so the seed scores what the plain colours score."""
    from association.by_gap import GapTable, SharesByGap
    from mot.studies import appearance_loso as loso
    from mot.studies.appearance import score

    monkeypatch.setattr(loso, "SCORED", {"A": ["A"]})
    rng = np.random.default_rng(5)
    frames, ids = np.repeat(np.arange(1, 31), 5), np.tile(np.arange(5), 30)
    boxes = {"frames": frames, "ids": ids, "tlwh": np.column_stack(
        [ids * 40.0, np.zeros(len(ids)), np.full(len(ids), 20.0), np.full(len(ids), 60.0)]).astype(np.float32)}
    k = 16
    plain = rng.standard_normal((5, k))[ids] + 0.4 * rng.standard_normal((len(ids), k))   # tells people apart
    weighted, cnn = rng.standard_normal((len(ids), k)), rng.standard_normal((len(ids), 8))  # noise
    unit = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (plain, weighted, cnn)]
    emb = np.hstack([np.sqrt(0.25) * unit[0], np.sqrt(0.25) * unit[1], np.sqrt(0.5) * unit[2]]).astype(np.float32)
    base = {"hist": unit[0].astype(np.float32), "imagenet": unit[2].astype(np.float32)}
    fg = SharesByGap(k, None, GapTable.from_table({1: 0.0, 2: 0.5}, 0.5, "foreground_share"), weighted=True)
    for label, table in (("with", fg), ("without", None)):
        loso._save_embeddings(tmp_path / label, "A", ["A"], [(boxes, {"recipe": emb, **base})], table)
    view = loso.saved_view(tmp_path / "with", "A", ["A"])
    assert loso.saved_view(tmp_path / "without", "A", ["A"]) is None
    np.testing.assert_array_equal(view(emb, 1), fg.at_gap(emb, 1))
    out = loso.seed_study({"with": tmp_path / "with", "without": tmp_path / "without"}, ["A"], gaps=(1, 10))
    s = out["A"]["scores"]
    assert s["with"][1] == score(boxes, {"m": fg.at_gap(emb, 1)}, (1,))["m"][1]
    assert s["without"][1] == score(boxes, {"m": emb}, (1,))["m"][1]
    assert s["with"][1]["auc"] > s["without"][1]["auc"] + 0.02
    assert s["with"][10] == s["without"][10]                 # share 0.5 from two frames: the trained mix
