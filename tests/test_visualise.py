"""Track drawing, --save-video (atomic, named per sequence) and plain video input end to end."""

from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_detector as tiny

from mot.cli import run_main
from mot.errors import UserError
from mot.io import TrackResults, read_results
from mot.sequence import open_sequence
from mot.visualise import VideoStyle, draw_tracks, render_video, track_colour, video_path_for


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    ok, image = cap.read()
    while ok:
        frames.append(image)
        ok, image = cap.read()
    cap.release()
    return frames


def test_colours_are_stable_and_distinct():
    assert track_colour(7) == track_colour(7)
    assert len({track_colour(i) for i in range(1, 41)}) == 40


def test_draw_tracks_boxes_and_trails():
    image = np.zeros((100, 120, 3), np.uint8)
    trails = {3: deque([(20.0, 90.0), (30.0, 90.0), (40.0, 90.0)])}
    out = draw_tracks(image, np.array([3]), np.array([[30, 40, 20, 30]], np.float32), trails, VideoStyle())
    assert image.max() == 0  # the input is not drawn on
    assert tuple(out[55, 30]) == track_colour(3)   # left edge of the box
    assert tuple(out[70, 40]) == track_colour(3)   # bottom edge
    assert out[90, 25].any()                       # the trail
    assert not out[55, 40].any()                   # inside the box stays untouched


def test_video_naming():
    assert video_path_for("out/v.mp4", "SEQ", several=False) == Path("out/v.mp4")
    assert video_path_for("out/v.mp4", "SEQ", several=True) == Path("out/v_SEQ.mp4")
    assert video_path_for("out/videos", "SEQ", several=True) == Path("out/videos/SEQ.mp4")


def test_save_video_for_image_sequences(synthetic_root, tmp_path):
    out = tmp_path / "run"
    code = run_main(["--data", str(synthetic_root), "--config", str(Path(__file__).parents[1] / "configs" /
                     "iou_only.yaml"), "--out", str(out), "--save-video", str(tmp_path / "v.avi")])
    assert code == 0
    for name, length in (("SYN-A", 40), ("SYN-B", 30)):
        frames = _frames(tmp_path / f"v_{name}.avi")
        assert len(frames) == length and frames[0].shape == (360, 640, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "v_SYN-A.avi", "v_SYN-B.avi"]  # no temp files


def test_failed_video_leaves_nothing(seq_copy, tmp_path):
    (seq_copy / "img1" / "000020.jpg").unlink()
    results = TrackResults.empty()
    with pytest.raises(UserError, match="cannot read image"):
        render_video(open_sequence(seq_copy), results, tmp_path / "videos" / "v.mp4", prefetch=0)
    assert list((tmp_path / "videos").iterdir()) == []
    with pytest.raises(UserError, match="--save-video needs"):
        render_video(open_sequence(seq_copy), results, tmp_path / "videos" / "v.gif")
    assert list((tmp_path / "videos").iterdir()) == []


def test_plain_video_is_tracked_and_drawn(tmp_path):
    """A video (no seqinfo, no det.txt) through the dnn detector: one lit patch is one steady track."""
    size = (128, 96)
    scale = np.array([2, 1.5, 2, 1.5], np.float32)
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    frame = tiny.paint(size, [0], lambda b: b * scale)
    for _ in range(12):
        writer.write(frame)
    writer.release()
    model = tiny.export("ssd", tmp_path / "ssd.onnx")
    w, h = tiny.INPUT_WH
    args = ["--data", str(clip), "--out", str(tmp_path / "run"), "--save-video", str(tmp_path / "drawn.mp4"),
            "--set", "detector.type=dnn", "--set", f"detector.params.model={model}",
            "--set", "detector.params.layout=ssd", "--set", f"detector.params.input_width={w}",
            "--set", f"detector.params.input_height={h}", "--set", "detector.params.classes=[1]"]
    assert run_main(args) == 0
    results = read_results(tmp_path / "run" / "clip.txt")
    assert len(results) == 12 and set(results.ids.tolist()) == {1}
    expected = tiny.ANCHORS_XYXY[0] * scale
    np.testing.assert_allclose(results.tlwh[-1], [*expected[:2], *(expected[2:] - expected[:2])], atol=0.5)
    drawn = _frames(tmp_path / "drawn.mp4")
    assert len(drawn) == 12 and drawn[0].shape == (96, 128, 3)
