"""Camera motion compensation: the estimate, the Kalman warp, and a tracker through a sudden pan."""

import cv2
import numpy as np
import pytest

from association.iou import IoUAssociation, IoUParams
from mot.camera import IDENTITY, CameraMotion, warp_boxes
from mot.config import TrackerConfig, load_config
from mot.errors import UserError
from mot.motion import KalmanBox
from mot.tracker import TrackManager
from mot.types import Detections

H, W = 240, 320


def _canvas(seed=0):
    """A background textured at coarse and fine scales (as real scenes are, so the flow pyramid
    has something to follow), larger than the view so the view can pan over it."""
    rng = np.random.default_rng(seed)
    size = (W + 200, H + 200)
    coarse = cv2.resize(rng.uniform(0, 255, (size[1] // 16, size[0] // 16, 3)), size, interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.uniform(0, 255, (size[1], size[0], 3)), (5, 5), 0)
    return np.clip(0.7 * coarse + 0.3 * fine, 0, 255).astype(np.uint8)


def _view(canvas, x0, y0, person=None):
    """The camera's view with its top-left at canvas (x0, y0); ``person`` (tlwh in view pixels) is
    painted flat grey."""
    img = canvas[y0:y0 + H, x0:x0 + W].copy()
    if person is not None:
        x, y, w, h = (int(v) for v in person)
        img[y:y + h, x:x + w] = 128
    return img


def test_estimates_a_pan_and_ignores_people():
    canvas = _canvas()
    cam = CameraMotion()
    person = np.array([[100, 60, 30, 80]], np.float32)
    first = cam.estimate(_view(canvas, 100, 100, person[0]), person)
    np.testing.assert_array_equal(first, IDENTITY)           # the first frame has nothing to follow
    # the view moves 7 px left and 3 px down over the canvas: the scene moves +7, -3 in the image
    warp = cam.estimate(_view(canvas, 93, 103, person[0] + [40, 0, 0, 0]), person + [40, 0, 0, 0])
    np.testing.assert_allclose(warp[:, 2], [7, -3], atol=0.3)
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.01)
    still = cam.estimate(_view(canvas, 93, 103), None)
    np.testing.assert_array_equal(still, IDENTITY)           # a static camera: exactly the identity
    small = cam.estimate(_view(canvas, 91, 103), None)        # 2 px: above min_motion, passed on
    np.testing.assert_allclose(small[:, 2], [2, 0], atol=0.3)
    lenient = CameraMotion(min_motion=3.0)
    lenient.estimate(_view(canvas, 93, 103), None)
    np.testing.assert_array_equal(lenient.estimate(_view(canvas, 91, 103), None), IDENTITY)


def test_estimate_is_downscale_invariant():
    """Frames larger than max_side are shrunk first; the shift comes back in full-size pixels."""
    canvas = cv2.resize(_canvas(1), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    cam = CameraMotion(max_side=320)
    big = lambda x0, y0: canvas[y0:y0 + 3 * H, x0:x0 + 3 * W]   # noqa: E731
    cam.estimate(big(60, 60), None)
    warp = cam.estimate(big(30, 60), None)
    np.testing.assert_allclose(warp[:, 2], [30, 0], atol=1.5)


def test_kalman_and_box_warp():
    kf = KalmanBox(np.array([100, 50, 20, 40], np.float32))
    kf.mean[4] = 2.0                                         # moving right 2 px a frame
    shift = np.array([[1, 0, 10], [0, 1, -5]], np.float64)
    before = kf.predict_box(3)
    kf.warp(shift)
    np.testing.assert_allclose(kf.predict_box(3), before + [10, -5, 0, 0], atol=1e-4)
    zoom = np.array([[2, 0, 0], [0, 2, 0]], np.float64)       # the camera zooms in twice
    kf.warp(zoom)
    assert kf.predict_box(0)[3] == pytest.approx(80, abs=1e-3)
    assert kf.mean[4] == pytest.approx(4.0)                  # velocity in the new pixels
    np.testing.assert_allclose(warp_boxes(zoom, np.array([[10, 10, 20, 40]], np.float32)),
                               [[20, 20, 40, 80]], atol=1e-4)   # centre (20, 30) -> (40, 60)


@pytest.mark.parametrize("camera_motion, same_id", [("flow", True), ("none", False)])
def test_tracker_keeps_the_identity_through_a_sudden_pan(camera_motion, same_id):
    """A person stands still in the world while the camera jumps 45 px sideways between two frames
    (the person's 24 px box moves with the image): by IoU with the predicted box the track is lost
    without camera motion compensation, and kept with it."""
    canvas = _canvas(2)
    cfg = TrackerConfig(min_rank=0, high_rank=0, birth_rank=0, n_init=1, max_age=5, camera_motion=camera_motion)
    tracker = TrackManager(cfg, IoUAssociation(IoUParams(min_iou=0.3)))
    ids = []
    for frame in range(1, 9):
        x0 = 150 if frame <= 4 else 105                      # the pan: the view moves 45 px left
        person = np.array([150 - (x0 - 105), 80, 24, 60], np.float32)
        rows = tracker.update(Detections(person[None], np.ones(1, np.float32)), frame, _view(canvas, x0, 60, person))
        ids += rows.ids.tolist()
    assert (len(set(ids)) == 1) == same_id, ids
    with pytest.raises(UserError, match="camera_motion must be none or flow"):
        load_config(None, ["tracker.camera_motion=ecc"])


def test_benchmark_script_measures_each_sequence_and_reports_a_bad_one(tmp_path, capsys):
    """scripts/benchmark_camera.py: a static generated sequence moves nothing; one without ground
    truth is a one-line error, the other is still measured, and the exit code is 1."""
    import importlib.util
    import shutil
    from pathlib import Path

    from mot.synthetic import SyntheticSpec, generate_sequence

    generate_sequence(tmp_path, SyntheticSpec(name="SYN-OK", num_frames=6, num_people=3, seed=5))
    shutil.rmtree(generate_sequence(tmp_path, SyntheticSpec(name="SYN-NOGT", num_frames=4, num_people=2)) / "gt")
    script = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_camera.py"
    spec = importlib.util.spec_from_file_location("benchmark_camera", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--data", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("| SYN-OK"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == cells[4] and float(cells[3]) > 0.5     # IoU as is == IoU moved (static camera)
    assert err.strip().splitlines() == ["error: SYN-NOGT: no gt/gt.txt to measure against"]
