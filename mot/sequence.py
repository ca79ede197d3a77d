"""Sequences: MOTChallenge image folders and video files, streamed frame by frame."""

from __future__ import annotations

import fnmatch
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from mot.errors import UserError
from mot.io import SeqInfo, read_seqinfo

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


@dataclass(frozen=True)
class Sequence:
    """One sequence: a MOTChallenge folder (``seqinfo.ini``, ``img1/``, ``gt/``, ``det/``) or a video.

    Attributes:
        name: sequence name (folder name, or the video's file name without extension).
        path: the sequence folder, or the video file.
        info: frame count, rate and image size.
    """

    name: str
    path: Path
    info: SeqInfo

    @property
    def is_video(self) -> bool:
        return self.path.is_file()

    @property
    def gt_path(self) -> Path | None:
        """``gt/gt.txt`` when the sequence has ground truth, else None."""
        p = self.path / "gt" / "gt.txt"
        return None if self.is_video or not p.is_file() else p

    def frame_path(self, frame: int) -> Path:
        return self.path / self.info.im_dir / f"{frame:06d}{self.info.im_ext}"

    def check_frames(self) -> None:
        """Checks that every frame the sequence announces is on disk, before any work is done."""
        if self.is_video:
            return
        img_dir = self.path / self.info.im_dir
        if not img_dir.is_dir():
            raise UserError(f"{img_dir}: image folder not found")
        present = {p.name for p in img_dir.iterdir()}
        for f in range(1, self.info.seq_length + 1):
            if self.frame_path(f).name not in present:
                raise UserError(f"{self.frame_path(f)}: frame {f} of {self.info.seq_length} is missing")

    def frames(self, read_images: bool = True, prefetch: int = 4) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yields ``(frame, image)`` for every frame in order, 1-based; images are BGR uint8.

        Images are read in a background thread, ``prefetch`` frames ahead, so reading overlaps compute;
        memory stays flat in the sequence length. With ``read_images=False`` the image is None.
        """
        if not read_images:
            for f in range(1, self.info.seq_length + 1):
                yield f, None
            return
        source = self._video_frames() if self.is_video else self._image_frames()
        yield from _prefetched(source, prefetch)

    def _image_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for f in range(1, self.info.seq_length + 1):
            path = self.frame_path(f)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"{path}: cannot read image (missing or corrupt)")
            yield f, image

    def _video_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            f = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                f += 1
                yield f, image
            if f == 0:
                raise UserError(f"{self.path}: video has no readable frames")
        finally:
            cap.release()


_END = object()


def _prefetched(source: Iterator, depth: int) -> Iterator:
    """Runs ``source`` in a daemon thread, ``depth`` items ahead; re-raises its exceptions here."""
    if depth <= 0:
        yield from source
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while True:
            try:
                # A timed wait, not a blocking one: Ctrl-C (SIGINT) may be delivered to the reader
                # thread (blocked reading a frame), and a main thread asleep on the queue's lock
                # would never run the handler; waking every 0.1 s it raises within that time.
                item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def open_video(path: Path) -> Sequence:
    """A video file as a sequence with no ground truth."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UserError(f"{path}: cannot open video")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if count <= 0:
        raise UserError(f"{path}: video reports no frames")
    info = SeqInfo(name=path.stem, seq_length=count, frame_rate=fps, im_width=width, im_height=height)
    return Sequence(path.stem, path, info)


def open_folder(path: Path) -> Sequence:
    """A MOTChallenge sequence folder."""
    info = read_seqinfo(path / "seqinfo.ini")
    return Sequence(path.name, path, info)


def _looks_like_sequence(path: Path) -> bool:
    return any((path / p).exists() for p in ("seqinfo.ini", "img1", "gt", "det"))


def discover(data: str | Path | list, names: list[str] | None = None) -> list[Path]:
    """Finds the sequences under a data root, or several, without opening them.

    ``data`` may be a video file, one sequence folder, a folder of sequences (and videos), or a MOT17
    download with ``train/`` and ``test/``; or a list of those, whose sequences are pooled.
    ``names`` filters by exact name or shell pattern (over the pool).

    Returns:
        Sequence paths (folders or video files), sorted within each root.

    Raises:
        UserError: a root does not exist or holds no sequence, or no sequence matches ``names``.
    """
    if isinstance(data, (list, tuple)):
        found = list(dict.fromkeys(p for root in data for p in discover(root)))   # in the roots' order
        return _matching(found, names, ", ".join(str(root) for root in data))
    root = Path(data)
    if not root.exists():
        raise UserError(f"{root}: data path not found")
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTS:
            raise UserError(f"{root}: not a sequence folder or a video ({', '.join(VIDEO_EXTS)})")
        found = [root]
    elif _looks_like_sequence(root):
        found = [root]
    else:
        parents = [root] + [root / s for s in ("train", "test") if (root / s).is_dir()]
        found = sorted({p for parent in parents for p in parent.iterdir()
                        if (p.is_dir() and _looks_like_sequence(p)) or
                        (p.is_file() and p.suffix.lower() in VIDEO_EXTS)})
    if not found:
        raise UserError(f"{root}: no sequences found (expected folders with seqinfo.ini, or videos)")
    return _matching(found, names, root)


def _matching(found: list[Path], names: list[str] | None, where) -> list[Path]:
    """The sequences of ``found`` named (exactly or by shell pattern) in ``names``; all without it."""
    if not names:
        return found
    stem = {p: (p.stem if p.is_file() else p.name) for p in found}
    chosen = [p for p in found if any(n == stem[p] or fnmatch.fnmatch(stem[p], n) for n in names)]
    if not chosen:
        raise UserError(f"{where}: no sequence matches --seqs {' '.join(names)} "
                        f"(found: {', '.join(sorted(stem.values()))})")
    return chosen


def open_sequence(path: Path) -> Sequence:
    """Opens a path found by :func:`discover`."""
    return open_video(path) if path.is_file() else open_folder(path)
