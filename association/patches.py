"""Detection patches: every box of a frame cropped, padded, resized and converted to LUV.

This module is the one place where BGR becomes LUV. The crop helper :func:`crop_resize` is shared
with the optical-flow crops (``association/flow.py``), so a patch and the flow under it cover the
same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Per-channel mean and spread of OpenCV's 8-bit LUV over people crops of the development data
#: (L scaled to 0..255; u, v offset so that grey sits at about 96 and 136), used to bring the
#: channels to about zero mean and unit spread (u and v vary far less than L).
LUV_MEAN = np.array([120.0, 98.0, 140.0], np.float32)
LUV_STD = np.array([64.0, 10.0, 12.0], np.float32)
#: Grey (BGR) used to pad the parts of a box outside the image: neutral in u and v.
PAD_BGR = (128, 128, 128)


@dataclass
class PatchParams:
    """Patch geometry (the paper used 121x53; 128x64 is the common person re-id size)."""

    height: int = 128
    width: int = 64

    def validate(self):
        if self.height < 8 or self.width < 8:
            return "patch height and width must be >= 8"
        return None


def crop_resize(array: np.ndarray, tlwh: np.ndarray, height: int, width: int, pad_value=0) -> np.ndarray:
    """Crops boxes out of an image-like array and resizes each to ``height x width``.

    The parts of a box outside the array are filled with ``pad_value``; a box wholly outside gives
    a patch of padding. Box coordinates are rounded outwards to whole pixels (at least 1x1). Boxes
    are shrunk with area averaging (no aliasing) and enlarged bilinearly.

    Args:
        array: (H, W, C) array (uint8 image or float32 flow).
        tlwh: (N, 4) float32 boxes, 0-based pixels in ``array``'s coordinates.
        height: output patch height.
        width: output patch width.
        pad_value: the fill value (a scalar or one value per channel).

    Returns:
        (N, height, width, C) array of ``array``'s dtype.
    """
    tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
    img_h, img_w = array.shape[:2]
    channels = array.shape[2]
    out = np.empty((len(tlwh), height, width, channels), array.dtype)
    for i, (x, y, w, h) in enumerate(tlwh):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        x1, y1 = max(int(np.ceil(x + w)), x0 + 1), max(int(np.ceil(y + h)), y0 + 1)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, img_w), min(y1, img_h)
        if cx1 <= cx0 or cy1 <= cy0:
            out[i] = pad_value
            continue
        region = array[cy0:cy1, cx0:cx1]
        if (x1 - x0) * (y1 - y0) > 4 * img_h * img_w:   # far larger than the image: never pad it whole
            out[i] = _paste_scaled(region, (x0, y0, x1, y1), (cx0, cy0, cx1, cy1), height, width, pad_value)
            continue
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            value = pad_value if np.isscalar(pad_value) else tuple(float(v) for v in pad_value)
            region = cv2.copyMakeBorder(region, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1,
                                        cv2.BORDER_CONSTANT, value=value)
        shrink = region.shape[0] > height and region.shape[1] > width
        resized = cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i] = resized.reshape(height, width, channels)
    return out


def _paste_scaled(region: np.ndarray, box, visible, height: int, width: int, pad_value) -> np.ndarray:
    """The patch of a box much larger than the image: the visible ``region`` resized to its share of
    the patch and pasted into padding (the same patch as padding the box first, without allocating it)."""
    (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) = box, visible
    patch = np.empty((height, width, region.shape[2]), region.dtype)
    patch[:] = pad_value
    sx, sy = width / (x1 - x0), height / (y1 - y0)
    px0, py0 = min(int(round((cx0 - x0) * sx)), width - 1), min(int(round((cy0 - y0) * sy)), height - 1)
    pw = min(max(1, int(round((cx1 - cx0) * sx))), width - px0)
    ph = min(max(1, int(round((cy1 - cy0) * sy))), height - py0)
    patch[py0:py0 + ph, px0:px0 + pw] = cv2.resize(region, (pw, ph), interpolation=cv2.INTER_AREA).reshape(
        ph, pw, region.shape[2])
    return patch


def bgr_to_luv_normalised(patches_bgr: np.ndarray) -> np.ndarray:
    """Converts BGR uint8 patches to normalised LUV, channels first.

    Args:
        patches_bgr: (N, H, W, 3) uint8 BGR.

    Returns:
        (N, 3, H, W) float32, each LUV channel shifted by ``LUV_MEAN`` and divided by ``LUV_STD``.
    """
    n, h, w, _ = patches_bgr.shape
    if n == 0:
        return np.zeros((0, 3, h, w), np.float32)
    # One conversion call for the whole batch: stack the patches as one tall image.
    luv = cv2.cvtColor(np.ascontiguousarray(patches_bgr).reshape(n * h, w, 3), cv2.COLOR_BGR2Luv)
    luv = (luv.reshape(n, h, w, 3).astype(np.float32) - LUV_MEAN) / LUV_STD
    return np.ascontiguousarray(luv.transpose(0, 3, 1, 2))


def crop_patches(image_bgr: np.ndarray, tlwh: np.ndarray, params: PatchParams | None = None) -> np.ndarray:
    """Crops every box of a frame into a normalised LUV patch.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame as OpenCV reads it.
        tlwh: (N, 4) float32 boxes, 0-based top-left x, y, width, height; boxes partly or wholly
            outside the frame are padded with neutral grey. N may be 0.
        params: patch size (default 128x64).

    Returns:
        (N, 3, height, width) float32 normalised LUV.
    """
    params = params or PatchParams()
    crops = crop_resize(image_bgr, tlwh, params.height, params.width, pad_value=PAD_BGR)
    return bgr_to_luv_normalised(crops)


def colour_histograms(image_bgr: np.ndarray, tlwh: np.ndarray, bins: int = 8,
                      params: PatchParams | None = None) -> np.ndarray:
    """Joint LUV colour histograms of the upper and lower half of every box.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame.
        tlwh: (N, 4) float32 boxes, 0-based pixels (padded with grey outside the frame).
        bins: bins per LUV channel.
        params: the patch each box is resized to before counting.

    Returns:
        (N, 2 * bins^3) float32 square roots of the normalised histograms over sqrt(2): each row has
        unit norm, so ``1 - a @ b`` is one minus the Bhattacharyya coefficient averaged over the halves.
    """
    params = params or PatchParams()
    crops = crop_resize(image_bgr, tlwh, params.height, params.width, pad_value=PAD_BGR)
    out = np.zeros((len(crops), 2, bins ** 3), np.float32)
    half = params.height // 2
    for i, crop in enumerate(crops):
        luv = cv2.cvtColor(crop, cv2.COLOR_BGR2Luv)
        for j, part in enumerate((luv[:half], luv[half:])):
            hist = cv2.calcHist([part], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).reshape(-1)
            out[i, j] = np.sqrt(hist / max(hist.sum(), 1.0))
    return out.reshape(len(crops), 2 * bins ** 3) / np.sqrt(2.0)
