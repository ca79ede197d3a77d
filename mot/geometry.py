"""Box geometry as pure vectorised functions. Box formats are named by suffix: tlwh, xyxy, cxcywh."""

from __future__ import annotations

import numpy as np


def tlwh_to_xyxy(tlwh: np.ndarray) -> np.ndarray:
    """(N, 4) tlwh -> (N, 4) xyxy, float32."""
    b = np.asarray(tlwh, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_tlwh(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) tlwh, float32."""
    b = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def tlwh_to_cxcywh(tlwh: np.ndarray) -> np.ndarray:
    """(N, 4) tlwh -> (N, 4) centre x, centre y, width, height, float32."""
    b = np.asarray(tlwh, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2] + b[:, 2:] / 2, b[:, 2:]], axis=1)


def cxcywh_to_tlwh(cxcywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) tlwh, float32."""
    b = np.asarray(cxcywh, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, 2:]], axis=1)


def intersection_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas.

    Args:
        a_xyxy: (N, 4) boxes.
        b_xyxy: (M, 4) boxes.

    Returns:
        (N, M) float64 intersection areas.
    """
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def area(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) float64 areas (0 for degenerate boxes)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union.

    Args:
        a_xyxy: (N, 4) boxes.
        b_xyxy: (M, 4) boxes.

    Returns:
        (N, M) float64 IoU in [0, 1]; 0 where the union is empty.
    """
    inter = intersection_matrix(a_xyxy, b_xyxy)
    union = area(a_xyxy)[:, None] + area(b_xyxy)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def iou_matrix_tlwh(a_tlwh: np.ndarray, b_tlwh: np.ndarray) -> np.ndarray:
    """Pairwise IoU of tlwh boxes: (N, 4), (M, 4) -> (N, M) float64."""
    return iou_matrix(tlwh_to_xyxy(a_tlwh), tlwh_to_xyxy(b_tlwh))


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        xyxy: (N, 4) boxes.
        scores: (N,) scores; higher is kept first.
        iou_threshold: a box overlapping a kept one by more than this is dropped.

    Returns:
        (K,) int64 indices of the kept boxes, best first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    ious = iou_matrix(xyxy, xyxy)
    keep = []
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou_threshold
    return np.asarray(keep, dtype=np.int64)
