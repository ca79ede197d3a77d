import numpy as np
import pytest

from mot.geometry import (cxcywh_to_tlwh, iou_matrix, iou_matrix_tlwh, nms, tlwh_to_cxcywh, tlwh_to_xyxy,
                          xyxy_to_tlwh)


def test_conversions_round_trip():
    tlwh = np.array([[10, 20, 30, 40], [0, 0, 1, 2]], np.float32)
    assert np.allclose(tlwh_to_xyxy(tlwh), [[10, 20, 40, 60], [0, 0, 1, 2]])
    assert np.allclose(tlwh_to_cxcywh(tlwh), [[25, 40, 30, 40], [0.5, 1, 1, 2]])
    assert np.allclose(xyxy_to_tlwh(tlwh_to_xyxy(tlwh)), tlwh)
    assert np.allclose(cxcywh_to_tlwh(tlwh_to_cxcywh(tlwh)), tlwh)
    assert tlwh_to_xyxy(tlwh).dtype == np.float32


def test_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    # Overlap 5x10 = 50; union 100 + 100 - 50 = 150.
    assert iou_matrix(a, b) == pytest.approx(np.array([[50 / 150, 0.0, 1.0]]))
    assert iou_matrix_tlwh([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0, 0] == pytest.approx(1 / 3)


def test_iou_empty_and_degenerate():
    assert iou_matrix(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert iou_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keep = nms(boxes, np.array([0.5, 0.9, 0.3]), 0.5)
    assert keep.tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
