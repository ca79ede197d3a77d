import numpy as np

from association.iou import IoUAssociation, IoUParams
from mot.config import TrackerConfig
from mot.tracker import TrackManager, TrackState
from mot.types import Detections


def _dets(*boxes):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def _tracker(**kw):
    return TrackManager(TrackerConfig(**{"min_rank": 0, "high_rank": 0, "birth_rank": 0, **kw}), IoUAssociation(IoUParams(min_iou=0.3)))


def test_birth_after_n_init_hits_with_history():
    tr = _tracker(n_init=3, output_tentative_history=True)
    assert len(tr.update(_dets([0, 0, 10, 20]), 1)) == 0
    assert len(tr.update(_dets([1, 0, 10, 20]), 2)) == 0
    out = tr.update(_dets([2, 0, 10, 20]), 3)
    assert out.frames.tolist() == [1, 2, 3]
    assert set(out.ids.tolist()) == {1}
    assert tr.tracks[0].state is TrackState.CONFIRMED


def test_no_history_when_disabled():
    tr = _tracker(n_init=2, output_tentative_history=False)
    tr.update(_dets([0, 0, 10, 20]), 1)
    assert tr.update(_dets([0, 0, 10, 20]), 2).frames.tolist() == [2]


def test_tentative_track_dies_on_first_miss():
    tr = _tracker(n_init=3)
    tr.update(_dets([0, 0, 10, 20]), 1)
    tr.update(Detections.empty(), 2)
    assert tr.tracks == []


def test_lost_then_removed_after_max_age_and_recovered_before():
    tr = _tracker(n_init=1, max_age=2, motion="velocity", velocity_smoothing=0.0)
    tr.update(_dets([0, 0, 10, 20]), 1)
    tr.update(Detections.empty(), 2)
    assert tr.tracks[0].state is TrackState.LOST
    out = tr.update(_dets([0, 0, 10, 20]), 3)
    assert out.ids.tolist() == [1]                     # same identity after a 1-frame gap
    for f in (4, 5, 6):
        tr.update(Detections.empty(), f)
    assert tr.tracks == []                             # gone after max_age frames without a match
    assert tr.update(_dets([0, 0, 10, 20]), 7).ids.tolist() == [2]


def test_constant_velocity_prediction():
    tr = _tracker(n_init=1, motion="velocity", velocity_smoothing=1.0)
    tr.update(_dets([0, 0, 10, 20]), 1)
    tr.update(_dets([5, 0, 10, 20]), 2)
    assert np.allclose(tr.tracks[0].predict(4), [15, 0, 10, 20])


def test_kalman_learns_velocity():
    tr = _tracker(n_init=1, motion="kalman")
    for f in range(1, 12):
        tr.update(_dets([5 * f, 0, 10, 20]), f)
    predicted = tr.tracks[0].predict(14)
    assert abs(predicted[0] - 70) < 3 and np.allclose(predicted[2:], [10, 20], atol=0.5)
    assert np.allclose(tr.tracks[0].predict(11), [55, 0, 10, 20], atol=1.0)


def test_ids_owned_by_instance():
    a, b = _tracker(n_init=1), _tracker(n_init=1)
    a.update(_dets([0, 0, 10, 20], [100, 0, 10, 20]), 1)
    out_b = b.update(_dets([0, 0, 10, 20]), 1)
    assert out_b.ids.tolist() == [1]


def test_empty_frames():
    tr = _tracker()
    out = tr.update(Detections.empty(), 1)
    assert len(out) == 0 and out.tlwh.shape == (0, 4)


def test_track_history_is_bounded():
    """A long track keeps only its last HISTORY scores and confidences (memory on long runs)."""
    from mot.tracker import Track
    track = Track(1, np.array([0, 0, 10, 20], np.float32), 0.5, 1)
    for f in range(2, 2 + 3 * Track.HISTORY):
        track.update(np.array([f, 0, 10, 20], np.float32), float(f), f, 0.6, rank=0.9)
    assert len(track.scores) == len(track.ranks) == Track.HISTORY
    assert track.scores[-1] == float(1 + 3 * Track.HISTORY) and track.hits == 1 + 3 * Track.HISTORY
