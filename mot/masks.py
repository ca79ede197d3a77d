"""Per-track masks: pasting a predicted window into the frame, one owner per pixel, COCO RLE, and
the MOTS text format (``frame id class height width rle``).

A track's mask is kept as a :class:`PastedMask` (a bitmap clipped to the image with its top-left
corner) until its frame is written. MOTS allows one owner per pixel, so the masks of a frame are
composed before encoding: tracks are painted in the order of their boxes' bottom edges, the lowest
(nearest the camera, for a camera above the ground) last and on top. The same rule makes the
filled-box baseline (:func:`box_mask`) a valid MOTS file.

pycocotools does the run-length encoding; it is an optional dependency (the ``masks`` extra), so
:func:`require_pycocotools` turns its absence into a one-line error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError
from mot.io import StreamedFile

#: The MOTS class of a pedestrian.
PEDESTRIAN_CLASS = 2


def require_pycocotools():
    """The ``pycocotools.mask`` module, or a one-line UserError saying how to install it."""
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise UserError("masks need pycocotools: pip install pycocotools (or the package's 'masks' extra)") from None
    return coco_mask


@dataclass
class PastedMask:
    """A binary mask inside an image: ``bitmap`` (h, w) bool whose top-left pixel is (x0, y0)."""

    x0: int
    y0: int
    bitmap: np.ndarray

    @property
    def area(self) -> int:
        return int(self.bitmap.sum())


def paste(prob: np.ndarray, window_tlwh: np.ndarray, image_hw: tuple[int, int], threshold: float) -> PastedMask:
    """A predicted mask window put into the image and thresholded.

    Args:
        prob: (m, m) float32 probabilities over the window (pixel centres at ``(u + 0.5) side / m``).
        window_tlwh: (4,) float32 the window in 0-based image pixels; it may reach outside the image.
        image_hw: the image's (height, width).
        threshold: probabilities at or above it are the target.

    Returns:
        The mask clipped to the image (an empty bitmap when the window misses it).
    """
    h, w = image_hw
    x, y, ww, wh = (float(v) for v in window_tlwh)
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + ww)), w), min(int(np.ceil(y + wh)), h)
    if x1 <= x0 or y1 <= y0 or ww <= 0 or wh <= 0:
        return PastedMask(0, 0, np.zeros((0, 0), bool))
    m = prob.shape[0]
    sx, sy = m / ww, m / wh
    # Output pixel (c, r) has its centre at image (x0 + c, y0 + r); mask coordinate u = (X - x) m / w - 0.5 + 0.5.
    warp = np.array([[sx, 0, (x0 - x + 0.5) * sx - 0.5], [0, sy, (y0 - y + 0.5) * sy - 0.5]], np.float64)
    out = cv2.warpAffine(np.asarray(prob, np.float32), warp, (x1 - x0, y1 - y0),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return PastedMask(x0, y0, out >= threshold)


def box_mask(tlwh: np.ndarray, image_hw: tuple[int, int]) -> PastedMask:
    """A box filled (the baseline mask of a box), clipped to the image; pixels whose centre is inside."""
    h, w = image_hw
    x, y, bw, bh = (float(v) for v in tlwh)
    x0, y0 = min(max(int(np.ceil(x - 0.5)), 0), w), min(max(int(np.ceil(y - 0.5)), 0), h)
    x1, y1 = min(max(int(np.ceil(x + bw - 0.5)), 0), w), min(max(int(np.ceil(y + bh - 0.5)), 0), h)
    return PastedMask(x0, y0, np.ones((max(y1 - y0, 0), max(x1 - x0, 0)), bool))


def compose(masks: list[PastedMask], tlwh: np.ndarray, image_hw: tuple[int, int]) -> list[PastedMask]:
    """One owner per pixel: masks painted in the order of their boxes' bottom edges (lowest on top).

    Args:
        masks: N masks of one frame.
        tlwh: (N, 4) float32 their tracks' boxes (the order of painting).
        image_hw: the image's (height, width).

    Returns:
        N masks without overlaps (each cut to the pixels it still owns).
    """
    if len(masks) < 2:
        return list(masks)
    h, w = image_hw
    owner = np.full((h, w), -1, np.int32)
    order = np.argsort(np.asarray(tlwh, np.float32).reshape(-1, 4)[:, 1] + np.asarray(tlwh, np.float32).reshape(-1, 4)[:, 3],
                       kind="stable")
    for k in order:
        m = masks[k]
        bh, bw = m.bitmap.shape
        region = owner[m.y0:m.y0 + bh, m.x0:m.x0 + bw]
        region[m.bitmap] = k
    out = []
    for k, m in enumerate(masks):
        bh, bw = m.bitmap.shape
        out.append(PastedMask(m.x0, m.y0, owner[m.y0:m.y0 + bh, m.x0:m.x0 + bw] == k))
    return out


def run_lengths(mask: PastedMask, image_hw: tuple[int, int]) -> list[int]:
    """COCO's uncompressed RLE counts of a mask in the full image (column-major, background first),
    computed from the bitmap alone (the image-sized array is never made)."""
    h, w = image_hw
    bh, bw = mask.bitmap.shape
    if not mask.bitmap.any():
        return [h * w]
    # Column-major pixels of the bitmap, one background pixel after each column so that runs end
    # at column ends (unless the bitmap spans the whole height: then columns join, as in the image).
    cols = mask.bitmap.T.astype(np.int8)
    if bh < h:
        cols = np.concatenate([cols, np.zeros((bw, 1), np.int8)], axis=1)
    flat = cols.ravel()
    step = np.diff(np.concatenate([[0], flat, [0]]))
    starts, ends = np.nonzero(step == 1)[0], np.nonzero(step == -1)[0]
    stride = cols.shape[1]
    def to_image(i):
        c, r = np.divmod(i, stride)
        return (mask.x0 + c) * h + mask.y0 + r
    g0 = to_image(starts)
    g1 = to_image(ends - 1) + 1
    counts = np.empty(2 * len(g0) + 1, np.int64)
    counts[0] = g0[0]
    counts[1:-1:2] = g1 - g0
    counts[2:-1:2] = g0[1:] - g1[:-1]
    counts[-1] = h * w - g1[-1]
    return counts[:-1].tolist() if counts[-1] == 0 else counts.tolist()   # COCO ends on the last run


def encode_rle(mask: PastedMask, image_hw: tuple[int, int]) -> str:
    """COCO compressed RLE (the ``counts`` string) of a mask in an image of ``image_hw``."""
    coco = require_pycocotools()
    h, w = image_hw
    rle = coco.frPyObjects({"counts": run_lengths(mask, image_hw), "size": [h, w]}, h, w)
    counts = rle["counts"]
    return counts.decode("ascii") if isinstance(counts, bytes) else counts


def decode_rle(counts: str, image_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool from a COCO compressed RLE string."""
    coco = require_pycocotools()
    h, w = image_hw
    with warnings.catch_warnings():   # pycocotools 2.0.x and numpy 2: a DeprecationWarning per call
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco.decode({"size": [h, w], "counts": counts.encode("ascii")}).astype(bool)


def format_mots(frame: int, ids: np.ndarray, rles: list[str], image_hw: tuple[int, int]) -> str:
    """MOTS text lines of one frame: ``frame id class height width rle`` (ids in the given order)."""
    h, w = image_hw
    return "".join(f"{frame} {int(i)} {PEDESTRIAN_CLASS} {h} {w} {r}\n" for i, r in zip(ids, rles))


def frame_lines(frame: int, ids: np.ndarray, tlwh: np.ndarray, masks: list[PastedMask],
                image_hw: tuple[int, int]) -> str:
    """The MOTS lines of one frame: masks composed (one owner per pixel), empty ones left out,
    sorted by id."""
    masks = compose(masks, tlwh, image_hw)
    keep = [k for k in np.argsort(ids, kind="stable") if masks[k].bitmap.any()]
    return format_mots(frame, [ids[k] for k in keep], [encode_rle(masks[k], image_hw) for k in keep], image_hw)


class MaskWriter(StreamedFile):
    """Streams a MOTS mask file as frames become final (like :class:`mot.io.ResultWriter`): rows
    may come ``delay`` frames late; the file is written under a temporary name and renamed by
    :meth:`close`, so a failed run leaves nothing.

    Args:
        path: the ``<SEQ>.masks.txt`` file.
        delay: the most frames a row can come late.
        image_hw: the sequence's frame (height, width); None: taken from the first :meth:`add`.
    """

    def __init__(self, path: str | Path, delay: int = 0, image_hw: tuple[int, int] | None = None):
        require_pycocotools()
        super().__init__(path)
        self.image_hw = None if image_hw is None else (int(image_hw[0]), int(image_hw[1]))
        self.delay = int(delay)
        self._pending: dict[int, list] = {}

    def add(self, frames: np.ndarray, ids: np.ndarray, tlwh: np.ndarray, masks: list, frame: int,
            image_hw: tuple[int, int] | None = None) -> None:
        """Takes rows (masks None where a track has none) and writes the frames up to ``frame - delay``."""
        if self.image_hw is None and image_hw is not None:
            self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        for f, i, box, m in zip(np.asarray(frames).tolist(), np.asarray(ids).tolist(), tlwh, masks):
            if m is not None:
                self._pending.setdefault(int(f), []).append((i, np.asarray(box, np.float32), m))
        self._write_until(frame - self.delay)

    def _write_until(self, last: int | None) -> None:
        for f in sorted(k for k in self._pending if last is None or k <= last):
            rows = self._pending.pop(f)
            ids = np.array([r[0] for r in rows], np.int64)
            self._fh.write(frame_lines(f, ids, np.stack([r[1] for r in rows]), [r[2] for r in rows], self.image_hw))

    def _finish(self) -> None:
        self._write_until(None)


def read_mots(path: str | Path) -> dict[int, list[tuple[int, int, int, int, str]]]:
    """A MOTS text file: frame -> [(id, class, height, width, rle)].

    Raises:
        UserError: a line without six fields or with non-integer numbers (file and line named).
    """
    path = Path(path)
    out: dict[int, list] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 6:
                raise ValueError
            f, i, c, h, w = (int(p) for p in parts[:5])
        except ValueError:
            raise UserError(f"{path}:{n}: expected 'frame id class height width rle', got {line.strip()[:60]!r}") from None
        out.setdefault(f, []).append((i, c, h, w, parts[5]))
    return out
