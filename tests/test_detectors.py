"""Contract tests: every registered detector, built from its default params on a generated sequence."""

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import tiny_detector as tiny

from detectors import DETECTORS
from mot.config import DetectorSection
from mot.errors import UserError
from mot.sequence import open_sequence
from mot.types import Detections


def _draw_person(image: np.ndarray, x: float, y: float, h: float) -> None:
    """Draws a dark standing figure, top centre (x, y), h pixels tall: enough for HOG to see a person."""
    u, col = h / 8, (40, 40, 40)
    cv2.circle(image, (int(x), int(y + u * 0.6)), int(u * 0.55), col, -1)
    cv2.rectangle(image, (int(x - u * 0.9), int(y + u * 1.2)), (int(x + u * 0.9), int(y + u * 4.2)), col, -1)
    for side in (-1, 1):
        cv2.line(image, (int(x + side * u * 0.9), int(y + u * 1.4)), (int(x + side * u * 1.3), int(y + u * 4)),
                 col, int(u * 0.45))
        cv2.line(image, (int(x + side * u * 0.5), int(y + u * 4.2)), (int(x + side * u * 0.8), int(y + h)),
                 col, int(u * 0.6))


class _FakeYOLO:
    """Stands in for ``ultralytics.YOLO``: the adapter's contract is tested without the package.

    Returns two boxes (a person and a class-2 object) on any non-blank image, none on a blank one.
    """

    def __init__(self, path):
        assert Path(path).is_file()

    def predict(self, image, imgsz, conf, iou, classes, device, verbose):
        lit = image.max() > 0
        xyxy = np.array([[100, 50, 140, 170], [300, 80, 330, 150]] if lit else np.zeros((0, 4)), np.float32)
        boxes = SimpleNamespace(xyxy=xyxy, conf=np.array([0.9, 0.8][:len(xyxy)], np.float32),
                                cls=np.array([0, 2][:len(xyxy)], np.float32))
        return [SimpleNamespace(boxes=boxes)]


@pytest.fixture
def fake_ultralytics(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ultralytics", SimpleNamespace(YOLO=_FakeYOLO))
    weights = tmp_path / "fake.pt"
    weights.write_bytes(b"weights")
    return weights


@pytest.fixture(scope="session")
def tiny_yolo8(tmp_path_factory) -> Path:
    return tiny.export("yolo8", tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture
def detector_cases(synthetic_root, tmp_path, tiny_yolo8):
    """name -> (params, sequence, image with people in it, params naming a missing file or None).

    Every registered detector needs an entry: a new detector without one fails the contract test.
    """
    seq = open_sequence(synthetic_root / "SYN-A")
    scene = np.full((360, 640, 3), 200, np.uint8)
    _draw_person(scene, 160, 100, 150)
    _draw_person(scene, 420, 120, 170)
    tiny_image = tiny.paint((640, 360), [0, 2], lambda b: b * np.array([10, 5.625, 10, 5.625], np.float32))
    w, h = tiny.INPUT_WH
    dnn = {"model": str(tiny_yolo8), "layout": "yolo8",
           "input_width": w, "input_height": h, "classes": [0]}
    return {
        "public": ({}, seq, scene, {"file": "det/nope.txt"}),
        "gt": ({}, seq, scene, None),
        "hog": ({}, None, scene, None),
        "dnn": (dnn, None, tiny_image, {**dnn, "model": str(tmp_path / "nope.onnx")}),
        "ultralytics": ({"weights": "WEIGHTS"}, None, scene, {"weights": str(tmp_path / "nope.pt")}),
    }


def _check(out: Detections) -> None:
    assert isinstance(out, Detections)
    assert out.tlwh.dtype == np.float32 and out.tlwh.ndim == 2 and out.tlwh.shape[1] == 4
    assert out.scores.dtype == np.float32 and out.scores.shape == (len(out),)
    assert np.all(out.tlwh[:, 2:] > 0)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name, detector_cases, fake_ultralytics):
    assert name in detector_cases, f"no contract case for detector {name!r}: add one"
    params, seq, scene, _ = detector_cases[name]
    params = {k: (str(fake_ultralytics) if v == "WEIGHTS" else v) for k, v in params.items()}
    det = DETECTORS.build(DetectorSection(name, params), sequence=seq)
    blank = np.zeros((360, 640, 3), np.uint8)
    total = 0
    for frame in (1, 10, 40):
        out = det.detect(blank if det.needs_image else None, frame)
        _check(out)
        if det.needs_image:
            assert len(out) == 0, "an image detector found something in a blank image"
        out = det.detect(scene if det.needs_image else None, frame)
        _check(out)
        total += len(out)
    assert total > 0
    tiny_region = blank[:100, :50]  # smaller than any detector window: still a legal, empty answer
    if det.needs_image:
        out = det.detect(tiny_region, 1)
        _check(out)
        assert len(out) == 0


@pytest.mark.parametrize("name", DETECTORS.names())
def test_missing_model_file_is_clear(name, detector_cases, fake_ultralytics, seq_copy):
    params, seq, _, missing = detector_cases[name]
    if name == "gt":  # its "model file" is the sequence's ground truth
        (seq_copy / "gt" / "gt.txt").unlink()
        with pytest.raises(UserError, match="needs gt/gt.txt"):
            DETECTORS.build(DetectorSection(name), sequence=open_sequence(seq_copy))
        return
    if missing is None:  # detectors that read no file must have no file parameter
        file_keys = [f.name for f in dataclasses.fields(DETECTORS.get(name).Params)
                     if f.name in ("file", "model", "weights", "config")]
        assert not file_keys
        return
    with pytest.raises(UserError, match="not found"):
        DETECTORS.build(DetectorSection(name, missing), sequence=seq)


def test_ultralytics_keeps_people_only(fake_ultralytics):
    det = DETECTORS.build(DetectorSection("ultralytics", {"weights": str(fake_ultralytics)}))
    out = det.detect(np.full((360, 640, 3), 9, np.uint8), 1)
    np.testing.assert_allclose(out.tlwh, [[100, 50, 40, 120]])
    assert out.extras["class_id"].tolist() == [0]


def test_ultralytics_missing_package_is_clear(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import fails as if not installed
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    with pytest.raises(UserError, match="needs the ultralytics package"):
        DETECTORS.build(DetectorSection("ultralytics", {"weights": str(weights)}))


def test_ultralytics_refuses_non_pt_weights():
    with pytest.raises(UserError, match="weights must be a .pt file"):
        DETECTORS.build(DetectorSection("ultralytics", {"weights": "model.onnx"}))


def test_hog_finds_drawn_people_where_they_are():
    scene = np.full((360, 640, 3), 200, np.uint8)
    _draw_person(scene, 160, 100, 150)
    _draw_person(scene, 420, 120, 170)
    out = DETECTORS.build(DetectorSection("hog")).detect(scene, 1)
    assert len(out) == 2
    centres = np.sort(out.tlwh[:, 0] + out.tlwh[:, 2] / 2)
    np.testing.assert_allclose(centres, [160, 420], atol=15)
    assert np.all(out.tlwh[:, 3] > 120) and np.all(out.tlwh[:, 3] < 220)


def test_public_missing_file_is_clear(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    with pytest.raises(UserError, match="detection file det/nope.txt not found"):
        DETECTORS.build(DetectorSection("public", {"file": "det/nope.txt"}), sequence=seq)


def test_public_score_threshold_and_nms(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    all_dets = DETECTORS.build(DetectorSection("public"), sequence=seq)
    strict = DETECTORS.build(DetectorSection("public", {"min_score": 0.6, "nms_iou": 0.3}), sequence=seq)
    n_all = sum(len(all_dets.detect(None, f)) for f in range(1, 41))
    n_strict = sum(len(strict.detect(None, f)) for f in range(1, 41))
    assert 0 < n_strict < n_all
    assert all((strict.detect(None, f).scores >= 0.6).all() for f in range(1, 41))


def test_oracle_noise_is_seeded_and_drops(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    clean = DETECTORS.build(DetectorSection("gt"), sequence=seq)
    noisy = DETECTORS.build(DetectorSection("gt", {"jitter": 0.1, "drop_rate": 0.5, "seed": 3}), sequence=seq)
    again = DETECTORS.build(DetectorSection("gt", {"jitter": 0.1, "drop_rate": 0.5, "seed": 3}), sequence=seq)
    n_clean = sum(len(clean.detect(None, f)) for f in range(1, 41))
    n_noisy = sum(len(noisy.detect(None, f)) for f in range(1, 41))
    assert n_noisy < n_clean
    assert np.array_equal(noisy.detect(None, 20).tlwh, again.detect(None, 20).tlwh)


def test_detector_cost_reports_each_size():
    from mot.studies.detector_speed import detector_cost

    costs = detector_cost("hog", {"upscale": 1.0}, sizes=((160, 128), (320, 240)), repeats=1)
    assert list(costs) == ["160x128", "320x240"]
    assert all(ms > 0 for ms in costs.values())
