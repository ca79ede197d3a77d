"""The ``dnn`` detector end to end on real ONNX models the tests build and export (tests/tiny_detector.py)."""

import numpy as np
import pytest

from detectors import DETECTORS
from detectors.dnn_decode import decode
from mot.config import DetectorSection
from mot.errors import UserError
from mot.geometry import xyxy_to_tlwh
import tiny_detector as tiny


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """layout -> path of the exported tiny ONNX model."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {layout: tiny.export(layout, root / f"tiny_{layout}.onnx") for layout in ("ssd", "yolo5", "yolo8")}


def _build(model, layout, **extra):
    w, h = tiny.INPUT_WH
    params = {"model": str(model), "layout": layout, "input_width": w, "input_height": h, "min_score": 0.5,
              "nms_iou": 0.45, **extra}
    return DETECTORS.build(DetectorSection("dnn", params))


def _stretch(image_wh):
    sx, sy = image_wh[0] / tiny.INPUT_WH[0], image_wh[1] / tiny.INPUT_WH[1]
    return lambda xyxy: xyxy * np.array([sx, sy, sx, sy], np.float32)


@pytest.mark.parametrize("layout, person", [("ssd", 1), ("yolo5", 0), ("yolo8", 0)])
def test_decodes_what_the_model_was_built_to_output(tiny_models, layout, person):
    image_wh = (128, 96)
    to_image = _stretch(image_wh)
    det = _build(tiny_models[layout], layout, classes=[person])
    image = tiny.paint(image_wh, [0, 1, 2], to_image)
    out = det.detect(image, 1)
    # anchors 0 and 2 are people; anchor 1 is another class and is filtered out
    expected = xyxy_to_tlwh(to_image(tiny.ANCHORS_XYXY[[0, 2]]))
    order = np.argsort(out.tlwh[:, 0])
    assert out.tlwh.dtype == np.float32
    np.testing.assert_allclose(out.tlwh[order], expected, atol=1e-3)
    assert np.all(out.scores > 0.9)
    assert out.extras["class_id"].tolist() == [person, person]

    all_classes = _build(tiny_models[layout], layout, classes=None).detect(image, 1)
    assert len(all_classes) == 3
    only_first = det.detect(tiny.paint(image_wh, [0], to_image), 1)
    np.testing.assert_allclose(only_first.tlwh, expected[:1], atol=1e-3)


def test_blank_image_gives_no_detections(tiny_models):
    for layout in ("ssd", "yolo5", "yolo8"):
        out = _build(tiny_models[layout], layout).detect(np.zeros((96, 128, 3), np.uint8), 1)
        assert len(out) == 0 and out.tlwh.shape == (0, 4) and out.tlwh.dtype == np.float32


def test_letterbox_maps_boxes_back(tiny_models):
    image_wh = (128, 64)  # 2:1 into 64x64: scaled by 0.5, 16 px border above and below
    to_image = lambda xyxy: (xyxy - np.array([0, 16, 0, 16], np.float32)) / 0.5  # noqa: E731
    det = _build(tiny_models["yolo8"], "yolo8", resize="letterbox", classes=[0])
    out = det.detect(tiny.paint(image_wh, [2], to_image), 1)
    np.testing.assert_allclose(out.tlwh, xyxy_to_tlwh(to_image(tiny.ANCHORS_XYXY[[2]])), atol=1e-3)


def test_wrong_layout_is_a_clear_error(tiny_models):
    det = _build(tiny_models["ssd"], "yolo8")
    with pytest.raises(UserError, match=r"output has shape \(1, 1, 3, 7\).*layout 'yolo8'"):
        det.detect(np.zeros((96, 128, 3), np.uint8), 1)


def test_unreadable_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="dnn: OpenCV cannot read"):
        _build(bad, "ssd")


def test_config_requires_a_model():
    with pytest.raises(UserError, match="model is required"):
        DETECTORS.build(DetectorSection("dnn", {}))


def test_decode_by_hand():
    # yolo5 rows: objectness times class score, best kept class wins, pixels unless normalized
    out = np.array([[[10, 20, 4, 8, 0.5, 0.2, 0.9], [30, 30, 10, 10, 1.0, 0.7, 0.1]]], np.float32)
    xyxy, scores, ids = decode(out, "yolo5", (64, 64), None, [0])
    np.testing.assert_allclose(xyxy, [[8, 16, 12, 24], [25, 25, 35, 35]])
    np.testing.assert_allclose(scores, [0.1, 0.7], rtol=1e-6)
    assert ids.tolist() == [0, 0]
    xyxy, scores, ids = decode(out, "yolo5", (64, 64), None, None)
    np.testing.assert_allclose(scores, [0.45, 0.7], rtol=1e-6)
    assert ids.tolist() == [1, 0]
    empty = decode(np.zeros((1, 0, 7), np.float32), "yolo5", (64, 64), None, [0])
    assert empty[0].shape == (0, 4)
