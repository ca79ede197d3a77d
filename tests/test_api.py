"""The public API: mot.Tracker, Detections from plain arrays, streamed results, named configs, and
the README's example run as written."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import mot
from mot.config import config_path, load_config, shipped_configs
from mot.io import ResultWriter, TrackResults, format_results, read_ground_truth
from mot.pipeline import track_sequence
from mot.sequence import open_sequence

ROOT = Path(__file__).resolve().parents[1]


def _gt_detections(seq_dir: Path):
    """Per-frame Detections of a synthetic sequence's ground truth (a perfect detector)."""
    gt = read_ground_truth(seq_dir / "gt" / "gt.txt")
    return {int(f): mot.Detections(gt.tlwh[gt.frames == f], np.ones(int((gt.frames == f).sum())))
            for f in np.unique(gt.frames)}


def test_exports():
    assert set(mot.__all__) == {"Tracker", "Detections", "TrackResults", "load_config", "run", "UserError"}
    for name in mot.__all__:
        assert getattr(mot, name) is not None
    with pytest.raises(AttributeError):
        mot.nothing_here


def test_detections_from_arrays():
    d = mot.Detections([[10, 20, 30, 60]], [0.9])
    assert d.tlwh.dtype == np.float32 and d.tlwh.shape == (1, 4) and d.scores.shape == (1,)
    x = mot.Detections.from_xyxy(np.array([[10, 20, 40, 80]]), np.array([0.9]))
    np.testing.assert_array_equal(x.tlwh, d.tlwh)
    assert len(mot.Detections(np.zeros((0, 4)), [])) == 0
    with pytest.raises(ValueError):
        mot.Detections([[1, 2, 3]], [0.5])


def test_tracker_keeps_ids_on_a_clean_sequence(synthetic_root):
    """IoU tracking of perfect detections: one id per person, every frame's output from that frame."""
    dets = _gt_detections(synthetic_root / "SYN-B")
    tracker = mot.Tracker(frame_rate=25, config="iou_only")
    assert not tracker.needs_image
    seen = []
    for frame in sorted(dets):
        tracks = tracker.update(dets[frame], frame=frame)
        assert tracker.frame == frame
        assert (tracks.frames == frame).all() and len(set(tracks.ids.tolist())) == len(tracks)
        seen.append(tracks)
    late = tracker.late()
    assert len(late) > 0 and (late.frames < tracker.frame).all()   # tracks' first frames, once confirmed
    assert len(tracker.late()) == 0                                              # never returned twice
    assert len(tracker.flush()) == 0   # iou_only holds nothing back at the end
    ids = np.concatenate([t.ids for t in seen])
    people = len(np.unique(read_ground_truth(synthetic_root / "SYN-B" / "gt" / "gt.txt").ids))
    assert len(np.unique(ids)) <= people + 1


def test_tracker_errors():
    with pytest.raises(ValueError, match="frame_rate"):
        mot.Tracker(frame_rate=0, config="iou_only")
    tracker = mot.Tracker(frame_rate=30)                   # the default config looks at pixels
    assert tracker.needs_image
    with pytest.raises(ValueError, match="image="):
        tracker.update(mot.Detections.empty())
    iou = mot.Tracker(frame_rate=30, config="iou_only")
    iou.update(mot.Detections.empty(), frame=5)
    with pytest.raises(ValueError, match="increase"):
        iou.update(mot.Detections.empty(), frame=5)
    with pytest.raises(mot.UserError, match="shipped configs"):
        mot.Tracker(frame_rate=30, config="no_such_config")


def test_two_trackers_do_not_share_ids(synthetic_root):
    dets = _gt_detections(synthetic_root / "SYN-B")
    a, b = mot.Tracker(25, "iou_only"), mot.Tracker(25, "iou_only")
    for frame in sorted(dets)[:6]:
        a.update(dets[frame])
    out_b = [b.update(dets[f]) for f in sorted(dets)[:6]]
    out_a2 = mot.Tracker(25, "iou_only")
    out_a2 = [out_a2.update(dets[f]) for f in sorted(dets)[:6]]
    for x, y in zip(out_b, out_a2):   # b numbers from 1 as a fresh tracker does, whatever a did
        np.testing.assert_array_equal(x.ids, y.ids)


def test_reset_starts_ids_again(synthetic_root):
    dets = _gt_detections(synthetic_root / "SYN-B")
    tracker = mot.Tracker(25, "iou_only")
    first = [tracker.update(dets[f]) for f in sorted(dets)[:6]]
    tracker.reset()
    again = [tracker.update(dets[f]) for f in sorted(dets)[:6]]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x.ids, y.ids)


def test_streamed_file_equals_the_sorted_whole(synthetic_root, tmp_path):
    """Rows arriving late (within the delay) still come out sorted, and the file appears only at the end."""
    rng = np.random.default_rng(0)
    rows = [TrackResults(np.array([f, max(1, f - int(rng.integers(0, 4)))]), np.array([1, 2]),
                         rng.random((2, 4)).astype(np.float32) * 100, np.ones(2, np.float32)) for f in range(1, 40)]
    path = tmp_path / "out" / "SEQ.txt"
    with ResultWriter(path, delay=3) as writer:
        for f, r in enumerate(rows, 1):
            writer.add(r, f)
            assert not path.exists()
    assert path.read_text() == format_results(TrackResults.concatenate(rows))


def test_a_failed_stream_leaves_nothing(tmp_path):
    path = tmp_path / "SEQ.txt"
    with pytest.raises(RuntimeError):
        with ResultWriter(path, delay=0) as writer:
            writer.add(TrackResults(np.array([1]), np.array([1]), np.ones((1, 4), np.float32), np.ones(1, np.float32)), 1)
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_pipeline_streams_what_the_tracker_outputs(synthetic_root, tmp_path):
    """run() writes, streamed, exactly the rows of the public Tracker fed the same frames."""
    cfg = load_config("iou_only")
    mot.run(synthetic_root, cfg, tmp_path, seqs=["SYN-A"])
    whole = track_sequence(open_sequence(synthetic_root / "SYN-A"), cfg)
    assert (tmp_path / "SYN-A.txt").read_text() == format_results(whole)


def test_configs_by_name_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"default", "iou_only"} <= set(shipped_configs())
    assert config_path("iou_only") == config_path("configs/iou_only.yaml") == config_path("iou_only.yaml")
    assert load_config("iou_only").association.type == "iou"
    (tmp_path / "mine.yaml").write_text("tracker:\n  n_init: 2\n")
    assert load_config("mine.yaml").tracker.n_init == 2


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has no python example"
    return blocks[0]


def test_readme_example_runs_as_written(synthetic_root, tmp_path, monkeypatch):
    """The README's video loop, run on a video made from a synthetic sequence, with a detector that
    serves the sequence's ground truth (the README says: any detector)."""
    seq_dir = synthetic_root / "SYN-B"
    frames = sorted((seq_dir / "img1").glob("*.jpg"))
    first = cv2.imread(str(frames[0]))
    video = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                            (first.shape[1], first.shape[0]))
    for f in frames:
        video.write(cv2.imread(str(f)))
    video.release()
    dets = _gt_detections(seq_dir)
    calls = []

    def my_detector(image):
        calls.append(image.shape)
        d = dets.get(len(calls), mot.Detections.empty())
        return d.tlwh, d.scores

    monkeypatch.chdir(tmp_path)
    scope = {"my_detector": my_detector}
    exec(compile(_readme_example(), "README.md", "exec"), scope)
    assert len(calls) == len(frames)
    tracks = scope["tracks"]
    assert len(tracks) > 0 and (tracks.frames == len(frames)).all()
