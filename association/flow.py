"""Dense optical flow from frame t-1 to t, computed once per frame, and its crops under each box."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from association.patches import PatchParams, crop_resize

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
#: Flow crops are divided by the box size and multiplied by this, so that a person walking a
#: tenth of their width per frame reads as about 1.
FLOW_GAIN = 10.0


@dataclass
class FlowParams:
    """How the flow is computed.

    ``downscale`` shrinks both frames before the flow (0.5 makes 1080p affordable on a CPU);
    ``dis_preset`` trades DIS speed for accuracy; ``method`` picks DIS (default) or Farneback.
    """

    method: str = "dis"          # dis | farneback
    downscale: float = 0.5
    dis_preset: str = "fast"     # ultrafast | fast | medium

    def validate(self):
        if self.method not in ("dis", "farneback"):
            return f"flow method must be dis or farneback, got {self.method!r}"
        if not 0.05 <= self.downscale <= 1.0:
            return "flow downscale must be in [0.05, 1]"
        if self.dis_preset not in _DIS_PRESETS:
            return f"dis_preset must be one of {', '.join(_DIS_PRESETS)}, got {self.dis_preset!r}"
        return None


def flow_size(image_shape: tuple, params: FlowParams) -> tuple[int, int]:
    """(h, w) of the flow field for a frame of ``image_shape`` (H, W, ...)."""
    return (max(int(round(image_shape[0] * params.downscale)), 1),
            max(int(round(image_shape[1] * params.downscale)), 1))


class FlowComputer:
    """Computes the flow of one frame pair; holds only the OpenCV solver, no frame state."""

    def __init__(self, params: FlowParams | None = None):
        self.params = params or FlowParams()
        problem = self.params.validate()
        if problem:
            raise ValueError(problem)
        self._dis = (cv2.DISOpticalFlow_create(_DIS_PRESETS[self.params.dis_preset])
                     if self.params.method == "dis" else None)

    def _grey(self, image_bgr: np.ndarray) -> np.ndarray:
        h, w = flow_size(image_bgr.shape, self.params)
        if (h, w) != image_bgr.shape[:2]:
            image_bgr = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA)
        return image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)

    def compute(self, prev_bgr: np.ndarray | None, cur_bgr: np.ndarray) -> np.ndarray:
        """Flow from ``prev_bgr`` to ``cur_bgr``.

        Args:
            prev_bgr: (H, W, 3) uint8 BGR previous frame, or None (first frame, missing frame).
            cur_bgr: (H, W, 3) uint8 BGR current frame.

        Returns:
            (h, w, 2) float32 flow at the reduced resolution ``flow_size(cur_bgr.shape)``, in
            full-frame pixels per frame (x then y). Zeros when ``prev_bgr`` is None or of another size.
        """
        h, w = flow_size(cur_bgr.shape, self.params)
        if prev_bgr is None or prev_bgr.shape[:2] != cur_bgr.shape[:2]:
            return np.zeros((h, w, 2), np.float32)
        prev, cur = self._grey(prev_bgr), self._grey(cur_bgr)
        if self._dis is not None:
            flow = self._dis.calc(prev, cur, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return (flow / self.params.downscale).astype(np.float32)


def crop_flow(flow: np.ndarray, tlwh: np.ndarray, params: FlowParams | None = None,
              patch: PatchParams | None = None) -> np.ndarray:
    """Crops the flow under each box, resampled to the patch size, normalised by the box size.

    Args:
        flow: (h, w, 2) float32 from :meth:`FlowComputer.compute` (reduced resolution, full-frame
            pixels per frame).
        tlwh: (N, 4) float32 boxes in full-frame 0-based pixels. Parts outside the frame read 0.
        params: the flow params the field was computed with (for its downscale).
        patch: the patch size (default 128x64).

    Returns:
        (N, 2, height, width) float32: x flow divided by box width, y flow by box height, times
        ``FLOW_GAIN``.
    """
    params = params or FlowParams()
    patch = patch or PatchParams()
    tlwh = np.asarray(tlwh, np.float32).reshape(-1, 4)
    crops = crop_resize(flow, tlwh * params.downscale, patch.height, patch.width, pad_value=0.0)
    size = np.maximum(tlwh[:, 2:4], 1.0)[:, None, None, :]
    crops = crops * (FLOW_GAIN / size)
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
