"""Drawing tracks on frames and writing them as a video: boxes, ids in stable colours, short trails.

Videos are written to a temporary name in the target folder and renamed when complete, so a reader
never sees half a video.
"""

from __future__ import annotations

import colorsys
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError
from mot.io import TrackResults
from mot.sequence import VIDEO_EXTS, Sequence

CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


@dataclass
class VideoStyle:
    """How tracks are drawn."""

    trail_frames: int = 20       # a trail shows the box's bottom centre over this many past frames
    thickness: int = 2           # box line width in pixels
    font_scale: float = 0.5
    mask_alpha: float = 0.45     # how strongly a track's mask is shaded in its colour
    fps: float | None = None     # None: the sequence's frame rate


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A BGR colour that depends only on the id (golden-ratio hue steps keep neighbours apart)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def video_path_for(target: str | Path, sequence: str, several: bool) -> Path:
    """Where ``--save-video TARGET`` puts the video of one sequence.

    A target with a video extension is a file: used as it is for a single sequence, and as
    ``<stem>_<SEQ><ext>`` beside it when several sequences run. Any other target is a folder that
    receives ``<SEQ>.mp4``.
    """
    target = Path(target)
    if target.suffix.lower() in VIDEO_EXTS:
        return target.with_name(f"{target.stem}_{sequence}{target.suffix}") if several else target
    return target / f"{sequence}.mp4"


def draw_tracks(image: np.ndarray, ids: np.ndarray, tlwh: np.ndarray, trails: dict[int, deque],
                style: VideoStyle) -> np.ndarray:
    """Draws one frame's tracks on a copy of the image.

    Args:
        image: (H, W, 3) BGR uint8.
        ids: (N,) int track ids.
        tlwh: (N, 4) float32 boxes, 0-based pixels.
        trails: id -> recent (x, y) bottom-centre points, oldest first (drawn as given).
        style: line and text sizes.

    Returns:
        (H, W, 3) BGR uint8, the annotated copy.
    """
    out = image.copy()
    for track_id, points in trails.items():
        if len(points) > 1:
            pts = np.round(np.asarray(points, np.float32)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, track_colour(track_id), max(1, style.thickness - 1), cv2.LINE_AA)
    for track_id, (x, y, w, h) in zip(ids.tolist(), tlwh.tolist()):
        colour = track_colour(track_id)
        p1, p2 = (round(x), round(y)), (round(x + w), round(y + h))
        cv2.rectangle(out, p1, p2, colour, style.thickness)
        label = str(track_id)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, style.font_scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(out, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(out, label, (p1[0] + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, style.font_scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return out


def shade_masks(image: np.ndarray, masks: list, alpha: float) -> np.ndarray:
    """Shades masks in their tracks' colours, in place.

    Args:
        image: (H, W, 3) BGR uint8.
        masks: ``(track id, (H, W) bool)`` pairs.
        alpha: the colour's weight over the image.
    """
    for track_id, mask in masks:
        colour = np.array(track_colour(track_id), np.float32)
        image[mask] = (image[mask] * (1 - alpha) + colour * alpha).astype(np.uint8)
    return image


def render_video(seq: Sequence, results: TrackResults, path: str | Path, style: VideoStyle | None = None,
                 prefetch: int = 4, masks: str | Path | None = None) -> Path:
    """Writes the sequence's frames with its tracks drawn on them, atomically.

    Args:
        seq: the sequence whose frames are read again (streamed, memory flat in its length).
        results: its tracker output (0-based tlwh).
        path: the video file; the extension picks the codec (.mp4: mp4v, .avi: MJPG).
        style: drawing settings (defaults if None).
        prefetch: frames read ahead.
        masks: a MOTS mask file of the same run (``<SEQ>.masks.txt``), shaded in the tracks'
            colours under their boxes; None: boxes only.

    Returns:
        The written path.

    Raises:
        UserError: the extension is not a video one, or OpenCV cannot write there.
    """
    style = style or VideoStyle()
    path = Path(path)
    codec = CODECS.get(path.suffix.lower())
    if codec is None:
        raise UserError(f"{path}: --save-video needs a {', '.join(CODECS)} file name or a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    fps = style.fps or seq.info.frame_rate or 25.0
    index = results.index()
    trails: dict[int, deque] = {}
    last_seen: dict[int, int] = {}
    writer = None
    mots = None
    if masks is not None:
        from mot.masks import decode_rle, read_mots
        mots = read_mots(masks)
    try:
        for frame, image in seq.frames(read_images=True, prefetch=prefetch):
            if mots is not None:
                image = shade_masks(image.copy(), [(i, decode_rle(rle, (h, w))) for i, _, h, w, rle in mots.get(frame, [])],
                                    style.mask_alpha)
            if writer is None:
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), float(fps),
                                         (image.shape[1], image.shape[0]))
                if not writer.isOpened():
                    raise UserError(f"{path}: OpenCV cannot write a {codec} video here")
            rows = index.rows(frame)
            ids, tlwh = results.ids[rows], results.tlwh[rows]
            for track_id, (x, y, w, h) in zip(ids.tolist(), tlwh.tolist()):
                trails.setdefault(track_id, deque(maxlen=max(style.trail_frames, 1))).append((x + w / 2, y + h))
                last_seen[track_id] = frame
            for track_id in [t for t, f in last_seen.items() if frame - f >= style.trail_frames]:
                trails.pop(track_id, None)
                last_seen.pop(track_id)
            writer.write(draw_tracks(image, ids, tlwh, trails, style))
        if writer is None:
            raise UserError(f"{seq.name}: no frames to write to {path}")
        writer.release()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return path
