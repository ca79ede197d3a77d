"""Confidence ranks (mot/confidence.py) and the two association stages of the track manager."""

import numpy as np
import pytest

from association.iou import IoUAssociation, IoUParams
from mot.config import TrackerConfig, load_config
from mot.confidence import ScoreRanks, TrackedPrecision
from mot.errors import UserError
from mot.tracker import TrackManager
from mot.types import Detections
from mot.weights import shipped


def test_ranks_by_hand_and_empty():
    ranks = ScoreRanks()
    assert ranks.rank([5.0]).tolist() == [1.0]                 # nothing seen yet
    ranks.observe(np.array([10.0, 20.0, 30.0, 40.0]))
    # mid-ranks: below all 0, equal to one of four: (2 * below + 1) / 8; at or above the top 1
    np.testing.assert_allclose(ranks.rank([0.0, 10.0, 25.0, 30.0, 40.0, 99.0]), [0.0, 1 / 8, 0.5, 5 / 8, 1.0, 1.0])
    assert ranks.rank([]).shape == (0,)
    ranks.observe(np.zeros(0))
    assert len(ranks) == 4


def test_ranks_monotone_and_scale_free():
    """Ranks never fall as the score rises, and x50 (or any increasing map) changes nothing."""
    rng = np.random.default_rng(1)
    frames = [rng.uniform(-1, 130, rng.integers(0, 12)) for _ in range(30)]
    a, b, c = ScoreRanks(), ScoreRanks(), ScoreRanks()
    for scores in frames:
        a.observe(scores)
        b.observe(scores * 50)
        c.observe(np.log(scores + 2))
        probe = np.sort(rng.uniform(-1, 130, 20))
        ra = a.rank(probe)
        assert np.all(np.diff(ra) >= 0) and np.all((ra >= 0) & (ra <= 1))
        np.testing.assert_array_equal(ra, b.rank(probe * 50))
        np.testing.assert_array_equal(ra, c.rank(np.log(probe + 2)))


def test_constant_scores_are_confident():
    """A detector without real scores (every box 1.0) is fully confident: its tracks are born."""
    ranks = ScoreRanks()
    ranks.observe(np.ones(5))
    assert ranks.rank(np.ones(3)).tolist() == [1.0, 1.0, 1.0]
    frames = [Detections(np.array([p], np.float32), np.ones(1)) for p in _walk(4)]
    manager, out = _run(TrackerConfig(n_init=2, camera_motion="none"), frames)
    assert sum(len(r) for r in out) == 4 and len(manager.tracks) == 1


def test_memory_is_bounded():
    ranks = ScoreRanks(memory=100)
    for _ in range(50):
        ranks.observe(np.arange(10, dtype=np.float32))
    assert len(ranks) <= 100
    assert ranks.rank_one(4.5) == pytest.approx(0.5, abs=0.02)


def _walk(n, x0=0.0, step=2.0):
    return [np.array([x0 + step * i, 50, 20, 50], np.float32) for i in range(n)]


def _run(cfg, frames):
    manager = TrackManager(cfg, IoUAssociation(IoUParams(min_iou=0.3)))
    return manager, [manager.update(d, f) for f, d in enumerate(frames, 1)]


def _two_stage_cfg(**kw):
    """Plain ranks: these tests state what the thresholds do with a known confidence."""
    return TrackerConfig(n_init=1, max_age=5, camera_motion="none", min_rank=0.1, high_rank=0.5, birth_rank=0.5,
                         **{"confidence": "rank", **kw})


def test_tracker_output_is_scale_free():
    """The same frames with every score x50 give the same tracks."""
    rng = np.random.default_rng(2)
    people = [_walk(15, 0), _walk(15, 200), _walk(15, 400)]
    frames = []
    for f in range(15):
        keep = [p[f] for p in people if rng.uniform() > 0.2]
        frames.append((np.array(keep, np.float32).reshape(-1, 4), rng.uniform(0, 1, len(keep))))
    cfg = _two_stage_cfg()
    _, out1 = _run(cfg, [Detections(b, s) for b, s in frames])
    _, out2 = _run(cfg, [Detections(b, s * 50) for b, s in frames])
    for r1, r2 in zip(out1, out2):
        np.testing.assert_array_equal(r1.ids, r2.ids)
        np.testing.assert_array_equal(r1.tlwh, r2.tlwh)


def test_low_confidence_extends_a_track_but_never_starts_one():
    """A person seen confidently in frames 1-3, then only weakly: the weak detections extend the
    track (second stage, IoU). A weak detection elsewhere never becomes a track."""
    person = _walk(6)
    ghost = np.array([500, 50, 20, 50], np.float32)
    frames = []
    for f in range(6):
        if f < 3:   # the person strong, a filler strong detection far away sets the scale
            frames.append(Detections(np.stack([person[f], ghost + [0, 300, 0, 0]]), np.array([0.9, 0.9])))
        else:       # the person and a ghost, both weak (below every score seen)
            frames.append(Detections(np.stack([person[f], ghost]), np.array([0.1, 0.1])))
    manager, out = _run(_two_stage_cfg(), frames)
    person_ids = {int(i) for r in out[3:] for i, b in zip(r.ids, r.tlwh) if b[0] < 100}
    assert person_ids == {int(out[0].ids[np.argmin(out[0].tlwh[:, 0])])}   # extended, same id
    assert not any(b[0] == 500 and b[1] == 50 for r in out for b in r.tlwh)  # the weak ghost never output
    assert all(t.start_frame <= 1 for t in manager.tracks)                 # no track born after frame 1
    # without the second stage the person's track is not extended by weak detections
    _, out_none = _run(_two_stage_cfg(second_stage="none"), frames)
    assert all(len(r) == 0 for r in out_none[3:])


def test_unambiguous_iou_links_first():
    """iou_first links a clear overlap even when the association's gate would refuse it."""

    class Refusing(IoUAssociation):
        def cost(self, tracks, detections, frame, image=None):
            return np.full((len(tracks), len(detections)), np.inf, np.float32)

    frames = [Detections(np.array([p], np.float32), np.ones(1)) for p in _walk(4)]
    for flag, n_ids in ((False, 4), (True, 1)):
        cfg = TrackerConfig(n_init=1, camera_motion="none", iou_first=flag, birth_rank=0.0)
        manager = TrackManager(cfg, Refusing(IoUParams()))
        ids = {int(i) for f, d in enumerate(frames, 1) for i in manager.update(d, f).ids}
        assert len(ids) == n_ids


def test_confidence_config_is_checked():
    with pytest.raises(UserError, match="high_rank must be in"):
        load_config(None, ["tracker.high_rank=1.5"])
    with pytest.raises(UserError, match="second_stage must be"):
        load_config(None, ["tracker.second_stage=hungarian"])
    with pytest.raises(UserError, match="row_fit_rank must be in"):
        load_config(None, ["tracker.row_fit_rank=2"])
    with pytest.raises(UserError, match="row_fit_min_boxes must be >= 2"):
        load_config(None, ["tracker.row_fit_min_boxes=1"])


def test_tracked_precision_starts_at_the_rank_and_learns():
    """Unseen, the calibrated confidence is the rank; once the low ranks are seen covered by
    tracks (a clean detector) it rises, once they are seen uncovered (clutter) it falls; it never
    falls as the rank rises."""
    probe = np.linspace(0, 1, 41)
    cal = TrackedPrecision(bins=10, prior=50)
    np.testing.assert_allclose(cal.confidence(probe), np.clip(probe, 0.05, 0.95), atol=1e-6)
    clean, noisy = TrackedPrecision(), TrackedPrecision()
    rng = np.random.default_rng(0)
    for _ in range(300):
        ranks = rng.uniform(0, 1, 10)
        clean.observe(ranks, np.ones(10, bool))
        noisy.observe(ranks, ranks > 0.7)
    low = np.array([0.15])
    assert clean.confidence(low)[0] > 0.8 > TrackedPrecision().confidence(low)[0]
    assert noisy.confidence(low)[0] < 0.1
    for cal in (clean, noisy):
        c = cal.confidence(probe)
        assert np.all(np.diff(c) >= 0) and np.all((c >= 0) & (c <= 1))


def test_tracked_confidence_is_scale_free_and_serves_a_clean_detector():
    """A clean detector whose scores are noise: every box is a person (eight walking, four more
    entering at frame 20), plus clutter boxes, each in one frame, always scored below every
    person. Plain ranks treat the lowest-scored people like the clutter; recalibrated by the
    tracks, the low ranks that the tracks cover become confident, so more of the people's frames
    are output, while the clutter (never covered) still never is. Scores x50 give the same tracks."""
    rng = np.random.default_rng(3)
    people = [_walk(60, x) for x in range(0, 1600, 200)] + [_walk(60, x, 3.0) for x in range(100, 900, 200)]
    frames = []
    for f in range(60):
        boxes = [p[f] for k, p in enumerate(people) if k < 8 or f >= 20]
        clutter = [np.array([rng.uniform(0, 1600), 400, 20, 50], np.float32) for _ in range(3)]
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(boxes)), rng.uniform(0.0, 0.25, 3)])
        frames.append(Detections(np.stack(boxes + clutter), scores))
    cfg = dict(n_init=3, camera_motion="none", min_rank=0.1, high_rank=0.3, birth_rank=0.6)
    _, plain = _run(TrackerConfig(confidence="rank", **cfg), frames)
    _, tracked = _run(TrackerConfig(confidence="tracked", **cfg), frames)
    _, tracked50 = _run(TrackerConfig(confidence="tracked", **cfg),
                        [Detections(d.tlwh, d.scores * 50) for d in frames])
    n_plain, n_tracked = sum(len(r) for r in plain), sum(len(r) for r in tracked)
    assert n_tracked > n_plain
    assert not any(b[1] == 400 for r in tracked for b in r.tlwh)        # no clutter box output
    for r1, r2 in zip(tracked, tracked50):
        np.testing.assert_array_equal(r1.ids, r2.ids)
        np.testing.assert_array_equal(r1.tlwh, r2.tlwh)


def test_birth_evidence_delays_confirmation_of_low_confidence_tracks():
    """Births from rank 0.3 confirmed only when the ranks add up: a track of low-ranked hits needs
    more frames than one of top-ranked hits, and its tentative frames are still output."""
    strong, weak = _walk(10, 0), _walk(10, 400)
    filler = np.array([900, 300, 20, 50], np.float32)    # scored lowest: ranked below high_rank, never born
    frames = [Detections(np.stack([strong[f], weak[f], filler]), np.array([1.0, 0.5, 0.0])) for f in range(10)]
    cfg = TrackerConfig(n_init=2, camera_motion="none", min_rank=0, high_rank=0.3, birth_rank=0.3,
                        birth_evidence=1.5)
    manager, out = _run(cfg, frames)
    first = {}
    for f, r in enumerate(out, 1):
        for i, b in zip(r.ids, r.tlwh):
            first.setdefault(b[0] < 200, f)
            assert b[0] < 800
    assert first[True] == 2 and first[False] > 2
    rows = [(int(i), b[0] >= 200) for r in out for i, b in zip(r.ids, r.tlwh)]
    assert sum(1 for _, w in rows if w) == 10            # the tentative frames are output on confirmation
    assert cfg.hits_to_confirm() >= first[False]
    with pytest.raises(UserError, match="birth_evidence"):
        load_config(None, ["tracker.birth_evidence=-1"])
    with pytest.raises(UserError, match="confidence must be"):
        load_config(None, ["tracker.confidence=platt"])


def test_position_in_the_score_range_is_affine_free():
    ranks = ScoreRanks()
    assert ranks.position([3.0]).tolist() == [1.0]          # nothing observed: confident
    ranks.observe(np.array([2.0, 2.0]))
    assert ranks.position([2.0]).tolist() == [1.0]          # all equal: confident
    ranks.observe(np.array([0.0, 10.0, 4.0]))
    np.testing.assert_allclose(ranks.position([-1.0, 0.0, 4.0, 10.0, 12.0]), [0, 0, 0.4, 1, 1])
    moved = ScoreRanks()
    moved.observe(np.array([2.0, 2.0, 0.0, 10.0, 4.0]) * 50 - 7)
    np.testing.assert_allclose(moved.position(np.array([4.0, 7.5]) * 50 - 7), ranks.position([4.0, 7.5]), atol=1e-6)


def test_range_confidence_keeps_a_confident_detector_s_low_ranks():
    """A detector whose scores all sit near its top (0.95-1.0), plus a few clutter boxes near 0:
    plain ranks leave the people scored 0.95-0.97 unable to start tracks; with ``confidence:
    range`` each box's confidence is at least its place in the score range, so they start tracks,
    the clutter (at the bottom of the range and of the ranks) still never does, and scores x50
    give the same tracks."""
    rng = np.random.default_rng(5)
    people = [_walk(30, x) for x in range(0, 1200, 200)]
    frames = []
    for f in range(30):
        clutter = [np.array([rng.uniform(0, 1200), 400, 20, 50], np.float32) for _ in range(2)]
        scores = np.concatenate([np.linspace(0.95, 1.0, len(people)), rng.uniform(0.0, 0.05, 2)])
        frames.append(Detections(np.stack([p[f] for p in people] + clutter), scores))
    cfg = dict(n_init=3, camera_motion="none", min_rank=0.1, high_rank=0.3, birth_rank=0.6)
    _, plain = _run(TrackerConfig(confidence="rank", **cfg), frames)
    _, ranged = _run(TrackerConfig(confidence="range", **cfg), frames)
    _, ranged50 = _run(TrackerConfig(confidence="range", **cfg), [Detections(d.tlwh, d.scores * 50) for d in frames])
    people_ids = lambda out: {int(i) for r in out for i, b in zip(r.ids, r.tlwh) if b[1] == 50}
    assert len(people_ids(ranged)) == len(people) > len(people_ids(plain))
    assert not any(b[1] == 400 for r in ranged for b in r.tlwh)
    for r1, r2 in zip(ranged, ranged50):
        np.testing.assert_array_equal(r1.ids, r2.ids)
        np.testing.assert_array_equal(r1.tlwh, r2.tlwh)


def test_learned_confidence_trains_monotone_and_checks_its_file(synthetic_root, tmp_path):
    """The model learns P(person) from the generated sequences' detections (true ones overlap a
    person, false alarms do not), never falls as rank or place rises or as the row misfit falls,
    round-trips through its file, and a file of another kind, version or input list is a one-line
    error."""
    import json

    from mot.confidence import ConfidenceModel
    from mot.training.confidence import collect_many, train_confidence

    per_seq = collect_many([synthetic_root / "SYN-A", synthetic_root / "SYN-B"], ["det/det.txt"])
    x, y = per_seq[0]
    assert x.shape == (len(y), 3) and 0 < y.mean() < 1 and ((0 <= x[:, :2]) & (x[:, :2] <= 1)).all()
    assert np.isnan(x[0, 2]) and (x[np.isfinite(x[:, 2]), 2] >= 0).all() and np.isfinite(x[-1, 2])
    model, facts = train_confidence(per_seq)
    assert facts["detections"] == sum(len(p[1]) for p in per_seq) and facts["folds"] == 2
    grid = np.linspace(0, 1, 11, dtype=np.float32)
    for fixed in (0.2, 0.8):
        for misfit in (0.0, 0.5, np.nan):
            m = np.full_like(grid, misfit)
            along_rank = model.predict(np.stack([grid, np.full_like(grid, fixed), m], 1))
            along_place = model.predict(np.stack([np.full_like(grid, fixed), grid, m], 1))
            assert (np.diff(along_rank) >= -1e-6).all() and (np.diff(along_place) >= -1e-6).all()
        along_misfit = model.predict(np.stack([np.full_like(grid, fixed), np.full_like(grid, fixed), grid], 1))
        assert (np.diff(along_misfit) <= 1e-6).all()
    xa = np.concatenate([p[0] for p in per_seq])
    ya = np.concatenate([p[1] for p in per_seq])
    assert model.predict(xa)[ya].mean() > model.predict(xa)[~ya].mean()
    model.save(tmp_path / "c.json", {"training": facts})
    loaded = ConfidenceModel.load(tmp_path / "c.json")
    np.testing.assert_allclose(loaded.predict(xa[:20]), model.predict(xa[:20]))
    blob = json.loads((tmp_path / "c.json").read_text())
    attrs = blob["learner"]["attributes"]
    for change, message in (({"version": 7}, "format version 7"), ({"features": ["rank"]}, "trained on features")):
        meta = json.loads(attrs[ConfidenceModel.META_KEY])
        attrs[ConfidenceModel.META_KEY] = json.dumps({**meta, **change})
        (tmp_path / "bad.json").write_text(json.dumps(blob))
        attrs[ConfidenceModel.META_KEY] = json.dumps(meta)
        with pytest.raises(UserError, match=message):
            ConfidenceModel.load(tmp_path / "bad.json")
    with pytest.raises(UserError, match="not a siamese-mot confidence model"):
        ConfidenceModel.load(shipped("validity.json"))
    with pytest.raises(UserError, match="confidence model not found"):
        ConfidenceModel.load(tmp_path / "missing.json")


def test_learned_confidence_in_the_tracker_is_scale_free(synthetic_root, tmp_path):
    """A tracker with ``confidence: learned`` gives the same tracks with every score x50 (both of
    the model's inputs are free of the scale), and its confidences are the model's."""
    from mot.confidence import ConfidenceModel
    from mot.training.confidence import collect_many, train_confidence

    model, _ = train_confidence(collect_many([synthetic_root / "SYN-A", synthetic_root / "SYN-B"], ["det/det.txt"]))
    model.save(tmp_path / "c.json")
    rng = np.random.default_rng(4)
    people = [_walk(20, x) for x in range(0, 1000, 200)]
    frames = [Detections(np.stack([p[f] for p in people]), rng.uniform(0, 1, len(people))) for f in range(20)]
    cfg = TrackerConfig(n_init=2, camera_motion="none", confidence="learned", confidence_model=str(tmp_path / "c.json"))
    manager, out = _run(cfg, frames)
    _, out50 = _run(cfg, [Detections(d.tlwh, d.scores * 50) for d in frames])
    assert sum(len(r) for r in out) > 0
    for r1, r2 in zip(out, out50):
        np.testing.assert_array_equal(r1.ids, r2.ids)
        np.testing.assert_array_equal(r1.tlwh, r2.tlwh)
    ranks = ScoreRanks()
    ranks.observe(frames[0].scores)
    x = np.stack([ranks.rank(frames[0].scores), ranks.position(frames[0].scores),
                  np.full(len(frames[0]), 0.1, np.float32)], 1)
    np.testing.assert_allclose(ConfidenceModel.load(tmp_path / "c.json").confidence(x), model.predict(x))
    with pytest.raises(UserError, match="confidence must be rank, tracked, range or learned"):
        load_config(None, ["tracker.confidence=guess"])


def test_row_heights_fit_the_scene_and_ignore_clutter():
    """Boxes whose height grows linearly with their bottom row (people on a plane) are fitted
    despite 20% clutter of random sizes; a person-sized box at its row has a small misfit, one twice
    as tall a large one; before ``min_boxes`` boxes every misfit is NaN (unknown)."""
    from mot.confidence import RowHeights

    rng = np.random.default_rng(0)
    rows = RowHeights(min_boxes=30)

    def people(n, tall=1.0):
        bottom = rng.uniform(150, 480, n)
        h = tall * (0.5 * (bottom - 100)) * np.exp(rng.normal(0, 0.05, n))
        return np.stack([rng.uniform(0, 600, n), bottom - h, 0.4 * h, h], 1)

    rows.observe(people(20))
    assert np.isnan(rows.misfit(people(3))).all() and len(rows) == 20
    clutter = np.stack([rng.uniform(0, 600, 30), rng.uniform(0, 400, 30), rng.uniform(5, 50, 30),
                        rng.uniform(5, 200, 30)], 1)
    rows.observe(np.concatenate([people(100), clutter]))
    fit = rows.misfit(people(200))
    assert np.median(fit) < 0.08 and np.median(rows.misfit(people(200, tall=2.0))) > 0.5
    with pytest.raises(ValueError):
        RowHeights(min_boxes=1)


def test_row_fit_line_equals_weighted_least_squares():
    """The row fit's closed-form weighted line is the least-squares solution, and stays finite when
    every box sits on one row (no slope to fit: the minimum-norm solution)."""
    from mot.confidence import _weighted_line

    rng = np.random.default_rng(0)
    x, y, w = rng.uniform(100, 1000, 500), rng.uniform(10, 300, 500), rng.uniform(0.01, 1, 500)
    design = np.stack([np.ones_like(x), x], 1) * np.sqrt(w)[:, None]
    np.testing.assert_allclose(_weighted_line(x, y, w), np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)[0],
                               rtol=1e-9)
    flat = _weighted_line(np.full(50, 400.0), y[:50], w[:50])
    assert np.isfinite(flat).all() and flat[0] + 400 * flat[1] == pytest.approx(np.average(y[:50], weights=w[:50]))


def test_confidence_inputs_match_the_tracker_s_order():
    """The inputs observe a frame's scores before ranking them and feed the row fit before
    measuring: the first frame's top box is fully ranked, the fit starts after ``min_boxes`` boxes,
    and a shared :class:`ScoreRanks` already observed is not observed twice."""
    from mot.confidence import ConfidenceInputs, RowHeights

    ranks = ScoreRanks()
    inputs = ConfidenceInputs(ranks, fit_rank=0.5, rows=RowHeights(min_boxes=3))
    boxes = np.array([[0, 0, 10, 40], [20, 10, 10, 40], [40, 20, 10, 40], [60, 30, 10, 40]], np.float32)
    x = inputs(boxes, np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    assert x.shape == (4, 3) and x[3, 0] == 1.0 and len(ranks) == 4
    assert len(inputs.rows) == 2 and np.isnan(x[:, 2]).all()   # two boxes ranked >= 0.5 taught it
    ranks.observe(np.array([0.5, 0.6], np.float32))
    given = ranks.rank(np.array([0.5, 0.6], np.float32))
    x = inputs(boxes[:2], np.array([0.5, 0.6], np.float32), given)
    assert len(ranks) == 6 and len(inputs.rows) == 4 and np.isfinite(x[:, 2]).all()
    np.testing.assert_array_equal(x[:, 0], given)
    off = ConfidenceInputs.from_config(TrackerConfig(row_fit=False, row_fit_min_boxes=2))
    for _ in range(3):
        x = off(boxes, np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    assert off.rows is None and np.isnan(x[:, 2]).all() and (x[:, 0] > 0).all()


def test_tracker_study_trains_the_learned_confidence_without_the_left_out_scene(synthetic_root, tmp_path):
    """``scripts/loso.py`` with ``tracker.confidence: learned`` never uses the shipped model (it saw
    every development scene): each fold gets one trained on the other scenes only, and its run
    uses it."""
    from pathlib import Path

    from mot.confidence import ConfidenceModel
    from mot.studies.loso import loso

    iou = Path(__file__).resolve().parents[1] / "configs" / "iou_only.yaml"
    configs = {"learned": (iou, ["tracker.confidence=learned", "tracker.confidence_model=/nonexistent.json"])}
    # with only two scenes a fold trains on one sequence: too few to choose its rounds
    with pytest.raises(UserError, match="two or more sequences"):
        loso(synthetic_root, configs, {"det": "det/det.txt"}, ["det/det.txt"], tmp_path / "a", seqs=["SYN-A"])
    from mot.synthetic import SyntheticSpec, generate_sequence
    root = tmp_path / "three"
    for name, seed in (("SYN-A", 11), ("SYN-B", 12), ("SYN-C", 13)):
        generate_sequence(root, SyntheticSpec(name=name, num_frames=25, num_people=5, seed=seed))
    table = loso(root, configs, {"det": "det/det.txt"}, ["det/det.txt"], tmp_path / "b", seqs=["SYN-A"])
    assert 0 <= table["det"]["SYN-A"]["learned"]["HOTA"] <= 100
    [model] = (tmp_path / "b" / "models").glob("confidence__SYN-A__*.json")
    assert ConfidenceModel.load(model).meta["training"]["train"] == ["SYN-B", "SYN-C"]


def test_confidence_study_scores_each_left_out_sequence(synthetic_root, tmp_path, capsys):
    """``scripts/confidence_loso.py``: AUC by hand (ties half, one class -> NaN), one row per left-out
    sequence with both input counts, and a bad input count is a one-line error."""
    from mot.studies.confidence import auc, held_out, log_loss, main
    from mot.synthetic import SyntheticSpec, generate_sequence

    y = np.array([True, False, True, False])
    assert auc(y, np.array([0.9, 0.1, 0.8, 0.2])) == 1.0 and auc(y, np.array([0.5] * 4)) == 0.5
    assert np.isnan(auc(np.array([True, True]), np.array([0.1, 0.2])))
    assert log_loss(y, np.where(y, 0.9, 0.1)) < log_loss(y, np.full(4, 0.5))
    generate_sequence(tmp_path, SyntheticSpec(name="SYN-C", num_frames=30, num_people=5, seed=13))
    paths = [synthetic_root / "SYN-A", synthetic_root / "SYN-B", tmp_path / "SYN-C"]
    result = held_out(paths, ["det/det.txt"], {}, (2, 3))
    assert [r["sequence"] for r in result["rows"]] == ["SYN-A", "SYN-B", "SYN-C"]
    for r in result["rows"] + [result["pooled"]]:
        assert set(r["auc"]) == {2, 3} and all(0.5 < v <= 1 for v in r["auc"].values())
    assert main(["--data", str(synthetic_root / "SYN-A"), "--inputs", "7"]) == 2
    assert capsys.readouterr().out.strip().count("\n") == 0
