"""Constant-velocity Kalman filter on (centre x, centre y, aspect w/h, height), as in SORT/DeepSORT.

Noise scales with the box height, so near and far people are filtered alike.
"""

from __future__ import annotations

import numpy as np

from mot.geometry import cxcywh_to_tlwh, tlwh_to_cxcywh

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160


def _to_xyah(tlwh) -> np.ndarray:
    c = tlwh_to_cxcywh(tlwh)[0].astype(np.float64)
    return np.array([c[0], c[1], c[2] / max(c[3], 1e-6), c[3]])


def _to_tlwh(xyah) -> np.ndarray:
    x, y, a, h = xyah
    return cxcywh_to_tlwh(np.array([x, y, a * h, h]))[0]


class KalmanBox:
    """The filter state of one track.

    Attributes:
        mean: (8,) float64 state (x, y, a, h and their velocities per frame).
        cov: (8, 8) float64 covariance.
    """

    def __init__(self, tlwh: np.ndarray):
        z = _to_xyah(tlwh)
        self.mean = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = np.array([2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h,
                        10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h])
        self.cov = np.diag(std ** 2)

    @staticmethod
    def _transition(dt: float) -> np.ndarray:
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        return f

    def predict_box(self, dt: float) -> np.ndarray:
        """(4,) float32 tlwh expected ``dt`` frames after the last update (state unchanged)."""
        return _to_tlwh(self.mean[:4] + dt * self.mean[4:]).astype(np.float32)

    def update(self, tlwh: np.ndarray, dt: float) -> None:
        """Advances ``dt`` frames and corrects with the measured box."""
        h = self.mean[3]
        f = self._transition(dt)
        q = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-2, _STD_POSITION * h,
                              _STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5, _STD_VELOCITY * h]) ** 2) * max(dt, 1)
        mean = f @ self.mean
        cov = f @ self.cov @ f.T + q
        r = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]) ** 2)
        s = cov[:4, :4] + r
        gain = np.linalg.solve(s, cov[:4, :]).T             # (8, 4)
        self.mean = mean + gain @ (_to_xyah(tlwh) - mean[:4])
        self.cov = cov - gain @ s @ gain.T

    def warp(self, warp: np.ndarray) -> None:
        """Moves the state by a camera motion ``warp`` ((2, 3) similarity from the last frame's pixels
        to this frame's): centre and its velocity by the linear part (plus the shift), height and its
        velocity by the scale; the covariance alike."""
        a = warp[:, :2]
        scale = np.sqrt(abs(np.linalg.det(a)))
        t = np.eye(8)
        t[:2, :2] = a
        t[4:6, 4:6] = a
        t[3, 3] = t[7, 7] = scale
        self.mean = t @ self.mean
        self.mean[:2] += warp[:, 2]
        self.cov = t @ self.cov @ t.T
