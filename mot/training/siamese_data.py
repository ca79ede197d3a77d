"""Training data for the Siamese network: cached crops of ground-truth boxes, PK batches, augmentation.

Every considered ground-truth box of a MOTChallenge-layout sequence is cropped once with some
context around it (BGR uint8, plus the optical flow under it at half resolution) and cached as one
``.npz`` per sequence outside the repository. Identity-labelled crops without time (VIPeR) join with
zero flow. Batches hold P identities x K crops; within a sequence the identities are taken from the
people present around one moment (so negatives are the people close by) and the crops of one
identity lie within ``max_gap`` frames of each other (so positives span gaps up to ``max_gap``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from association.flow import FlowComputer, FlowParams, crop_flow
from association.patches import PAD_BGR, PatchParams, bgr_to_luv_normalised, crop_resize
from mot.errors import UserError
from mot.io import read_ground_truth
from mot.sequence import open_folder

#: Crops are cached this much larger than the box (so jitter shows real surroundings).
CONTEXT = 1.25


@dataclass
class CropSet:
    """Cached crops of one source.

    Attributes:
        name: the sequence (or data set) name.
        bgr: (M, Hc, Wc, 3) uint8 context crops, the box in the central 1/CONTEXT.
        flow: (M, 2, Hc/2, Wc/2) float16 normalised flow crops (zero where there is no flow).
        ids: (M,) int64 identities, unique across sources.
        frames: (M,) int64 1-based frames (the camera index for VIPeR).
        tlwh: (M, 4) float32 boxes in the frame (None for re-id crops, which have no frame).
    """

    name: str
    bgr: np.ndarray
    flow: np.ndarray
    ids: np.ndarray
    frames: np.ndarray
    tlwh: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def context_size(patch: PatchParams) -> tuple[int, int]:
    return int(round(patch.height * CONTEXT)), int(round(patch.width * CONTEXT))


def _enlarge(tlwh: np.ndarray) -> np.ndarray:
    out = tlwh.copy()
    out[:, :2] -= tlwh[:, 2:] * (CONTEXT - 1) / 2
    out[:, 2:] *= CONTEXT
    return out


def _cache_path(cache_dir: Path, name: str, patch: PatchParams, flow: FlowParams, min_visibility: float) -> Path:
    key = f"{name}|{patch}|{flow}|{CONTEXT}|{min_visibility}|v1"
    return cache_dir / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"


def load_sequence_crops(seq_dir: Path, source: int, patch: PatchParams, flow: FlowParams,
                        cache_dir: Path, min_visibility: float = 0.3, progress: bool = True) -> CropSet:
    """Crops (or reads from the cache) every considered ground-truth box of one sequence.

    Args:
        seq_dir: a MOTChallenge sequence folder with ``gt/gt.txt``.
        source: index of the source, to make identities unique across sequences.
        patch: the network's patch size.
        flow: flow settings (the flow is computed between consecutive frames).
        cache_dir: where the ``.npz`` cache lives.
        min_visibility: boxes less visible than this are left out (MOT16/17 ground truth only).
        progress: show a tqdm bar while cropping.
    """
    seq = open_folder(seq_dir)
    if seq.gt_path is None:
        raise UserError(f"{seq_dir}: no gt/gt.txt to train from")
    gt = read_ground_truth(seq.gt_path)
    keep = gt.consider & (gt.visibility >= min_visibility)
    if gt.classes is not None:
        keep &= gt.classes == 1
    index = gt.index()
    # The rows of the crops, in the order they are cut (frame by frame); the boxes are not cached.
    per_frame = [r[keep[r]] for r in map(index.rows, range(1, seq.info.seq_length + 1))]
    order = np.concatenate(per_frame) if per_frame else np.zeros(0, np.int64)
    path = _cache_path(cache_dir, seq.name, patch, flow, min_visibility)
    if path.is_file():
        z = np.load(path)
        if not (np.array_equal(z["ids"] % 100_000, gt.ids[order]) and np.array_equal(z["frames"], gt.frames[order])):
            raise UserError(f"{path}: cached crops do not match {seq.gt_path} (delete the cache file)")
        # The cache may have been written under another source index: re-base the identities.
        return CropSet(seq.name, z["bgr"], z["flow"], z["ids"] % 100_000 + source * 100_000, z["frames"],
                       gt.tlwh[order].astype(np.float32))
    ch, cw = context_size(patch)
    computer = FlowComputer(flow)
    bgr, flows = [], []
    prev = None
    for frame, image in tqdm(seq.frames(), total=seq.info.seq_length, desc=f"crop {seq.name}", leave=False,
                              disable=not progress):
        rows = per_frame[frame - 1]
        field = computer.compute(prev, image)
        prev = image
        if not len(rows):
            continue
        big = _enlarge(gt.tlwh[rows])
        bgr.append(crop_resize(image, big, ch, cw, pad_value=PAD_BGR))
        # crop_flow divides by the enlarged box: scale back to the box itself.
        f = crop_flow(field, big, flow, PatchParams(ch // 2, cw // 2)) * CONTEXT
        flows.append(f.astype(np.float16))
    crops = CropSet(seq.name, np.concatenate(bgr), np.concatenate(flows), gt.ids[order] + source * 100_000,
                    gt.frames[order], gt.tlwh[order].astype(np.float32))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")   # one per process: two trainings may crop at once
    np.savez(tmp, bgr=crops.bgr, flow=crops.flow, ids=crops.ids, frames=crops.frames)
    tmp.replace(path)
    return crops


def reid_files(root: Path) -> list[tuple[Path, int, int]]:
    """The crops of a re-id folder as (file, identity, camera), in one of three layouts.

    - VIPeR: camera folders, ``<cam>/<id>_<anything>.jpg``;
    - CUHK03: flat ``<id>_<n>.jpg``, n 0-4 the first camera, 5-9 the second;
    - CUHK01: flat ``<id:4><n:3>.jpg``, n 1-2 the first camera, 3-4 the second.

    Raises:
        UserError: no crops, or a file name that fits none of the layouts.
    """
    nested = sorted(root.glob("*/*.jpg"))
    if nested:
        cams = sorted({f.parent.name for f in nested})
        try:
            return [(f, int(f.name.split("_")[0]), cams.index(f.parent.name)) for f in nested]
        except ValueError:
            raise UserError(f"{root}: re-id crops must be named <cam>/<id>_*.jpg") from None
    out = []
    for f in sorted(root.glob("*.jpg")):
        stem = f.stem
        if "_" in stem and stem.split("_")[0].isdigit() and stem.split("_")[1].isdigit():
            ident, n = (int(v) for v in stem.split("_")[:2])
            out.append((f, ident, int(n >= 5)))
        elif stem.isdigit() and len(stem) == 7:
            out.append((f, int(stem[:4]), int(int(stem[4:]) >= 3)))
        else:
            raise UserError(f"{f}: not a re-id crop name (<cam>/<id>_*.jpg, <id>_<n>.jpg or <id:4><n:3>.jpg)")
    if not out:
        raise UserError(f"{root}: no re-id crops (<cam>/<id>_*.jpg, <id>_<n>.jpg or <id:4><n:3>.jpg) found")
    return out


def load_reid_crops(root: Path, source: int, patch: PatchParams) -> CropSet:
    """Identity-labelled crops (VIPeR, CUHK01 or CUHK03 layout, see :func:`reid_files`), zero flow.

    Each crop is the person's box: it is resized into the central ``1/CONTEXT`` of a context crop
    and the border replicated around it, so it is framed as the video crops are.
    """
    ch, cw = context_size(patch)
    bh, bw = int(round(ch / CONTEXT)), int(round(cw / CONTEXT))
    top, left = (ch - bh) // 2, (cw - bw) // 2
    bgr, ids, frames = [], [], []
    for f, ident, cam in reid_files(root):
        image = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{f}: cannot read image")
        box = cv2.resize(image, (bw, bh), interpolation=cv2.INTER_AREA)
        bgr.append(cv2.copyMakeBorder(box, top, ch - bh - top, left, cw - bw - left, cv2.BORDER_REPLICATE))
        ids.append(ident + source * 100_000)
        frames.append(cam)
    flow = np.zeros((len(bgr), 2, ch // 2, cw // 2), np.float16)
    return CropSet(root.name, np.stack(bgr), flow, np.array(ids, np.int64), np.array(frames, np.int64))


def compress(bgr: np.ndarray, rng: np.random.Generator, prob: float, quality: tuple[int, int]) -> np.ndarray:
    """Re-encodes a share of the crops as JPEG at a low quality (a cheap proxy for H.264 artefacts).

    Args:
        bgr: (B, H, W, 3) uint8 crops (not changed).
        rng: the augmentation's random generator.
        prob: share of crops re-encoded.
        quality: (lowest, highest) JPEG quality drawn from.

    Returns:
        (B, H, W, 3) uint8.
    """
    out = bgr.copy()
    for i in np.flatnonzero(rng.random(len(bgr)) < prob):
        q = int(rng.integers(quality[0], quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out[i], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


class PKSampler:
    """Draws batches of P identities x K crops from a list of crop sets (seeded).

    With ``near_gap`` >= 0 the first two crops of each identity are at most that many frames apart
    (0: the same crop twice, which the augmentation then shifts, scales and recolours apart), so
    every batch holds the short-gap positives a tracker meets from frame to frame; the other K - 2
    crops span the window as before. With ``neighbours`` the P identities are the people nearest
    one person of the batch's first frame (box centres, in that person's heights), so the negatives
    are the people beside and in front of each other that a tracker confuses; without it (or for
    crops without boxes) they are any P people of the window.
    """

    def __init__(self, sets: list[CropSet], p: int, k: int, max_gap: int, seed: int, near_gap: int = -1,
                 neighbours: bool = False):
        self.sets = [s for s in sets if len(s)]
        self.p, self.k, self.max_gap, self.near_gap, self.neighbours = p, k, max_gap, near_gap, neighbours
        self.rng = np.random.default_rng(seed)
        sizes = np.array([len(s) for s in self.sets], np.float64)
        self.weights = sizes / sizes.sum()
        self.by_id = [{int(i): np.flatnonzero(s.ids == i) for i in np.unique(s.ids)} for s in self.sets]

    def batch(self) -> tuple[int, np.ndarray]:
        """Returns (set index, (P*K,) int64 row indices into that set)."""
        si = int(self.rng.choice(len(self.sets), p=self.weights))
        s, by_id = self.sets[si], self.by_id[si]
        t = int(self.rng.choice(s.frames))
        window = (s.frames >= t) & (s.frames <= t + self.max_gap)
        near = np.unique(s.ids[window])
        self.rng.shuffle(near)
        at_t = np.flatnonzero(s.frames == t) if self.neighbours and s.tlwh is not None else []
        if len(at_t) > 1:
            centre = s.tlwh[at_t, :2] + s.tlwh[at_t, 2:] / 2
            seed = int(self.rng.integers(len(at_t)))
            far = dict(zip(s.ids[at_t].tolist(),
                           np.linalg.norm(centre - centre[seed], axis=1) / s.tlwh[at_t[seed], 3]))
            # a stable sort: people of the window absent at t keep their shuffled order, last
            near = np.array(sorted(near, key=lambda i: far.get(int(i), np.inf)))
        chosen = list(near[:self.p])
        if len(chosen) < self.p:  # too few people around: fill with others of the same source
            others = np.setdiff1d(np.array(list(by_id)), chosen)
            chosen += list(self.rng.choice(others, min(self.p - len(chosen), len(others)), replace=False))
        rows = []
        for ident in chosen:
            cand = by_id[int(ident)]
            in_window = cand[window[cand]]
            pool = in_window if len(in_window) >= 2 else cand
            picked = self.rng.choice(pool, self.k, replace=len(pool) < self.k)
            if self.near_gap >= 0 and self.k >= 2:
                close = cand[np.abs(s.frames[cand] - s.frames[picked[0]]) <= self.near_gap]
                picked[1] = self.rng.choice(close)
            rows.append(picked)
        return si, np.concatenate(rows)


def occlude(x: torch.Tensor, ids: np.ndarray, rng: np.random.Generator, prob: float,
            cover: tuple[float, float] = (0.3, 0.7), zoom: float = 1.0) -> torch.Tensor:
    """Puts another person in front of a ``prob`` share of the patches (in place).

    The chosen patch's left or right side, a ``cover`` share of its width and its whole height, is
    replaced by the middle of another identity's patch from the same batch (their body, with its
    flow), as when one person walks in front of another. Patches with no other identity in the
    batch are left alone.

    With ``zoom`` > 1 the occluder is also nearer the camera than the person behind it, so larger:
    each one is magnified by a factor drawn log-uniformly in [1, ``zoom``], its window (the
    covered width and the whole height, divided by that factor) taken from the middle of its width
    at a random height. A street scene's near passer-by is several times the height of a distant
    person, and covers that person's box with part of a torso or a leg, not with a whole body.

    Args:
        x: (B, C, H, W) float32 network inputs; ids: (B,) identities.

    Returns:
        ``x``.
    """
    h, w = x.shape[2:]
    chosen = np.flatnonzero(rng.random(len(x)) < prob)
    source = x.clone() if len(chosen) else x      # occluders are taken as they were, not already occluded
    for i in chosen:
        others = np.flatnonzero(ids != ids[i])
        if not len(others):
            continue
        j = int(rng.choice(others))
        width = max(1, int(round(rng.uniform(*cover) * w)))
        left = 0 if rng.random() < 0.5 else w - width
        if zoom > 1:
            z = float(np.exp(rng.uniform(0.0, np.log(zoom))))
            win_w, win_h = max(1, int(round(width / z))), max(1, int(round(h / z)))
            top = int(rng.integers(0, h - win_h + 1))
            start = (w - win_w) // 2
            window = source[j:j + 1, :, top:top + win_h, start:start + win_w]
            x[i, :, :, left:left + width] = F.interpolate(window, size=(h, width), mode="bilinear",
                                                          align_corners=False)[0]
        else:
            start = (w - width) // 2
            x[i, :, :, left:left + width] = source[j, :, :, start:start + width]
    return x


def make_inputs(crops: CropSet, rows: np.ndarray, patch: PatchParams, use_flow: bool,
                rng: np.random.Generator | None, jpeg_prob: float = 0.0,
                jpeg_quality: tuple[int, int] = (10, 50), occlude_prob: float = 0.0,
                occlude_zoom: float = 1.0) -> torch.Tensor:
    """Network inputs for cached crops, augmented when ``rng`` is given.

    Augmentation: compression (a ``jpeg_prob`` share of the crops re-encoded as JPEG at a quality in
    ``jpeg_quality``), box jitter (shift up to 8% of the box, scale 0.9 to 1.1), brightness and
    contrast of L, a horizontal flip of patch and flow together (the x flow changes sign), and an
    ``occlude_prob`` share of the patches half hidden behind another person of the batch, magnified
    up to ``occlude_zoom`` times (:func:`occlude`).

    Returns:
        (B, 5 or 3, height, width) float32.
    """
    bgr = crops.bgr[rows]
    if rng is not None and jpeg_prob > 0:
        bgr = compress(bgr, rng, jpeg_prob, jpeg_quality)
    luv = torch.from_numpy(bgr_to_luv_normalised(bgr))
    x = luv
    if use_flow:
        flow = torch.from_numpy(crops.flow[rows].astype(np.float32))
        x = torch.cat([luv, F.interpolate(flow, size=luv.shape[2:], mode="bilinear", align_corners=False)], 1)
    b = len(rows)
    scale = torch.full((b,), 1.0 / CONTEXT)
    shift = torch.zeros(b, 2)
    flip = torch.zeros(b, dtype=torch.bool)
    if rng is not None:
        scale = scale * torch.from_numpy(rng.uniform(0.9, 1.1, b).astype(np.float32))
        shift = torch.from_numpy(rng.uniform(-0.08, 0.08, (b, 2)).astype(np.float32)) * 2 / CONTEXT
        flip = torch.from_numpy(rng.random(b) < 0.5)
        gain = torch.from_numpy(rng.uniform(0.75, 1.25, b).astype(np.float32))
        bias = torch.from_numpy(rng.uniform(-0.3, 0.3, b).astype(np.float32))
        x[:, 0] = x[:, 0] * gain[:, None, None] + bias[:, None, None]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -scale, scale)
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, [b, x.shape[1], patch.height, patch.width], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if use_flow:
        out[:, 3] = torch.where(flip[:, None, None], -out[:, 3], out[:, 3])
    if rng is not None and occlude_prob > 0:
        occlude(out, crops.ids[rows], rng, occlude_prob, zoom=occlude_zoom)
    return out
