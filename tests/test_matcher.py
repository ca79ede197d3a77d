"""The XGBoost matcher and the learned association built on it."""

import json
from pathlib import Path

import numpy as np
import pytest

from association.matcher import Matcher
from mot.training.matcher import TrainSettings, train_matcher
from mot.config import load_config
from mot.errors import UserError
from mot.pipeline import run

FEATURES = ["iou", "centre_distance"]


@pytest.fixture(scope="module")
def toy_matcher():
    rng = np.random.default_rng(0)
    iou = rng.uniform(0, 1, 2000).astype(np.float32)
    dist = rng.uniform(0, 3, 2000).astype(np.float32)
    y = (iou > 0.5) & (dist < 1.5)
    matcher, facts = train_matcher(FEATURES, np.stack([iou, dist], 1), y, settings=TrainSettings(rounds=30))
    return matcher


def test_predicts_all_pairs_in_one_call(toy_matcher):
    feats = np.array([[[0.9, 0.2], [0.1, 2.5]], [[0.2, 0.1], [0.8, 0.5]]], np.float32)
    p = toy_matcher.predict(feats)
    assert p.shape == (2, 2) and p.dtype == np.float32
    assert p[0, 0] > 0.5 > p[0, 1] and p[1, 1] > 0.5 > p[1, 0]
    assert toy_matcher.predict(np.zeros((0, 3, 2), np.float32)).shape == (0, 3)


def test_save_load_round_trip_and_metadata_checks(toy_matcher, tmp_path):
    path = tmp_path / "m.json"
    toy_matcher.save(path)
    back = Matcher.load(path, FEATURES)
    x = np.random.default_rng(1).uniform(0, 1, (3, 4, 2)).astype(np.float32)
    assert np.allclose(back.predict(x), toy_matcher.predict(x))
    with pytest.raises(UserError, match=r"trained on features \['iou', 'centre_distance'\], config asks for"):
        Matcher.load(path, ["iou", "track_age"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable XGBoost JSON model"):
        Matcher.load(tmp_path / "bad.json")
    with pytest.raises(UserError, match="matcher model not found"):
        Matcher.load(tmp_path / "none.json")
    meta = json.loads(path.read_text())
    meta["learner"]["attributes"].pop("siamese_mot_meta")
    (tmp_path / "foreign.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="not a siamese-mot matcher"):
        Matcher.load(tmp_path / "foreign.json")


def test_gate_blocks_unlikely_pairs(toy_matcher, tmp_path):
    from association.learned import LearnedAssociation, LearnedParams
    from mot.tracker import Track
    from mot.types import Detections

    path = tmp_path / "m.json"
    toy_matcher.save(path)
    assoc = LearnedAssociation(LearnedParams(features=FEATURES, matcher=str(path), min_prob=0.5))
    track = Track(1, np.array([0, 0, 10, 20], np.float32), 1.0, 1)
    dets = Detections(np.array([[0, 0, 10, 20], [12, 0, 10, 20], [500, 0, 10, 20]], np.float32), np.ones(3))
    cost = assoc.cost([track], dets, 2)
    assert cost[0, 0] < assoc.max_cost < cost[0, 1]      # overlapping pair links, a neighbour does not
    assert np.isinf(cost[0, 2])                          # beyond max_distance track heights: never


def test_context_config_runs_end_to_end(synthetic_root, tmp_path):
    report = run(synthetic_root, load_config(Path(__file__).resolve().parents[1] / "configs" / "context.yaml"), tmp_path / "out")
    assert not report.failed and report.combined["MOTA"] > 40


def test_cross_validated_training_uses_every_sequence():
    """One fold per sequence chooses the rounds; the model is then fitted on all pairs."""
    from mot.training.matcher import train_matcher_cv

    rng = np.random.default_rng(3)
    xs, ys = [], []
    for n in (400, 300, 500):
        iou = rng.uniform(0, 1, n).astype(np.float32)
        dist = rng.uniform(0, 3, n).astype(np.float32)
        xs.append(np.stack([iou, dist], 1))
        ys.append((iou + rng.normal(0, 0.15, n) > 0.5) & (dist < 2.0))
    matcher, facts = train_matcher_cv(FEATURES, xs, ys, TrainSettings(rounds=60, early_stopping=5))
    assert facts["folds"] == 3 and facts["pairs"] == 1200 and 1 <= facts["rounds"] <= 60
    assert matcher.booster.num_boosted_rounds() == facts["rounds"]
    p = matcher.predict(np.array([[[0.9, 0.3], [0.1, 0.3]]], np.float32))
    assert p[0, 0] > 0.5 > p[0, 1]
    with pytest.raises(UserError, match="two or more sequences"):
        train_matcher_cv(FEATURES, xs[:1], ys[:1])


def test_train_matcher_command_on_generated_sequences(synthetic_root, tmp_path):
    """scripts/train_matcher.py without --val-seqs: pairs from the tracker run on each sequence,
    rounds chosen by leaving each out in turn; the written model loads for the config's features."""
    from mot.training.matcher_cli import main

    out = tmp_path / "m.json"
    cfg = Path(__file__).resolve().parents[1] / "configs" / "context.yaml"
    assert main(["--data", str(synthetic_root), "--config", str(cfg), "--det-files", "det/det.txt",
                 "--out", str(out)]) == 0
    features = load_config(cfg).association.params["features"]
    meta = json.loads(Matcher.load(out, features).booster.attr("siamese_mot_meta"))
    assert meta["training"]["folds"] == 2 and meta["training"]["train"] == ["SYN-A", "SYN-B"]
    assert main(["--data", str(synthetic_root), "--seqs", "SYN-A", "--config", str(cfg),
                 "--det-files", "det/det.txt", "--out", str(tmp_path / "n.json")]) == 2   # one sequence: no folds
    assert main(["--data", str(synthetic_root), "--config", str(cfg), "--waited-returns", "-1",
                 "--out", str(tmp_path / "w.json")]) == 2 and not (tmp_path / "w.json").exists()
    # --monotone on: P(same) never rises with a distance feature (here motion_error, others fixed)
    assert main(["--data", str(synthetic_root), "--config", str(cfg), "--det-files", "det/det.txt",
                 "--out", str(tmp_path / "mono.json"), "--monotone", "on"]) == 0
    mono = Matcher.load(tmp_path / "mono.json", features)
    x = np.tile(np.array([0.3, 0.5, 0.0, 0.0, 0.05, 0.1], np.float32)[: len(features)], (1, 50, 1))
    x[0, :, features.index("motion_error")] = np.linspace(0, 3, 50)
    assert np.all(np.diff(mono.predict(x)[0]) <= 1e-6)


def test_cnn_min_reads_the_cnn_part_of_the_gallery(tmp_path):
    """With ``cnn_min`` among the features the association attaches the embeddings' CNN parts (the
    tracks keep only their joined embeddings, ``gallery_size`` at most); without it, it computes none."""
    from association.features import FeatureContext, compute
    from association.learned import LearnedAssociation, LearnedParams
    from mot.tracker import Track
    from mot.types import Detections

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    dets = Detections(np.array([[10, 10, 30, 80], [80, 20, 30, 80]], np.float32), np.ones(2))
    for names in (["appearance_min", "cnn_min"], ["appearance_min"]):
        x = rng.uniform(0, 1, (500, len(names))).astype(np.float32)
        matcher, _ = train_matcher(names, x, x.sum(1) < 0.5, settings=TrainSettings(rounds=10))
        matcher.save(tmp_path / "m.json")
        assoc = LearnedAssociation(LearnedParams(features=names, matcher=str(tmp_path / "m.json"), gallery_size=3))
        prepared = assoc.prepare(dets, image, 1)
        kept = "cnn_min" in names
        assert ("cnn_embeddings" in prepared.extras) is kept
        track = Track(1, dets.tlwh[0], 1.0, 1)
        for frame in range(5):
            assoc.observe(track, prepared, 0, frame)
        assert len(track.appearance.gallery) == 3
        assert np.isfinite(assoc.cost([track], prepared, 6)).all()
        if kept:   # the track's own patch is at distance 0, the other person's is not
            cnn = compute(["cnn_min"], FeatureContext([track], prepared, 6))[0, :, 0]
            assert cnn[0] == pytest.approx(0.0, abs=1e-5) and cnn[1] > 1e-3


def test_waited_returns_add_the_hidden_person_back_where_last_seen(tmp_path):
    """``waited_returns``: the person hidden for 20 frames of the generated scene comes back in the
    pairs a second time, moved to where their track was last seen (centre distance 0, the prediction
    as far off as it is), labelled the same person; the real pairs are all kept, and a shorter gap
    than asked adds nothing."""
    from mot.studies.recovery import GAP, occluded_scene
    from mot.training.matcher import collect_pairs

    seq = occluded_scene(tmp_path, seed=5)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "context.yaml")
    features = cfg.association.params["features"]
    x0, y0 = collect_pairs(seq, cfg, "det/det.txt")
    x1, y1 = collect_pairs(seq, cfg, "det/det.txt", waited_returns=0.5)
    gap = (GAP[1] - GAP[0] + 2) / 25.0          # the person's seconds unseen when back (25 fps)
    seen = x1[:, features.index("time_since_seen")]
    moved = (np.abs(seen - gap) < 1e-3) & (x1[:, features.index("centre_distance")] < 1e-3)
    assert moved.sum() == 1 and y1[moved].all() and x1[moved, features.index("motion_error")][0] > 0.1
    real = {tuple(r) + (l,) for r, l in zip(x0.tolist(), y0.tolist())}
    assert real <= {tuple(r) + (l,) for r, l in zip(x1.tolist(), y1.tolist())}
    assert 1 <= len(y1) - len(y0) <= 4            # the moved detection against each (gated) track
    x2, y2 = collect_pairs(seq, cfg, "det/det.txt", waited_returns=1.0)   # 0.84 s unseen < 1 s
    assert np.array_equal(x2, x0) and np.array_equal(y2, y0)


def test_tracker_study_keeps_matchers_of_waited_returns_apart(tmp_path):
    """``loso.py --waited-returns``: the folds' matchers trained with the added returns are kept
    under their own names (never reused for a study without them, nor the reverse) and say so."""
    from mot.studies.loso import loso
    from mot.synthetic import SyntheticSpec, generate_sequence

    root = tmp_path / "three"
    for name, seed in (("SYN-A", 11), ("SYN-B", 12), ("SYN-C", 13)):
        generate_sequence(root, SyntheticSpec(name=name, num_frames=25, num_people=5, seed=seed))
    context = Path(__file__).resolve().parents[1] / "configs" / "context.yaml"
    configs = {"context": (context, ["tracker.confidence=rank"])}
    models = tmp_path / "models"
    for waited in (0.0, 0.3):
        loso(root, configs, {"det": "det/det.txt"}, ["det/det.txt"], tmp_path / f"out{waited}", seqs=["SYN-A"],
             models=models, settings=TrainSettings(rounds=20, waited_returns=waited))
    found = sorted(models.glob("SYN-A__*.json"))
    assert len(found) == 2
    features = load_config(context).association.params["features"]
    waited = sorted(json.loads(Matcher.load(m, features).booster.attr("siamese_mot_meta"))["training"]["waited_returns"]
                    for m in found)
    assert waited == [0.0, 0.3]


def test_only_pairs_within_the_gate_are_scored_with_unchanged_values(toy_matcher, tmp_path):
    from association.features import FeatureContext, compute
    from association.learned import LearnedAssociation, LearnedParams
    from mot.tracker import Track
    from mot.types import Detections

    path = tmp_path / "m.json"
    toy_matcher.save(path)
    assoc = LearnedAssociation(LearnedParams(features=FEATURES, matcher=str(path), max_distance=4.0))
    rng = np.random.default_rng(3)
    tracks = [Track(i + 1, np.array([x, 0, 10, 20], np.float32), 1.0, 1) for i, x in enumerate(rng.uniform(0, 600, 12))]
    dets = Detections(np.column_stack([rng.uniform(0, 600, 15), np.zeros(15), np.full(15, 10.0),
                                       np.full(15, 20.0)]).astype(np.float32), np.ones(15))
    scored = []
    predict = assoc.matcher.predict
    assoc.matcher.predict = lambda x: (scored.append(x.shape[0] * x.shape[1]), predict(x))[1]
    cost = assoc.cost(tracks, dets, 2)
    ctx = FeatureContext(tracks, dets, 2)
    gate = assoc.gate(ctx)
    assert 0 < gate.sum() < gate.size                      # some pairs pass, some do not
    assert scored == [gate.sum()]                          # the matcher saw only those
    every = -np.log(np.clip(predict(compute(FEATURES, ctx)), 1e-6, 1.0))
    np.testing.assert_array_equal(cost[gate], every[gate])
    assert np.isinf(cost[~gate]).all()
    empty = assoc.cost([], dets, 2)
    assert empty.shape == (0, 15)


def test_association_benchmark_times_the_shipped_embedding_size_and_the_gate():
    from association.learned import LearnedParams
    from association.siamese import AppearanceModel, AppearanceParams
    from mot.studies.association_speed import association_cost

    params = LearnedParams(**load_config(None).association.params)
    rows = association_cost(params, people=(5, 30), repeats=2)
    shipped = AppearanceModel(AppearanceParams(), device="cpu").embedding_dim
    assert [r["people"] for r in rows] == [5, 30]
    assert all(r["embedding_dim"] == shipped for r in rows)   # not a stand-in size
    assert all(0 < r["scored"] <= 1 for r in rows) and rows[1]["scored"] < 1   # the crowd is gated
    assert all(r["total"] == pytest.approx(r["features"] + r["xgboost"] + r["linking"]) for r in rows)


def test_cached_pairs_are_not_reused_after_a_feature_is_redefined(monkeypatch):
    """A feature's revision (``association.features.REVISIONS``) is part of the key of the pairs cached
    for a matcher's training: pairs of a config that uses it get a new key when it changes, the pairs
    of a config without it keep theirs."""
    import association.features as features
    from mot.training.matcher_cli import feature_revisions, pairs_digest

    default, context = load_config("default"), load_config("context")
    assert feature_revisions(default.association.params["features"]) == {"appearance_ema": features.REVISIONS["appearance_ema"]}
    assert feature_revisions(context.association.params["features"]) == {}
    before = pairs_digest(default), pairs_digest(context)
    monkeypatch.setitem(features.REVISIONS, "appearance_ema", features.REVISIONS["appearance_ema"] + 1)
    assert pairs_digest(default) != before[0]
    assert pairs_digest(context) == before[1]
