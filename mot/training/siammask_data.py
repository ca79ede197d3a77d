"""Training data for the SiamMask head: pedestrian instance masks cut into context crops, sampled
into augmented template/search pairs with the target's mask over the window the head predicts.

Sources (see ``data/masks/README.md``):

- Penn-Fudan (``PennFudanPed/``): one photo per person; template and search come from the same
  photo, the search shifted and scaled (:class:`mot.training.siamrpn_data.Augment`).
- MOTS (``MOTS/<SEQ>/<frame>.png`` beside ``MOT17/<SEQ>/``): instance n of a frame is MOT17
  ground-truth id n; the template comes from frame t and the search from a later frame of the same
  instance. The template box is the MOT17 gt box of id n in that frame when it overlaps the mask's
  box (the tracker's boxes are full-body detections), else the mask's own box. Value 255 is an
  ignore region (no loss there); other people count as background.

Each instance-frame is stored once as a ``CROP_SIDE`` square crop at the template's scale,
centred on its box: BGR pixels, the target's mask (0-255, area-averaged) and the ignore mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from association.patches import crop_resize
from mot.errors import UserError
from mot.geometry import iou_matrix_tlwh, tlwh_to_cxcywh
from mot.siamrpn import Geometry, context_size, square_regions
from mot.siammask import mask_size
from mot.training.siamrpn_data import Augment

#: Side of the stored crops (template-scale pixels): room for the search crop's shift and scale.
CROP_SIDE = 176


@dataclass
class MaskSource:
    """One training source: ``kind`` ``pennfudan`` (folder ``PennFudanPed``) or ``mots`` (a
    MOT17 sequence folder and the folder of its MOTS masks)."""

    kind: str
    folder: Path
    masks: Path | None = None


def parse_source(text: str, mask_root: Path) -> MaskSource:
    """``pennfudan`` or a MOT17 sequence folder (its masks: ``mask_root/MOTS/<name>``)."""
    if text == "pennfudan":
        return MaskSource("pennfudan", mask_root / "PennFudanPed")
    folder = Path(text)
    return MaskSource("mots", folder, mask_root / "MOTS" / folder.name)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """(H, W) bool -> (4,) float32 tlwh of its pixels, or None when empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float32)


class MaskBank:
    """Context crops of every used instance-frame.

    Attributes:
        crops: (M, S, S, 3) uint8 BGR, S = ``CROP_SIDE`` (template-scale pixels).
        target: (M, S, S) uint8 the target's mask, 0-255.
        ignore: (M, S, S) uint8 1 where the loss ignores pixels.
        boxes: (M, 4) float32 cxcywh of the template box in crop pixels, relative to the crop centre.
        tracks: per instance, the row indices of its crops in frame order, and their frames.
    """

    def __init__(self, sources: list[MaskSource], geometry: Geometry, frame_step: int = 4,
                 min_height: float = 40.0, progress: bool = False):
        self.geometry = geometry
        self._crops, self._target, self._ignore, self._boxes = [], [], [], []
        self.tracks: list[tuple[np.ndarray, np.ndarray]] = []
        for src in sources:
            if src.kind == "pennfudan":
                self._pennfudan(src.folder, min_height, progress)
            else:
                self._mots(src, frame_step, min_height, progress)
        if not self._crops:
            raise UserError("no training instance in the mask sources")
        self.crops = np.stack(self._crops)
        self.target = np.stack(self._target)
        self.ignore = np.stack(self._ignore)
        self.boxes = np.stack(self._boxes).astype(np.float32)
        del self._crops, self._target, self._ignore, self._boxes

    def _add(self, image: np.ndarray, target: np.ndarray, ignore: np.ndarray, tlwh: np.ndarray) -> int:
        s = CROP_SIDE
        c = tlwh_to_cxcywh(tlwh[None])[0]
        region = square_regions(c[None, :2], s / self.geometry.template_size * context_size(tlwh[None], self.geometry.context))
        mean = tuple(float(v) for v in image.reshape(-1, 3)[::97].mean(axis=0))
        self._crops.append(crop_resize(image, region, s, s, pad_value=mean)[0])
        both = np.stack([target.astype(np.uint8) * 255, ignore.astype(np.uint8) * 255], axis=2)
        m = crop_resize(both, region, s, s, pad_value=0)[0]
        self._target.append(m[..., 0])
        self._ignore.append((m[..., 1] >= 128).astype(np.uint8))
        scale = s / region[0, 2]
        centre = region[0, :2] + region[0, 2:] / 2
        self._boxes.append(np.concatenate([(c[:2] - centre) * scale, c[2:] * scale]))
        return len(self._crops) - 1

    def _pennfudan(self, folder: Path, min_height: float, progress: bool) -> None:
        images = sorted((folder / "images").glob("*.jpg"))
        if not images:
            raise UserError(f"{folder}: no images/*.jpg (Penn-Fudan)")
        for path in _bar(images, progress, "pennfudan"):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            labels = cv2.imread(str(folder / "masks" / f"{path.stem}_mask.png"), cv2.IMREAD_UNCHANGED)
            if image is None or labels is None:
                raise UserError(f"{path}: unreadable image or mask")
            for k in np.unique(labels[labels > 0]):
                target = labels == k
                box = mask_box(target)
                if box is None or box[3] < min_height:
                    continue
                row = self._add(image, target, np.zeros_like(target), box)
                self.tracks.append((np.array([row]), np.array([0])))

    def _mots(self, src: MaskSource, frame_step: int, min_height: float, progress: bool) -> None:
        from mot.io import read_ground_truth
        from mot.sequence import open_sequence

        seq = open_sequence(src.folder)
        pngs = sorted(Path(src.masks).glob("*.png"))
        if not pngs:
            raise UserError(f"{src.masks}: no MOTS mask PNGs for {src.folder}")
        gt = read_ground_truth(seq.gt_path) if seq.gt_path is not None else None
        per_instance: dict[int, tuple[list, list]] = {}
        for path in _bar(pngs[::frame_step], progress, f"mots {seq.name}"):
            frame = int(path.stem)
            labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            image = cv2.imread(str(seq.frame_path(frame)), cv2.IMREAD_COLOR)
            if labels is None or image is None:
                raise UserError(f"{path}: unreadable mask or frame")
            ignore = labels == 255
            for n in np.unique(labels[(labels > 0) & (labels < 255)]):
                target = labels == n
                box = mask_box(target)
                if box is None or box[3] < min_height:
                    continue
                if gt is not None:   # the full-body gt box of id n, when it is this person
                    at = (gt.frames == frame) & (gt.ids == int(n))
                    if at.any() and iou_matrix_tlwh(box[None], gt.tlwh[at][:1])[0, 0] >= 0.5:
                        box = gt.tlwh[at][0].copy()
                row = self._add(image, target, ignore, box)
                rows, frames = per_instance.setdefault(int(n), ([], []))
                rows.append(row)
                frames.append(frame)
        for rows, frames in per_instance.values():
            self.tracks.append((np.array(rows), np.array(frames)))


def _bar(items, progress: bool, desc: str):
    if not progress:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit="image", leave=False)


def sample_mask_pair(bank: MaskBank, rng: np.random.Generator, aug: Augment, position_jitter: float = 0.5):
    """One training pair with its mask target.

    Returns:
        template: (T, T, 3) uint8 BGR.
        search: (S, S, 3) uint8 BGR.
        position: (2,) int64 score-map (row, column) whose window the target covers: the nearest
            to the target's centre, moved by one cell with probability ``position_jitter`` (the
            search's chosen anchor is rarely exact).
        target: (m, m) float32 in [0, 1] the target's mask over that window, m = ``mask_size(geometry)``.
        weight: (m, m) float32, 0 in ignore regions.
    """
    g = bank.geometry
    rows, frames = bank.tracks[int(rng.integers(len(bank.tracks)))]
    i = int(rng.integers(len(rows)))
    later = np.nonzero((frames >= frames[i]) & (frames <= frames[i] + aug.max_delta))[0]
    j = int(rng.choice(later))
    t, s, side = g.template_size, g.search_size, CROP_SIDE
    src = rows[j]
    template = bank.crops[rows[i], side // 2 - t // 2: side // 2 + t // 2, side // 2 - t // 2: side // 2 + t // 2]
    sc = float(np.exp(rng.uniform(-np.log(aug.max_scale), np.log(aug.max_scale))))
    length = min(s * sc, side)
    room = (side - length) / 2
    limit = min(room, aug.max_shift * sc)
    box = bank.boxes[src]
    centre = np.clip(box[:2] + rng.uniform(-limit, limit, 2), -room, room)
    x0, y0 = side / 2 + centre - length / 2
    m = np.array([[s / length, 0, -x0 * s / length], [0, s / length, -y0 * s / length]], np.float32)
    search = cv2.warpAffine(bank.crops[src], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    target = cv2.warpAffine(bank.target[src], m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ignore = cv2.warpAffine(bank.ignore[src], m, (s, s), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    n = g.score_size
    cxy = (box[:2] - centre) * s / length                       # target centre, search pixels from the centre
    pos = np.clip(np.round(cxy[::-1] / g.stride + (n - 1) / 2), 0, n - 1).astype(np.int64)
    if rng.random() < position_jitter:
        pos = np.clip(pos + rng.integers(-1, 2, 2), 0, n - 1)
    r0, c0 = pos * g.stride
    m_side = mask_size(g)
    win = target[r0:r0 + t, c0:c0 + t].astype(np.float32) / 255.0
    ign = ignore[r0:r0 + t, c0:c0 + t].astype(np.float32)
    win = cv2.resize(win, (m_side, m_side), interpolation=cv2.INTER_AREA)
    weight = 1.0 - (cv2.resize(ign, (m_side, m_side), interpolation=cv2.INTER_AREA) >= 0.5)
    if rng.random() < aug.flip_rate:
        template, search = template[:, ::-1], search[:, ::-1]
        win, weight = win[:, ::-1], weight[:, ::-1]
        pos[1] = n - 1 - pos[1]
    return (np.ascontiguousarray(template), np.ascontiguousarray(search), pos,
            np.ascontiguousarray(win, np.float32), np.ascontiguousarray(weight, np.float32))
