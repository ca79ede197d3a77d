"""YOLOX-nano as the ``dnn`` detector's ``yolox`` layout: grid decoding, letterbox, the shipped model."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tiny_detector as tiny
from detectors import DETECTORS
from detectors.dnn import letterbox, resolve_model
from detectors.dnn_decode import decode
from mot.config import DetectorSection, load_config
from mot.errors import UserError
from mot.geometry import xyxy_to_tlwh

ROOT = Path(__file__).resolve().parents[1]
YOLOX_CONFIG = ROOT / "configs" / "yolox.yaml"
# The file reviewed for shipping (its README in the model's source folder gives the same sum).
YOLOX_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"


def _yolox_output(input_wh, strides, cells, n_classes=3):
    """A raw YOLOX output (1, N, 5 + C) with zero objectness except in ``cells``.

    ``cells``: (stride, x, y, dx, dy, w, h, objectness, class id, class score); returns the tensor and
    each cell's expected xyxy box in input pixels.
    """
    w, h = input_wh
    offsets, start = {}, 0
    for s in strides:
        offsets[s] = start
        start += (w // s) * (h // s)
    out = np.zeros((1, start, 5 + n_classes), np.float32)
    out[0, :, 2:4] = np.log(4.0)  # background cells: any size, objectness 0
    expected = []
    for s, x, y, dx, dy, bw, bh, obj, cls, score in cells:
        row = out[0, offsets[s] + y * (w // s) + x]
        row[:5] = [dx, dy, np.log(bw / s), np.log(bh / s), obj]
        row[5 + cls] = score
        cx, cy = (x + dx) * s, (y + dy) * s
        expected.append([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    return out, np.array(expected, np.float32)


def test_yolox_decode_hand_made_grid():
    # A non-square input, so a row/column mix-up in the grid would move the boxes.
    input_wh, strides = (64, 32), (8, 16, 32)
    cells = [(8, 5, 2, 0.5, 0.25, 12.0, 20.0, 0.9, 0, 0.8),    # person at stride 8, cell (x 5, y 2)
             (16, 3, 1, 0.0, 0.5, 30.0, 16.0, 0.5, 0, 0.6),    # person at stride 16
             (32, 1, 0, 0.75, 0.5, 40.0, 24.0, 0.9, 2, 0.9)]   # class 2 (not a person) at stride 32
    out, expected = _yolox_output(input_wh, strides, cells)
    assert out.shape == (1, 8 * 4 + 4 * 2 + 2 * 1, 8)
    xyxy, scores, ids = decode(out, "yolox", input_wh, None, [0], strides)
    keep = scores > 0.01
    np.testing.assert_allclose(xyxy[keep], expected[:2], atol=1e-4)
    np.testing.assert_allclose(scores[keep], [0.9 * 0.8, 0.5 * 0.6], rtol=1e-6)
    assert ids[keep].tolist() == [0, 0]
    # by hand: centre ((5 + 0.5) * 8, (2 + 0.25) * 8) = (44, 18), size 12x20
    np.testing.assert_allclose(expected[0], [38, 8, 50, 28])

    xyxy, scores, ids = decode(out, "yolox", input_wh, None, None, strides)
    keep = scores > 0.01
    np.testing.assert_allclose(xyxy[keep], expected, atol=1e-4)
    assert ids[keep].tolist() == [0, 0, 2]


def test_yolox_decode_rejects_a_grid_that_does_not_fit():
    out, _ = _yolox_output((64, 32), (8, 16, 32), [])
    with pytest.raises(UserError, match=r"layout 'yolox' \(expected \[1, 84, 5 \+ classes\] for a 64x64 input"):
        decode(out, "yolox", (64, 64), None, [0], (8, 16, 32))


@pytest.mark.parametrize("image_wh, canvas_wh", [((200, 100), (64, 64)), ((90, 300), (64, 64)),
                                                 ((1224, 370), (416, 416))])
@pytest.mark.parametrize("align", ["top_left", "center"])
def test_letterbox_maps_points_both_ways(image_wh, canvas_wh, align):
    w, h = image_wh
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = int(0.3 * w), int(0.4 * h), int(0.6 * w), int(0.9 * h)
    image[y1:y2, x1:x2] = 255
    canvas, ratio, offset = letterbox(image, canvas_wh, 114, align)
    assert canvas.shape == (canvas_wh[1], canvas_wh[0], 3) and canvas.dtype == np.uint8
    r = min(canvas_wh[0] / w, canvas_wh[1] / h)
    assert ratio == (r, r)
    nw, nh = round(w * r), round(h * r)
    if align == "top_left":
        assert offset == (0.0, 0.0)
    else:
        assert offset == ((canvas_wh[0] - nw) // 2, (canvas_wh[1] - nh) // 2)
    # everything outside the resized image is the pad value; the image is inside
    inside = np.zeros(canvas.shape[:2], bool)
    inside[int(offset[1]):int(offset[1]) + nh, int(offset[0]):int(offset[0]) + nw] = True
    assert np.all(canvas[~inside] == 114)
    assert not np.any(canvas[inside] == 114)
    # the white box found in the canvas maps back to the image's box within a canvas pixel
    ys, xs = np.nonzero(canvas[:, :, 0] > 127)
    found = (np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
             - np.array([*offset, *offset])) / r
    np.testing.assert_allclose(found, [x1, y1, x2, y2], atol=1.5 / r)


def test_top_left_letterbox_and_clip_through_the_detector(tmp_path):
    """A tall image, top-left letterboxed into the tiny model's input, gives its boxes back in image pixels;
    a box running past the image's right edge is clipped, or kept whole with ``clip: false``."""
    model = tiny.export("yolo5", tmp_path / "tiny.onnx")
    w, h = tiny.INPUT_WH

    def build(**extra):
        return DETECTORS.build(DetectorSection("dnn", {
            "model": str(model), "layout": "yolo5", "input_width": w, "input_height": h, "resize": "letterbox",
            "letterbox_align": "top_left", "min_score": 0.5, **extra}))

    to_image = lambda xyxy: xyxy / 0.5  # noqa: E731  (64x128 -> 32x64 at the top-left of 64x64)
    out = build(classes=[0]).detect(tiny.paint((64, 128), [0], to_image), 1)
    np.testing.assert_allclose(out.tlwh, xyxy_to_tlwh(to_image(tiny.ANCHORS_XYXY[[0]])), atol=1e-3)
    # anchor 1 spans input x 28..40, the image ends at input x 32: image x 56..80 in a 64 px wide image
    image = tiny.paint((64, 128), [1], to_image)
    whole = xyxy_to_tlwh(to_image(tiny.ANCHORS_XYXY[[1]]))
    np.testing.assert_allclose(build(clip=False).detect(image, 1).tlwh, whole, atol=1e-3)
    clipped = whole.copy()
    clipped[0, 2] = 64 - whole[0, 0]
    np.testing.assert_allclose(build().detect(image, 1).tlwh, clipped, atol=1e-3)


def test_shipped_model_is_packaged_and_loads_offline(tmp_path, monkeypatch):
    path = resolve_model("yolox_nano.onnx")
    assert path.parent == ROOT / "mot" / "weights"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YOLOX_SHA256
    assert (path.parent / "LICENSE-yolox_nano").read_text().lstrip().startswith("Apache License")
    assert "*.onnx, LICENSE*" in (ROOT / "setup.cfg").read_text()  # package_data ships model and licence
    monkeypatch.chdir(tmp_path)  # the config's bare model name works from any working folder
    cfg = load_config(YOLOX_CONFIG)
    det = DETECTORS.build(cfg.detector)
    det._net.setInput(det._blob(np.full((480, 640, 3), 114, np.uint8))[0])
    raw = det._net.forward()
    assert raw.shape == (1, 52 * 52 + 26 * 26 + 13 * 13, 85)
    assert np.all((raw[0, :, 4:] >= 0) & (raw[0, :, 4:] <= 1))  # objectness and class scores: probabilities
    out = det.detect(np.zeros((480, 640, 3), np.uint8), 1)  # a black frame holds nobody
    assert len(out) == 0 and out.tlwh.dtype == np.float32


def _check_one_line(exc_info, *needles):
    message = str(exc_info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_missing_model_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = dict(load_config(YOLOX_CONFIG).detector.params)
    with pytest.raises(UserError) as exc:
        DETECTORS.build(DetectorSection("dnn", {**params, "model": "yolox_tiny.onnx"}))
    _check_one_line(exc, "yolox_tiny.onnx not found", str(ROOT / "mot" / "weights"))
    with pytest.raises(UserError) as exc:
        DETECTORS.build(DetectorSection("dnn", {**params, "model": str(tmp_path / "models" / "x.onnx")}))
    _check_one_line(exc, f"{tmp_path / 'models' / 'x.onnx'} not found")


def test_corrupt_or_wrong_model_is_a_one_line_error(tmp_path):
    params = dict(load_config(YOLOX_CONFIG).detector.params)
    bad = tmp_path / "yolox_nano.onnx"
    bad.write_bytes(resolve_model("yolox_nano.onnx").read_bytes()[:5000])  # a truncated download
    with pytest.raises(UserError) as exc:
        DETECTORS.build(DetectorSection("dnn", {**params, "model": str(bad)}))
    _check_one_line(exc, "cannot read", str(bad))
    # A readable model with another output layout: the first frame says what does not fit.
    other = tiny.export("yolo8", tmp_path / "other.onnx")
    det = DETECTORS.build(DetectorSection("dnn", {**params, "model": str(other)}))
    with pytest.raises(UserError) as exc:
        det.detect(np.zeros((120, 160, 3), np.uint8), 1)
    _check_one_line(exc, "layout 'yolox'", "[1, 3549, 5 + classes]")


def test_cli_missing_model_exits_non_zero_without_traceback(synthetic_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "scripts" / "run_mot.py")
    proc = subprocess.run([sys.executable, script, "--data", str(synthetic_root / "SYN-A"),
                           "--config", str(YOLOX_CONFIG), "--set", "detector.params.model=missing.onnx",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "error: dnn: model file missing.onnx not found" in proc.stderr
    assert not list((tmp_path / "out").glob("*.txt"))


def test_yolox_strides_must_divide_the_input():
    with pytest.raises(UserError, match=r"detector.params: yolox: .* multiples of every stride \(8\)"):
        load_config(YOLOX_CONFIG, ["detector.params.input_width=420"])
