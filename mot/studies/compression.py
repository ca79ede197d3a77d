"""Compressed copies of MOTChallenge sequences, to measure what video compression costs the tracker.

:func:`compress_sequence` encodes a sequence's frames as H.264 (libx264, a given CRF and preset)
with an external ``ffmpeg``, decodes the video back to lossless PNG frames, and lays the result out
as a MOTChallenge sequence: ``seqinfo.ini`` (``imExt=.png``), ``img1/``, and ``gt/`` and ``det/``
linked (or copied) from the source. The copy's PSNR against its source is measured frame by frame
while decoding. The copy is built in a temporary folder beside the destination and renamed into
place only when complete, so a failed run leaves no half-written sequence.

Frames go to ffmpeg as raw BGR decoded by OpenCV (exactly the pixels the tracker reads from the
source), and come back as raw BGR, so no other image decoder is involved. ffmpeg converts to and
from 4:2:0 YUV with its default (BT.601) matrix, as a camera or a phone encoder would.

ffmpeg is looked up in this order: the ``ffmpeg`` argument, the ``IMAGEIO_FFMPEG_EXE`` environment
variable, the static binary of the ``imageio-ffmpeg`` package when it can be imported, ``ffmpeg``
on the PATH. OpenCV's own video writer is not used: its builds rarely carry an H.264 encoder.
"""

from __future__ import annotations

import configparser
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError
from mot.io import atomic_write_text
from mot.sequence import open_folder

#: x264 presets, fastest to slowest (``ffmpeg -h encoder=libx264``).
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
           "placebo")
#: The folders linked or copied from the source when present.
ANNOTATION_DIRS = ("gt", "det")
#: The record written beside the frames.
RECORD = "compression.json"
#: The encoded video kept beside the frames (``discover`` sees the folder as one sequence).
VIDEO = "h264.mp4"


@dataclass(frozen=True)
class CompressionParams:
    """How to compress.

    Attributes:
        crf: x264 constant rate factor, 0 (lossless) to 51; 23 is ffmpeg's default, about 30 looks
            like a low-bit-rate webcam.
        preset: x264 speed preset (one of :data:`PRESETS`); ffmpeg's default is ``medium``.
        png_compression: zlib level of the PNG frames, 0-9 (lossless at any level; only size and
            time change).
        link: link ``gt/`` and ``det/`` to the source (True) or copy them (False).
        threads: ffmpeg threads for encoding and decoding; 0 lets ffmpeg choose (all cores). x264's
            output depends slightly on its thread count, so a copy is reproduced bit for bit only
            with the same setting.
    """

    crf: int = 23
    preset: str = "medium"
    png_compression: int = 1
    link: bool = True
    threads: int = 1

    def __post_init__(self):
        if not (isinstance(self.crf, int) and 0 <= self.crf <= 51):
            raise UserError(f"crf={self.crf!r}: must be a whole number from 0 to 51")
        if self.preset not in PRESETS:
            raise UserError(f"preset={self.preset!r}: must be one of {', '.join(PRESETS)}")
        if not (isinstance(self.png_compression, int) and 0 <= self.png_compression <= 9):
            raise UserError(f"png_compression={self.png_compression!r}: must be a whole number from 0 to 9")
        if not (isinstance(self.threads, int) and self.threads >= 0):
            raise UserError(f"threads={self.threads!r}: must be a whole number >= 0 (0: ffmpeg chooses)")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a``, in dB (inf when they are equal).

    Args:
        a, b: images of the same shape (any number of channels), uint8 or float.
        peak: the largest possible value (255 for 8-bit images).
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ, {a.shape} and {b.shape}")
    return psnr_from_mse(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)), peak)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB for a mean squared error (inf for 0)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def find_ffmpeg(explicit: str | None = None) -> str:
    """The ffmpeg executable to use (see the module docstring for the order).

    Raises:
        UserError: none is found, or the one named does not exist.
    """
    if explicit:
        path = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        if path is None:
            raise UserError(f"{explicit}: ffmpeg not found")
        return path
    env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if env and Path(env).is_file():
        return env
    try:
        import imageio_ffmpeg  # optional: a static ffmpeg with libx264 (pip install imageio-ffmpeg)

        path = imageio_ffmpeg.get_ffmpeg_exe()
        if path and Path(path).is_file():
            return path
    except (ImportError, RuntimeError, OSError):  # not installed, or no binary for this platform
        pass
    path = shutil.which("ffmpeg")
    if path is None:
        raise UserError("ffmpeg not found: pass --ffmpeg PATH, or pip install imageio-ffmpeg "
                        "(a static ffmpeg with libx264)")
    return path


def ffmpeg_version(exe: str) -> str:
    """The first line of ``ffmpeg -version``; checks that the build has the libx264 encoder.

    Raises:
        UserError: the executable does not run, or has no libx264.
    """
    try:
        version = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=60,
                                 check=False)
        encoders = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60,
                                  check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{exe}: cannot run ffmpeg ({type(exc).__name__})") from None
    if version.returncode != 0:
        raise UserError(f"{exe}: cannot run ffmpeg (exit {version.returncode})")
    if "libx264" not in encoders.stdout:
        raise UserError(f"{exe}: this ffmpeg has no libx264 encoder (pip install imageio-ffmpeg has one)")
    return version.stdout.splitlines()[0] if version.stdout else "ffmpeg"


def _encode_command(exe: str, width: int, height: int, fps: float, params: CompressionParams, out: Path) -> list[str]:
    # x264 with 4:2:0 chroma needs even sizes: pad by one pixel, cropped off again after decoding.
    return [exe, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", params.preset,
            "-crf", str(params.crf), "-threads", str(params.threads), "-pix_fmt", "yuv420p", str(out)]


def _decode_command(exe: str, video: Path, threads: int) -> list[str]:
    return [exe, "-hide_banner", "-loglevel", "error", "-threads", str(threads), "-i", str(video),
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]


def _run_ffmpeg(cmd: list[str], what: str, feed=None, read=None) -> None:
    """Runs ffmpeg, writing frames to its stdin with ``feed(stdin)`` or reading its stdout with ``read(stdout)``.

    When ffmpeg fails, its last line of error output is the message, even if ``feed`` or ``read``
    noticed first (a broken pipe, frames missing).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if read else subprocess.DEVNULL, stderr=err)
        noticed: Exception | None = None
        try:
            if feed:
                try:
                    feed(proc.stdin)
                finally:
                    proc.stdin.close()
            if read:
                read(proc.stdout)
                proc.stdout.close()
        except (BrokenPipeError, UserError) as exc:
            noticed = exc
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if noticed is not None and proc.poll() is None:
            proc.kill()
        code = proc.wait()
        if code != 0 and not (noticed is not None and code < 0):
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise UserError(f"ffmpeg failed while {what} (exit {code}): {lines[-1] if lines else 'no message'}")
        if noticed is not None:
            if isinstance(noticed, UserError):
                raise noticed
            raise UserError(f"ffmpeg stopped reading while {what} (exit {code})")


@dataclass(frozen=True)
class CompressionResult:
    """What :func:`compress_sequence` made.

    Attributes:
        out: the new sequence folder.
        frames: frames written.
        psnr_db: PSNR of the whole copy against the source (from the mean squared error over all
            frames and pixels).
        psnr_frame_mean_db, psnr_frame_min_db: mean and lowest per-frame PSNR.
        kbit_per_s: the H.264 stream's bit rate at the sequence's frame rate.
        seconds: wall time (encode, decode, PNG writing).
    """

    source: str
    out: str
    crf: int
    preset: str
    frames: int
    psnr_db: float
    psnr_frame_mean_db: float
    psnr_frame_min_db: float
    kbit_per_s: float
    video_bytes: int
    ffmpeg: str
    seconds: float

    def summary(self) -> str:
        return (f"wrote {self.out}: {self.frames} frames, H.264 crf {self.crf} preset {self.preset}, "
                f"{self.kbit_per_s:.0f} kbit/s; PSNR {self.psnr_db:.2f} dB against {self.source} "
                f"(per frame: mean {self.psnr_frame_mean_db:.2f}, min {self.psnr_frame_min_db:.2f}); "
                f"{self.seconds:.0f} s")


def _seqinfo_text(src: Path) -> str:
    """The source's ``seqinfo.ini`` with ``imExt=.png`` and ``imDir=img1`` (other keys, the name too, kept)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep MOTChallenge's camelCase keys
    parser.read_string((src / "seqinfo.ini").read_text())
    sec = parser["Sequence"]
    sec["imDir"] = "img1"
    sec["imExt"] = ".png"
    buf = io.StringIO()
    parser.write(buf, space_around_delimiters=False)
    return buf.getvalue()


def compress_sequence(source: str | Path, out: str | Path, params: CompressionParams = CompressionParams(),
                      ffmpeg: str | None = None, force: bool = False) -> CompressionResult:
    """Makes an H.264-compressed copy of a MOTChallenge sequence, decoded to PNG frames.

    Args:
        source: a sequence folder (``seqinfo.ini`` and its image folder).
        out: the new sequence folder; it must not exist unless ``force``. Name it like the source
            (e.g. ``/work/h264/crf23/PETS09-S2L1``): the tracker names a sequence by its folder.
        params: CRF, preset, PNG level, link or copy the annotations.
        ffmpeg: the ffmpeg executable (default: found by :func:`find_ffmpeg`).
        force: replace ``out`` if it exists.

    Returns:
        What was written, with the PSNR against the source; also saved as ``out/compression.json``.

    Raises:
        UserError: no ffmpeg (or one without libx264), a bad source, ``out`` exists, ffmpeg fails.
    """
    t0 = time.perf_counter()
    src, out = Path(source).resolve(), Path(out).absolute()
    seq = open_folder(src)
    seq.check_frames()
    if out == src or src in out.parents:
        raise UserError(f"{out}: the copy cannot be written inside its source {src}")
    if out.exists() and not force:
        raise UserError(f"{out}: already exists (use --force to replace it)")
    exe = find_ffmpeg(ffmpeg)
    version = ffmpeg_version(exe)
    first = cv2.imread(str(seq.frame_path(1)), cv2.IMREAD_COLOR)
    if first is None:
        raise UserError(f"{seq.frame_path(1)}: cannot read image (missing or corrupt)")
    height, width = first.shape[:2]
    n = seq.info.seq_length
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        video = work / VIDEO

        def feed(stdin):
            for frame, image in seq.frames():
                if image.shape[:2] != (height, width):
                    raise UserError(f"{seq.frame_path(frame)}: size {image.shape[1]}x{image.shape[0]} "
                                    f"differs from frame 1's {width}x{height}")
                stdin.write(np.ascontiguousarray(image).tobytes())

        _run_ffmpeg(_encode_command(exe, width, height, seq.info.frame_rate, params, video), "encoding", feed=feed)

        (work / "img1").mkdir()
        pw, ph = width + width % 2, height + height % 2
        per_frame: list[float] = []
        sq_sum = 0.0
        originals = seq.frames()

        def read(stdout):
            nonlocal sq_sum
            for frame, original in originals:
                buf = stdout.read(pw * ph * 3)
                if len(buf) < pw * ph * 3:
                    raise UserError(f"ffmpeg decoded {frame - 1} frames of {n} from {video.name}")
                decoded = np.frombuffer(buf, np.uint8).reshape(ph, pw, 3)[:height, :width]
                mse = float(np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2))
                sq_sum += mse
                per_frame.append(psnr_from_mse(mse))
                path = work / "img1" / f"{frame:06d}.png"
                if not cv2.imwrite(str(path), decoded, [cv2.IMWRITE_PNG_COMPRESSION, params.png_compression]):
                    raise UserError(f"{path}: cannot write frame")
            if stdout.read(1):
                raise UserError(f"ffmpeg decoded more than the {n} frames encoded in {video.name}")

        _run_ffmpeg(_decode_command(exe, video, params.threads), "decoding", read=read)

        for name in ANNOTATION_DIRS:
            target = src / name
            if target.exists():
                if params.link:
                    os.symlink(target.resolve(), work / name)
                else:
                    shutil.copytree(target, work / name)
        (work / "seqinfo.ini").write_text(_seqinfo_text(src))
        size = video.stat().st_size
        result = CompressionResult(
            source=str(src), out=str(out), crf=params.crf, preset=params.preset, frames=n,
            psnr_db=psnr_from_mse(sq_sum / n) if n else math.nan,
            psnr_frame_mean_db=float(np.mean(per_frame)) if per_frame else math.nan,
            psnr_frame_min_db=float(np.min(per_frame)) if per_frame else math.nan,
            kbit_per_s=8 * size / 1000 / (n / seq.info.frame_rate) if n else math.nan,
            video_bytes=size, ffmpeg=version, seconds=time.perf_counter() - t0)
        record = asdict(result) | {"png_compression": params.png_compression, "threads": params.threads,
                                   "annotations": "linked" if params.link else "copied"}
        atomic_write_text(work / RECORD, json.dumps(record, indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes 0700 folders; the copy is an ordinary folder
        if out.exists():
            old = out.parent / f".{out.name}.old.{os.getpid()}"
            os.replace(out, old)
            os.replace(work, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return result
