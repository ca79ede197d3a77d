"""MOTChallenge file formats. Files are 1-based on disk; everything inside is 0-based.

This module is the only place that converts between the two.
"""

from __future__ import annotations

import configparser
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mot.errors import UserError
from mot.geometry import tlwh_to_xyxy

#: MOT16/17/20 ground-truth classes (column 8); 1 is pedestrian.
PEDESTRIAN = 1
#: Classes whose matched tracker boxes the MOTChallenge protocol removes before scoring.
DISTRACTOR_CLASSES = (2, 7, 8, 12)


@dataclass(frozen=True)
class SeqInfo:
    """The contents of a ``seqinfo.ini`` (or what a video tells of itself)."""

    name: str
    seq_length: int
    frame_rate: float = 30.0
    im_dir: str = "img1"
    im_ext: str = ".jpg"
    im_width: int | None = None
    im_height: int | None = None


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Reads a MOTChallenge ``seqinfo.ini``.

    Raises:
        UserError: the file is missing, unreadable or lacks ``seqLength``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: seqinfo.ini not found")
    parser = configparser.ConfigParser(interpolation=None)  # a '%' in a value is text, not a reference
    try:
        text = path.read_text()
        parser.read_string(text, source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read seqinfo.ini ({type(exc).__name__})") from None
    except configparser.Error as exc:
        raise UserError(f"{path}: not a valid seqinfo.ini ({_ini_problem(exc, text)})") from None
    if "Sequence" not in parser:
        raise UserError(f"{path}: not a valid seqinfo.ini (no [Sequence] section)")
    sec = parser["Sequence"]

    def get(key, conv, default=None):
        if key not in sec:
            if default is None and key == "seqLength":
                raise UserError(f"{path}: seqinfo.ini has no seqLength")
            return default
        try:
            return conv(sec[key])
        except ValueError:
            raise UserError(f"{path}: seqinfo.ini {key}={sec[key]!r} is not a number") from None

    length = get("seqLength", int)
    if length < 0:
        raise UserError(f"{path}: seqinfo.ini seqLength={length} is negative")
    rate = get("frameRate", float, 30.0)
    if not (math.isfinite(rate) and rate > 0):   # the tracker's time features divide by it
        raise UserError(f"{path}: seqinfo.ini frameRate={sec['frameRate']!r} is not a positive number")
    size = {key: get(key, int, None) for key in ("imWidth", "imHeight")}
    for key, value in size.items():
        if value is not None and value <= 0:
            raise UserError(f"{path}: seqinfo.ini {key}={value} is not positive")
    return SeqInfo(
        name=sec.get("name", path.parent.name),
        seq_length=length,
        frame_rate=rate,
        im_dir=sec.get("imDir", "img1"),
        im_ext=sec.get("imExt", ".jpg"),
        im_width=size["imWidth"],
        im_height=size["imHeight"],
    )


def _ini_problem(exc: configparser.Error, text: str) -> str:
    """What is wrong with an ini file, in a few words (configparser's own messages span lines)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: no [Sequence] section header before it"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: key {exc.option!r} given twice in [{exc.section}]"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] given twice"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        lineno = exc.errors[0][0]
        # configparser counts lines at "\n" only; str.splitlines would also split at \x0c, \x1c ...
        return f"line {lineno}: not a key=value line: {text.split(chr(10))[lineno - 1].strip()[:40]!r}"
    return type(exc).__name__


def _check_unique_ids(path: Path, frames: np.ndarray, ids: np.ndarray, what: str) -> None:
    """One id twice in one frame is an invalid file (TrackEval refuses it too); names the first such row."""
    order = np.lexsort((ids, frames))
    f, i = frames[order], ids[order]
    dup = np.flatnonzero((f[1:] == f[:-1]) & (i[1:] == i[:-1]))
    if dup.size:
        row = int(order[dup[0] + 1])
        raise UserError(f"{path}: row {row + 1}: {what} id {i[dup[0]]} appears twice in frame {f[dup[0]]}")


def _read_table(path: Path, min_cols: int, what: str) -> np.ndarray:
    """Reads a comma-separated numeric table, checking every line.

    Returns:
        (N, C) float64 array, C the smallest column count found (at least ``min_cols``).
    """
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    rows = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read {what} file ({exc.__class__.__name__})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in line.replace(",", " ").split()]
        if len(parts) < min_cols:
            raise UserError(f"{path}:{lineno}: expected at least {min_cols} comma-separated numbers, "
                            f"got {len(parts)}: {line[:60]!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError(f"{path}:{lineno}: not a number in {line[:60]!r}") from None
        if not all(np.isfinite(values)):
            raise UserError(f"{path}:{lineno}: NaN or infinite value in {line[:60]!r}")
        rows.append(values)
    if not rows:
        return np.zeros((0, min_cols))
    ncols = min(len(r) for r in rows)
    table = np.array([r[:ncols] for r in rows], dtype=np.float64)
    # Boxes, scores and visibility are kept as float32: a larger value would become infinite.
    bad = np.flatnonzero((np.abs(table) > _FLOAT32_MAX).any(axis=1))
    if bad.size:
        raise UserError(f"{path}: row {bad[0] + 1}: a value beyond {_FLOAT32_MAX:.3g} in "
                        f"{', '.join(f'{v:g}' for v in table[bad[0]])[:60]!r}")
    _check_whole(path, table[:, 0], "frame number", low=1)
    wh = table[:, 4:6].astype(np.float32)   # as kept: a tiny positive size would become 0
    bad = np.flatnonzero((wh <= 0).any(axis=1))
    if bad.size:
        raise UserError(f"{path}: row {bad[0] + 1}: box width and height must be positive, "
                        f"got {table[bad[0], 4]:g}x{table[bad[0], 5]:g}")
    return table


_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Frame numbers, ids and classes must be whole numbers within +-2**53 (exact in float64 and int64).
_MAX_WHOLE = float(2 ** 53)


def _check_whole(path: Path, values: np.ndarray, what: str, low: float = -_MAX_WHOLE) -> None:
    """Fails in one line on the first value that is not a whole number in ``[low, 2**53]``."""
    bad = np.flatnonzero((values < low) | (values > _MAX_WHOLE) | (values != np.round(values)))
    if bad.size:
        kind = "a positive integer" if low == 1 else "a non-negative integer" if low == 0 else "an integer"
        raise UserError(f"{path}: row {bad[0] + 1}: {what} {values[bad[0]]:g} is not {kind}"
                        f"{'' if abs(values[bad[0]]) <= _MAX_WHOLE else ' within 2^53'}")


class FrameIndex:
    """Rows of a per-frame table, sorted by frame, sliced per frame in O(log N)."""

    def __init__(self, frames: np.ndarray):
        self.order = np.argsort(frames, kind="stable")
        self.sorted_frames = frames[self.order]

    def rows(self, frame: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.sorted_frames, [frame, frame + 1])
        return self.order[lo:hi]


@dataclass(frozen=True)
class DetectionTable:
    """All detections of a sequence (a ``det.txt``).

    Attributes:
        frames: (N,) int64 1-based frame numbers.
        tlwh: (N, 4) float32, 0-based pixels.
        scores: (N,) float32 raw detector scores.
    """

    frames: np.ndarray
    tlwh: np.ndarray
    scores: np.ndarray

    def index(self) -> FrameIndex:
        return FrameIndex(self.frames)


def read_detections(path: str | Path, seq_length: int | None = None) -> DetectionTable:
    """Reads ``det.txt`` in the MOT15 (10 columns) or MOT16/17 (7 to 10 columns) form.

    Columns: ``frame, -1, x, y, w, h, score[, ...]`` with 1-based x, y.
    """
    path = Path(path)
    table = _read_table(path, 7, "detection")
    frames = table[:, 0].astype(np.int64)
    if seq_length is not None and frames.size and frames.max() > seq_length:
        row = int(np.argmax(frames))
        raise UserError(f"{path}: row {row + 1}: frame {frames[row]} is beyond the sequence length {seq_length}")
    tlwh = table[:, 2:6].astype(np.float32)
    tlwh[:, :2] -= 1
    return DetectionTable(frames, tlwh, table[:, 6].astype(np.float32))


@dataclass(frozen=True)
class GroundTruth:
    """A ``gt.txt``.

    Attributes:
        frames: (N,) int64 1-based frame numbers.
        ids: (N,) int64 identities.
        tlwh: (N, 4) float32, 0-based pixels.
        consider: (N,) bool, the consider flag (column 7); False rows are ignored by the protocol.
        classes: (N,) int64 classes (MOT16/17 form), or None for 2DMOT2015 files, which have none.
        visibility: (N,) float32 visibility in [0, 1] (1 where the file has none).
    """

    frames: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    consider: np.ndarray
    classes: np.ndarray | None
    visibility: np.ndarray

    @property
    def protocol(self) -> str:
        """``"MOT17"`` when the file carries classes, else ``"MOT15"``."""
        return "MOT15" if self.classes is None else "MOT17"

    def index(self) -> FrameIndex:
        return FrameIndex(self.frames)


def read_ground_truth(path: str | Path) -> GroundTruth:
    """Reads ``gt.txt`` in the 2DMOT2015 form (10 columns: ..., conf, wx, wy, wz) or the MOT16/17 form
    (9 columns: ..., consider, class, visibility)."""
    path = Path(path)
    table = _read_table(path, 7, "ground-truth")
    n, ncols = table.shape
    tlwh = table[:, 2:6].astype(np.float32)
    tlwh[:, :2] -= 1
    mot17 = 8 <= ncols <= 9
    _check_whole(path, table[:, 1], "ground-truth id", low=0)
    if mot17:
        _check_whole(path, table[:, 7], "class")
    ids = table[:, 1].astype(np.int64)
    frames = table[:, 0].astype(np.int64)
    _check_unique_ids(path, frames, ids, "ground-truth")
    return GroundTruth(
        frames=frames,
        ids=ids,
        tlwh=tlwh,
        consider=table[:, 6] != 0,
        classes=table[:, 7].astype(np.int64) if mot17 else None,
        visibility=(table[:, 8] if ncols == 9 else np.ones(n)).astype(np.float32),
    )


@dataclass(frozen=True)
class TrackResults:
    """Tracker output of a sequence.

    Attributes:
        frames: (N,) int64 1-based frame numbers.
        ids: (N,) int64 track ids.
        tlwh: (N, 4) float32, 0-based pixels.
        scores: (N,) float32.
    """

    frames: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def empty(cls) -> "TrackResults":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                   np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts: list["TrackResults"]) -> "TrackResults":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("frames", "ids", "tlwh", "scores")))

    def select(self, mask_or_index) -> "TrackResults":
        """The rows given by a boolean mask or an index array."""
        return TrackResults(self.frames[mask_or_index], self.ids[mask_or_index], self.tlwh[mask_or_index],
                            self.scores[mask_or_index])

    @property
    def xyxy(self) -> np.ndarray:
        """(N, 4) float32 boxes as x1, y1, x2, y2 (0-based pixels)."""
        return tlwh_to_xyxy(self.tlwh)

    def sorted(self) -> "TrackResults":
        order = np.lexsort((self.ids, self.frames))
        return TrackResults(self.frames[order], self.ids[order], self.tlwh[order], self.scores[order])

    def index(self) -> FrameIndex:
        return FrameIndex(self.frames)


def read_results(path: str | Path) -> TrackResults:
    """Reads a MOTChallenge result file ``frame,id,x,y,w,h,conf,-1,-1,-1``."""
    path = Path(path)
    table = _read_table(path, 6, "result")
    tlwh = table[:, 2:6].astype(np.float32)
    tlwh[:, :2] -= 1
    scores = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
    _check_whole(path, table[:, 1], "track id")
    frames, ids = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    _check_unique_ids(path, frames, ids, "track")
    return TrackResults(frames, ids, tlwh, scores.astype(np.float32))


def format_results(results: TrackResults) -> str:
    """MOTChallenge result text, sorted by frame then id, 1-based coordinates."""
    r = results.sorted()
    lines = [f"{f},{i},{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1"
             for f, i, (x, y, w, h), s in zip(r.frames.tolist(), r.ids.tolist(), r.tlwh.tolist(), r.scores.tolist())]
    return "\n".join(lines) + ("\n" if lines else "")


def write_results(path: str | Path, results: TrackResults) -> None:
    """Writes a MOTChallenge result file atomically."""
    atomic_write_text(path, format_results(results))


class StreamedFile:
    """A text file streamed under a temporary name in its folder and renamed by :meth:`close`:
    readers never see a part of it, and a run that fails (or :meth:`discard`) leaves nothing.
    Subclasses write to ``self._fh`` and flush what they hold in :meth:`_finish`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._fh = os.fdopen(fd, "w")

    def _finish(self) -> None:
        """Writes what is still held (called by :meth:`close`)."""

    def close(self) -> None:
        """Writes what is left and puts the file in place."""
        self._finish()
        _put_in_place(self._fh, self._tmp, self.path)

    def discard(self) -> None:
        """Drops the partial file (a run that failed)."""
        if not self._fh.closed:
            self._fh.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class ResultWriter(StreamedFile):
    """Streams a MOTChallenge result file to disk as frames finish, in the order of
    :func:`format_results` (by frame, then id), with memory bounded by ``delay`` frames of rows.

    Rows may arrive up to ``delay`` frames late (a tracker's delayed output); frame ``f``'s rows
    are written once the frame being added is past ``f + delay``. The file is written under a
    temporary name and renamed by :meth:`close`: readers never see a part of it, and a run that
    fails (or :meth:`discard`) leaves nothing behind.

    Args:
        path: the result file.
        delay: the most frames a row can come late (``mot.Tracker.max_delay``).
    """

    def __init__(self, path: str | Path, delay: int = 0):
        super().__init__(path)
        self.delay = int(delay)
        self._pending: list[TrackResults] = []

    def add(self, rows: TrackResults, frame: int) -> None:
        """Takes rows (of ``frame`` or earlier) and writes the frames that can no longer change."""
        if len(rows):
            self._pending.append(rows)
        self._write_until(frame - self.delay)

    def _write_until(self, last: int | None) -> None:
        if not self._pending:
            return
        rows = TrackResults.concatenate(self._pending)
        done = rows.frames <= last if last is not None else np.ones(len(rows), bool)
        if done.any():
            self._fh.write(format_results(rows.select(done)))
        self._pending = [rows.select(~done)] if not done.all() else []

    def _finish(self) -> None:
        self._write_until(None)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fh = os.fdopen(fd, "w")
        fh.write(text)
        _put_in_place(fh, tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _put_in_place(fh, tmp: str, path: Path) -> None:
    """Syncs and closes the temporary file ``tmp`` (open as ``fh``) and renames it to ``path``."""
    with fh:
        fh.flush()
        os.fsync(fh.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are ordinary files
    os.replace(tmp, path)
