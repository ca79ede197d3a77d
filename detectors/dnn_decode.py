"""Decoding of detection network outputs: the SSD, YOLO and YOLOX tensor layouts, as pure functions.

Every decoder returns boxes in the network input's pixels (before undoing the resize), so that the
detector maps them to the image in one place.
"""

from __future__ import annotations

import numpy as np

from mot.errors import UserError
from mot.geometry import cxcywh_to_tlwh, tlwh_to_xyxy

LAYOUTS = ("ssd", "yolo5", "yolo8", "yolox")


def decode(out: np.ndarray, layout: str, input_wh: tuple[int, int], normalized: bool | None,
           classes: list[int] | None, strides: tuple[int, ...] = (8, 16, 32)
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decodes one image's raw network output.

    Args:
        out: the output tensor, float. ``ssd``: (1, 1, N, 7), rows ``[image, class, score, x1, y1,
            x2, y2]``. ``yolo5``: (1, N, 5 + C), rows ``[cx, cy, w, h, objectness, C class scores]``.
            ``yolo8``: (1, 4 + C, N), columns ``[cx, cy, w, h, C class scores]`` (no objectness).
            ``yolox``: (1, N, 5 + C) as ``yolo5`` but not decoded: rows ``[x offset, y offset, log w,
            log h, objectness, C class scores]`` per grid cell (see :func:`yolox_grid_decode`).
        layout: ``ssd``, ``yolo5``, ``yolo8`` or ``yolox``.
        input_wh: the network input's (width, height) in pixels.
        normalized: whether coordinates are fractions of the input size; None takes the layout's
            convention (``ssd``: yes, YOLO: no).
        classes: class ids to keep (people); None keeps all.
        strides: ``yolox`` only: the grids' strides in input pixels, in the output's order.

    Returns:
        ``xyxy`` (K, 4) float32 in input pixels, ``scores`` (K,) float32, ``class_ids`` (K,) int64.

    Raises:
        UserError: the tensor's shape does not fit the layout.
    """
    out = np.asarray(out, dtype=np.float32)
    if layout == "ssd":
        xyxy, scores, class_ids = _ssd(out)
        norm = True if normalized is None else normalized
    elif layout in ("yolo5", "yolo8", "yolox"):
        if layout == "yolox":
            out, layout = yolox_grid_decode(out, input_wh, strides), "yolo5"
        xyxy, scores, class_ids = _yolo(out, layout, classes)
        norm = False if normalized is None else normalized
    else:
        raise UserError(f"dnn: unknown output layout {layout!r} (valid: {', '.join(LAYOUTS)})")
    if norm:
        xyxy = xyxy * np.array([*input_wh, *input_wh], np.float32)
    if classes is not None:
        keep = np.isin(class_ids, classes)
        xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
    return xyxy.astype(np.float32), scores.astype(np.float32), class_ids


def _shape_error(out: np.ndarray, layout: str, expected: str) -> UserError:
    return UserError(f"dnn: the model's output has shape {tuple(out.shape)}, which does not fit "
                     f"layout '{layout}' (expected {expected}); set detector.params.layout")


def _ssd(out: np.ndarray):
    if out.ndim != 4 or out.shape[:2] != (1, 1) or out.shape[3] != 7:
        raise _shape_error(out, "ssd", "[1, 1, N, 7]")
    rows = out[0, 0]
    rows = rows[rows[:, 2] > 0]  # SSD pads its fixed-size output with zero-score rows
    return rows[:, 3:7], rows[:, 2], rows[:, 1].astype(np.int64)


def _yolo(out: np.ndarray, layout: str, classes: list[int] | None):
    head = 5 if layout == "yolo5" else 4
    if out.ndim != 3 or out.shape[0] != 1:
        raise _shape_error(out, layout, "[1, N, 5 + classes]" if head == 5 else "[1, 4 + classes, N]")
    rows = out[0] if layout == "yolo5" else out[0].T
    if rows.shape[1] <= head:
        raise _shape_error(out, layout, "[1, N, 5 + classes]" if head == 5 else "[1, 4 + classes, N]")
    class_scores = rows[:, head:]
    if layout == "yolo5":
        class_scores = class_scores * rows[:, 4:5]
    ids = np.arange(class_scores.shape[1])
    if classes is not None:  # the best of the kept classes, so a person is not hidden by a likelier class
        allowed = np.isin(ids, classes)
        class_scores = np.where(allowed[None, :], class_scores, -np.inf)
    best = np.argmax(class_scores, axis=1) if len(rows) else np.zeros(0, np.int64)
    scores = class_scores[np.arange(len(rows)), best] if len(rows) else np.zeros(0, np.float32)
    finite = np.isfinite(scores)
    xyxy = tlwh_to_xyxy(cxcywh_to_tlwh(rows[finite, :4]))
    return xyxy, scores[finite], best[finite].astype(np.int64)


def yolox_grid_decode(out: np.ndarray, input_wh: tuple[int, int], strides: tuple[int, ...]) -> np.ndarray:
    """Turns YOLOX's raw grid output into ``yolo5`` rows (box centre and size in input pixels).

    YOLOX (Ge et al. 2021) predicts per cell of each stride's grid (cells row-major, the strides'
    grids one after the other): ``centre = (offset + cell index) * stride``,
    ``size = exp(log size) * stride``; objectness and class scores are already probabilities.

    Args:
        out: (1, N, 5 + C) float32, N the total cell count of the grids.
        input_wh: the network input's (width, height); each stride must divide both.
        strides: e.g. (8, 16, 32).

    Returns:
        (1, N, 5 + C) float32 rows ``[cx, cy, w, h, objectness, C class scores]``.

    Raises:
        UserError: N is not the grids' cell count (the input size or strides do not fit the model).
    """
    w, h = input_wh
    grids, cell_strides = [], []
    for s in strides:
        xs, ys = np.meshgrid(np.arange(w // s), np.arange(h // s))  # (h/s, w/s) each, row-major
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        cell_strides.append(np.full(xs.size, s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(cell_strides).astype(np.float32)[:, None]
    if out.ndim != 3 or out.shape[0] != 1 or out.shape[1] != len(grid) or out.shape[2] <= 5:
        raise _shape_error(out, "yolox", f"[1, {len(grid)}, 5 + classes] for a {w}x{h} input at strides "
                                         f"{', '.join(map(str, strides))}")
    rows = out[0].copy()
    rows[:, :2] = (rows[:, :2] + grid) * stride
    rows[:, 2:4] = np.exp(rows[:, 2:4]) * stride
    return rows[None]
