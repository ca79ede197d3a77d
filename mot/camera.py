"""Camera motion compensation: the global motion between consecutive frames, as in BoT-SORT's GMC.

A moving camera shifts every person in the image at once, which a constant-velocity prediction does
not expect. :class:`CameraMotion` estimates a similarity transform (rotation, uniform scale,
translation) from corners of the background followed by sparse optical flow (Lucas-Kanade) and
RANSAC; the tracker moves every track's state by it before matching. A motion under a pixel is
taken for none, so on a static camera the tracker runs exactly as without compensation.
"""

from __future__ import annotations

import cv2
import numpy as np

from mot.geometry import cxcywh_to_tlwh, tlwh_to_cxcywh

IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


class CameraMotion:
    """Estimates the motion of the image between consecutive frames.

    Args:
        max_side: frames are shrunk to at most this many pixels on their longer side first.
        max_corners: corners followed per frame.
        min_inliers: fewer RANSAC inliers than this gives the identity (no trustworthy estimate).
        min_motion: a motion that moves no corner of the frame this many pixels gives the identity.
            Static cameras measure 0.1-0.6 px here (noise and jitter), moving ones 5-30 px per frame;
            passing on noise would only perturb borderline links.
    """

    def __init__(self, max_side: int = 640, max_corners: int = 400, min_inliers: int = 20, min_motion: float = 1.0):
        self.max_side = max_side
        self.max_corners = max_corners
        self.min_inliers = min_inliers
        self.min_motion = min_motion
        self._prev: np.ndarray | None = None
        self._prev_points: np.ndarray | None = None

    def estimate(self, image_bgr: np.ndarray, people_tlwh: np.ndarray | None = None) -> np.ndarray:
        """(2, 3) float64 affine map from the previous frame's pixels to this frame's.

        Args:
            image_bgr: this frame.
            people_tlwh: (N, 4) boxes of this frame's detections: no corners are taken on people, who
                move on their own; the corners found here are followed into the next frame.

        The first frame, and a frame whose size differs from the last one's, give the identity.
        """
        h, w = image_bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)),
                              interpolation=cv2.INTER_AREA)
        warp = IDENTITY.copy()
        if self._prev is not None and self._prev.shape == gray.shape and self._prev_points is not None:
            warp = self._follow(gray, scale)
            corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
            if np.abs(corners @ warp[:, :2].T + warp[:, 2] - corners).max() < self.min_motion:
                warp = IDENTITY.copy()
        mask = np.full(gray.shape, 255, np.uint8)
        for x, y, bw, bh in (np.asarray(people_tlwh, np.float64) * scale if people_tlwh is not None else []):
            mask[max(int(y), 0):max(int(y + bh) + 1, 0), max(int(x), 0):max(int(x + bw) + 1, 0)] = 0
        self._prev_points = cv2.goodFeaturesToTrack(gray, self.max_corners, 0.01, 8, mask=mask, blockSize=3)
        self._prev = gray
        return warp

    def _follow(self, gray: np.ndarray, scale: float) -> np.ndarray:
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(self._prev, gray, self._prev_points, None,
                                                  winSize=(21, 21), maxLevel=3)
        ok = status.ravel() == 1
        if ok.sum() < self.min_inliers:
            return IDENTITY.copy()
        src, dst = self._prev_points[ok].reshape(-1, 2), nxt[ok].reshape(-1, 2)
        warp, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if warp is None or inliers is None or int(inliers.sum()) < self.min_inliers:
            return IDENTITY.copy()
        warp = warp.astype(np.float64)
        warp[:, 2] /= scale          # translation back to full-resolution pixels
        return warp


def warp_boxes(warp: np.ndarray, tlwh: np.ndarray) -> np.ndarray:
    """(N, 4) float32 boxes moved by ``warp``: centres mapped, sizes times its scale."""
    c = tlwh_to_cxcywh(np.asarray(tlwh, np.float32).reshape(-1, 4)).astype(np.float64)
    a = warp[:, :2]
    c[:, :2] = c[:, :2] @ a.T + warp[:, 2]
    c[:, 2:] *= np.sqrt(abs(np.linalg.det(a)))
    return cxcywh_to_tlwh(c).astype(np.float32)


def is_identity(warp: np.ndarray) -> bool:
    return bool(np.array_equal(warp, IDENTITY))
