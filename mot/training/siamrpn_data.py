"""Training data for the SiamRPN refiner: target tracks from MOT ground truth and SOT sequences,
cut once into context crops, then sampled into augmented template/search pairs.

Each annotated box is stored as one ``3 * template_size`` square crop centred on the target at
the template's scale (the template is its central square); search crops are cut from the crop of
a later frame of the same identity with a random shift and scale. Crops are cached under
``~/.cache/siamese-mot/siamrpn`` (keyed by the sequence and the crop geometry).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError
from mot.geometry import tlwh_to_cxcywh
from mot.siamrpn import Geometry, context_size, square_regions
from association.patches import crop_resize

CACHE = Path.home() / ".cache" / "siamese-mot" / "siamrpn"
#: Context crops are this many template sides wide: room for the search crop's shift and scale.
CROP_FACTOR = 3


@dataclass
class TargetTrack:
    """One target through a sequence.

    Attributes:
        source: ``sequence/identity``.
        frames: (L,) int64 frame numbers, increasing.
        tlwh: (L, 4) float32 boxes (0-based pixels).
    """

    source: str
    frames: np.ndarray
    tlwh: np.ndarray


@dataclass
class SotSequence:
    """A single-object sequence: image paths and one (4,) tlwh box per frame (NaN where absent)."""

    name: str
    images: list[Path]
    tlwh: np.ndarray


def polygon_to_tlwh(poly: np.ndarray) -> np.ndarray:
    """VOT 8-value polygons -> axis-aligned boxes of the same area and centre (the VOT toolkit's rule).

    Args:
        poly: (N, 8) float32 x1, y1, ..., x4, y4 (0-based pixels).

    Returns:
        (N, 4) float32 tlwh.
    """
    p = np.asarray(poly, np.float64).reshape(-1, 4, 2)
    lo, hi = p.min(axis=1), p.max(axis=1)
    centre = p.mean(axis=1)
    a1 = np.linalg.norm(p[:, 0] - p[:, 1], axis=1) * np.linalg.norm(p[:, 1] - p[:, 2], axis=1)
    a2 = np.prod(hi - lo, axis=1)
    s = np.sqrt(a1 / np.maximum(a2, 1e-6))[:, None]
    wh = s * (hi - lo)
    return np.concatenate([centre - wh / 2, wh], axis=1).astype(np.float32)


def read_sot(folder: str | Path) -> SotSequence:
    """Reads an OTB (``groundtruth_rect.txt``, x,y,w,h 1-based) or VOT (``groundtruth.txt``,
    8-value polygons) sequence with its frames in ``img/``."""
    folder = Path(folder)
    images = sorted((folder / "img").glob("*.jpg"))
    if (folder / "groundtruth_rect.txt").is_file():
        raw = _read_numbers(folder / "groundtruth_rect.txt", 4)
        tlwh = raw.copy()
        tlwh[:, :2] -= 1
    elif (folder / "groundtruth.txt").is_file():
        raw = _read_numbers(folder / "groundtruth.txt", 8)
        tlwh = polygon_to_tlwh(raw - 1)
    else:
        raise UserError(f"{folder}: no groundtruth_rect.txt (OTB) or groundtruth.txt (VOT)")
    if not images or len(images) < len(tlwh):
        raise UserError(f"{folder}: {len(images)} images in img/ for {len(tlwh)} ground-truth rows")
    tlwh[~np.all(tlwh[:, 2:] > 0, axis=1)] = np.nan   # absent or zero-sized target
    return SotSequence(folder.name, images[:len(tlwh)], tlwh.astype(np.float32))


def _read_numbers(path: Path, cols: int) -> np.ndarray:
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        parts = [p for p in line.replace("\t", ",").replace(" ", ",").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != cols:
            raise UserError(f"{path}:{i + 1}: expected {cols} numbers, got {line.strip()!r}")
        rows.append(values)
    return np.asarray(rows, np.float32).reshape(-1, cols)


def mot_tracks(seq_folder: Path, min_height: float = 0.0) -> tuple[list[TargetTrack], dict[int, Path]]:
    """The considered ground-truth identities of a MOTChallenge sequence, and its frame paths."""
    from mot.io import PEDESTRIAN, read_ground_truth
    from mot.sequence import open_sequence

    seq = open_sequence(seq_folder)
    if seq.gt_path is None:
        raise UserError(f"{seq_folder}: no gt/gt.txt to train on")
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider & (gt.tlwh[:, 3] >= min_height) & (gt.tlwh[:, 2] > 1)
    if gt.classes is not None:          # MOT17 layout: pedestrians only
        keep &= gt.classes == PEDESTRIAN
    tracks = []
    for pid in np.unique(gt.ids[keep]):
        m = keep & (gt.ids == pid)
        order = np.argsort(gt.frames[m])
        tracks.append(TargetTrack(f"{seq.name}/{pid}", gt.frames[m][order], gt.tlwh[m][order]))
    frames = sorted({int(f) for t in tracks for f in t.frames})
    return tracks, {f: seq.frame_path(f) for f in frames}


def sot_tracks(folder: Path) -> tuple[list[TargetTrack], dict[int, Path]]:
    sot = read_sot(folder)
    ok = np.all(np.isfinite(sot.tlwh), axis=1)
    frames = np.nonzero(ok)[0] + 1
    return ([TargetTrack(f"{sot.name}/1", frames.astype(np.int64), sot.tlwh[ok])],
            {i + 1: path for i, path in enumerate(sot.images)})


class CropBank:
    """Context crops of every target box of some sequences, with the box inside each crop.

    Attributes:
        crops: (M, 3T, 3T, 3) uint8 BGR, T = ``geometry.template_size``.
        boxes: (M, 4) float32 cxcywh of the target in crop pixels, relative to the crop centre.
        tracks: per identity, the row indices of its crops in frame order, and their frames.
        sequence_of: (number of tracks,) the sequence index of each identity.
    """

    def __init__(self, folders: list[Path], geometry: Geometry, progress: bool = False):
        parts, boxes, self.tracks, self.names = [], [], [], []
        start = 0
        for folder in folders:
            c, b, tracks = _load_or_cut(Path(folder), geometry, progress)
            parts.append(c)
            boxes.append(b)
            for rows, frames in tracks:
                self.tracks.append((rows + start, frames))
            start += len(c)
            self.names.append(Path(folder).name)
        side = CROP_FACTOR * geometry.template_size
        self.crops = np.concatenate(parts) if parts else np.zeros((0, side, side, 3), np.uint8)
        self.boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        self.tracks = [t for t in self.tracks if len(t[0]) >= 2]


def is_sot(folder: Path) -> bool:
    return (folder / "groundtruth_rect.txt").is_file() or (folder / "groundtruth.txt").is_file()


def _load_or_cut(folder: Path, geometry: Geometry, progress: bool):
    key = hashlib.sha1(f"{folder.resolve()}|{geometry.template_size}|{geometry.context}|{CROP_FACTOR}".encode())
    cache = CACHE / f"{folder.name}-{key.hexdigest()[:10]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            n = int(z["n_tracks"])
            return z["crops"], z["boxes"], [(z[f"rows{i}"], z[f"frames{i}"]) for i in range(n)]
    tracks, paths = sot_tracks(folder) if is_sot(folder) else mot_tracks(folder)
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for ti, t in enumerate(tracks):
        for j, f in enumerate(t.frames):
            by_frame.setdefault(int(f), []).append((ti, j))
    side = CROP_FACTOR * geometry.template_size
    total = sum(len(t.frames) for t in tracks)
    crops = np.zeros((total, side, side, 3), np.uint8)
    boxes = np.zeros((total, 4), np.float32)
    rows = [np.zeros(len(t.frames), np.int64) for t in tracks]
    items = sorted(by_frame.items())
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc=f"crops {folder.name}", unit="frame", leave=False)
    r = 0
    for f, members in items:
        image = cv2.imread(str(paths[f]), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{paths[f]}: unreadable image")
        tlwh = np.array([tracks[ti].tlwh[j] for ti, j in members], np.float32)
        c = tlwh_to_cxcywh(tlwh)
        regions = square_regions(c[:, :2], CROP_FACTOR * context_size(tlwh, geometry.context))
        mean = tuple(float(v) for v in image.reshape(-1, 3)[::97].mean(axis=0))
        crops[r:r + len(members)] = crop_resize(image, regions, side, side, pad_value=mean)
        scale = side / regions[:, 2:3]
        centre = regions[:, :2] + regions[:, 2:] / 2
        boxes[r:r + len(members)] = np.concatenate([(c[:, :2] - centre) * scale, c[:, 2:] * scale], axis=1)
        for k, (ti, j) in enumerate(members):
            rows[ti][j] = r + k
        r += len(members)
    track_list = [(rows[i], tracks[i].frames) for i in range(len(tracks))]
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, crops=crops, boxes=boxes, n_tracks=len(track_list),
             **{f"rows{i}": t[0] for i, t in enumerate(track_list)},
             **{f"frames{i}": t[1] for i, t in enumerate(track_list)})
    tmp.replace(cache)
    return crops, boxes, track_list


@dataclass
class Augment:
    """Pair sampling and augmentation (all in template-scale crop pixels)."""

    max_delta: int = 8           # search frame is 1..max_delta frames after the template's
    max_shift: float = 28.0      # target offset from the search centre, up to this (search pixels)
    max_scale: float = 1.2       # search scale drawn log-uniformly in [1/max_scale, max_scale]
    negative_rate: float = 0.2   # share of pairs whose search shows another identity
    flip_rate: float = 0.5       # share of pairs flipped left-right (template and search alike)


def sample_pair(bank: CropBank, rng: np.random.Generator, geometry: Geometry, aug: Augment):
    """One training pair.

    Returns:
        template: (T, T, 3) uint8 BGR.
        search: (S, S, 3) uint8 BGR.
        box: (4,) float32 cxcywh of the target in the search crop, relative to its centre.
        positive: False when the search shows another identity (every anchor is then negative).
    """
    rows, frames = bank.tracks[int(rng.integers(len(bank.tracks)))]
    i = int(rng.integers(len(rows) - 1))
    later = np.nonzero((frames > frames[i]) & (frames <= frames[i] + aug.max_delta))[0]
    j = int(rng.choice(later)) if len(later) else i + 1
    positive = rng.random() >= aug.negative_rate
    src = rows[j]
    if not positive:
        other, _ = bank.tracks[int(rng.integers(len(bank.tracks)))]
        src = other[int(rng.integers(len(other)))]
        positive = src == rows[i]
    t, s = geometry.template_size, geometry.search_size
    side = bank.crops.shape[1]
    template = bank.crops[rows[i], side // 2 - t // 2: side // 2 + t // 2, side // 2 - t // 2: side // 2 + t // 2]
    sc = float(np.exp(rng.uniform(-np.log(aug.max_scale), np.log(aug.max_scale))))
    length = min(s * sc, side)
    room = (side - length) / 2
    limit = min(room, aug.max_shift * sc)
    shift = rng.uniform(-limit, limit, 2)
    box = bank.boxes[src].copy()
    # Region centred at target + shift (crop pixels from the crop centre), clipped to the crop.
    centre = np.clip(box[:2] + shift, -room, room)
    x0, y0 = side / 2 + centre - length / 2
    m = np.array([[s / length, 0, -x0 * s / length], [0, s / length, -y0 * s / length]], np.float32)
    search = cv2.warpAffine(bank.crops[src], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    box = np.concatenate([(box[:2] - centre) * s / length, box[2:] * s / length]).astype(np.float32)
    if rng.random() < aug.flip_rate:
        template, search = template[:, ::-1], search[:, ::-1]
        box[0] = -box[0]
    return np.ascontiguousarray(template), np.ascontiguousarray(search), box, bool(positive)
