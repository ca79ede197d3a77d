"""Trains the foreground map (``association/foreground.py``) on pedestrian instance masks, and
attaches a trained map to Siamese weights.

The map learns which pixels of a box belong to the person the box is centred on. Its training
crops are cut at a pedestrian's box and labelled with that person's mask, other people counting as
background:
- **Penn-Fudan** (``masks/PennFudanPed``): each mask's own extent as the box.
- **MOTS** (``masks/MOTS/<seq>``, frames and ``gt.txt`` of the MOT17 sequence of that name): the
  MOT17 ground-truth box of each instance (pedestrian, consider flag), kept when at least
  ``min_inside`` of the instance's pixels fall inside it (MOTS and MOT17 part ways on a few ids);
  MOTS ignore regions weigh nothing.
Each crop also gets a jittered copy (scale and shift within ``jitter``): a detector's misfit.
A study leaves a scene's masks out (``--without MOT17-05``) so that its fold's map never saw it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.errors import UserError

IGNORE = 255    #: the MOTS ignore region's value in the masks of ``../data/masks/MOTS``
MAP_VERSION = 1


@dataclass
class ForegroundParams:
    """The map's training recipe (docs/appearance-last-cell.md, "A foreground map")."""

    steps: int = 3000
    batch: int = 64
    lr: float = 0.003            # the one-cycle schedule's peak (AdamW)
    weight_decay: float = 1e-4
    every: int = 2               # MOTS: every n-th frame
    min_inside: float = 0.5      # MOTS: the instance's pixels inside its MOT17 box, at least
    jitter: float = 0.1          # the jittered copy's scale and shift, as a fraction of the box
    val_fraction: float = 0.1    # source images held out for the validation IoU
    patch_height: int = 64
    patch_width: int = 32
    seed: int = 0
    threads: int = 1


@dataclass
class Crops:
    """Training crops: ``bgr`` (N, H, W, 3) uint8 patches, ``target`` (N, H/2, W/2) float32 share of
    each cell that is the centred person, ``weight`` (N, H/2, W/2) float32 (0 in ignore regions),
    ``source`` (N,) int64 the image each came from (validation splits by it)."""

    bgr: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    source: np.ndarray


def instance_crops(image: np.ndarray, mask: np.ndarray, tlwh: np.ndarray, ids: np.ndarray,
                   params: ForegroundParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of one image at the given boxes, each labelled with its own instance's pixels.

    Args:
        image: (H, W, 3) uint8 BGR.
        mask: (H, W) uint8 instance labels (0 background, ``IGNORE`` an ignore region).
        tlwh: (N, 4) float32 boxes, 0-based pixels.
        ids: (N,) the instance each box is centred on.

    Returns:
        ``bgr`` (N, h, w, 3) uint8, ``target`` and ``weight`` (N, h/2, w/2) float32.
    """
    from association.patches import PAD_BGR, crop_resize

    h, w = params.patch_height, params.patch_width
    bgr = crop_resize(image, tlwh, h, w, pad_value=PAD_BGR)
    ignore = crop_resize((mask == IGNORE).astype(np.float32)[:, :, None], tlwh, h // 2, w // 2)[..., 0]
    boxes = np.asarray(tlwh, np.float32).reshape(-1, 4)
    target = np.zeros((len(boxes), h // 2, w // 2), np.float32)
    for n, (i, box) in enumerate(zip(ids, boxes)):
        target[n] = crop_resize((mask == i).astype(np.float32)[:, :, None], box[None], h // 2, w // 2)[0, ..., 0]
    return bgr, target, (1.0 - ignore).astype(np.float32)


def _jittered(tlwh: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    x, y, w, h = tlwh.T
    s = 1 + rng.uniform(-jitter, jitter, (2, len(tlwh)))
    cx = x + w / 2 + rng.uniform(-jitter, jitter, len(tlwh)) * w
    cy = y + h / 2 + rng.uniform(-jitter, jitter, len(tlwh)) * h
    return np.stack([cx - w * s[0] / 2, cy - h * s[1] / 2, w * s[0], h * s[1]], 1).astype(np.float32)


def _read(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise UserError(f"{path}: missing or unreadable image")
    return image


def penn_fudan(root: Path):
    """Yields ``(image, mask, tlwh, ids)`` per Penn-Fudan photo, each mask's extent as its box."""
    for mask_path in sorted((root / "masks").glob("*_mask.png")):
        mask = _read(mask_path, cv2.IMREAD_UNCHANGED)
        image = _read(root / "images" / (mask_path.name[:-len("_mask.png")] + ".jpg"), cv2.IMREAD_COLOR)
        ids = np.array([i for i in np.unique(mask) if 0 < i < IGNORE])
        boxes = []
        for i in ids:
            ys, xs = np.nonzero(mask == i)
            boxes.append([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
        yield image, mask, np.array(boxes, np.float32).reshape(-1, 4), ids


def mots(mask_dir: Path, seq_dir: Path, params: ForegroundParams):
    """Yields ``(image, mask, tlwh, ids)`` per ``every``-th MOTS frame, at the MOT17 gt boxes."""
    from mot.training import open_annotated

    seq, gt, keep, _ = open_annotated(seq_dir)
    for frame in range(1, seq.info.seq_length + 1, params.every):
        mask_path = mask_dir / f"{frame:06d}.png"
        if not mask_path.is_file():
            continue
        mask = _read(mask_path, cv2.IMREAD_UNCHANGED)
        rows = np.nonzero(keep & (gt.frames == frame))[0]
        boxes, ids = [], []
        for r in rows:
            pixels = mask == gt.ids[r]
            total = int(pixels.sum())
            if total == 0:
                continue
            x, y, w, h = gt.tlwh[r]
            x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
            inside = int(pixels[y0:int(round(y + h)), x0:int(round(x + w))].sum())
            if inside >= params.min_inside * total:
                boxes.append(gt.tlwh[r])
                ids.append(gt.ids[r])
        if ids:
            yield _read(seq.frame_path(frame), cv2.IMREAD_COLOR), mask, np.array(boxes, np.float32), np.array(ids)


def collect_crops(masks: Path, frames: Path, without: list[str], params: ForegroundParams) -> tuple[Crops, dict]:
    """Every training crop of ``masks`` (``PennFudanPed``, ``MOTS/<seq>``; frames of ``<seq>`` under
    ``frames``), each with its jittered copy; MOTS sequences named in ``without`` are left out."""
    masks, frames = Path(masks), Path(frames)
    if not (masks / "PennFudanPed" / "masks").is_dir():
        raise UserError(f"{masks}: no PennFudanPed/masks folder (lay the data out with ../shared/data/unpack.py)")
    sources = [("PennFudanPed", penn_fudan(masks / "PennFudanPed"))]
    mots_dirs = sorted(p for p in (masks / "MOTS").glob("*") if p.is_dir())
    unknown = sorted(set(without) - {p.name for p in mots_dirs})
    if unknown:      # a misspelt fold would otherwise train on the scene it must not see
        raise UserError(f"--without {', '.join(unknown)}: no such MOTS sequence under {masks / 'MOTS'} "
                        f"({', '.join(p.name for p in mots_dirs) or 'none'})")
    for mask_dir in mots_dirs:
        if mask_dir.name in without:
            continue
        if not (frames / mask_dir.name).is_dir():
            raise UserError(f"{frames / mask_dir.name}: the frames of MOTS's {mask_dir.name} are not there")
        sources.append((mask_dir.name, mots(mask_dir, frames / mask_dir.name, params)))
    rng = np.random.default_rng(params.seed)
    parts, counts, image_no = [], {}, 0
    for name, items in sources:
        n = 0
        for image, mask, tlwh, ids in items:
            for boxes in (tlwh, _jittered(tlwh, rng, params.jitter)):
                bgr, target, weight = instance_crops(image, mask, boxes, ids, params)
                parts.append((bgr, target, weight, np.full(len(ids), image_no)))
                n += len(ids)
            image_no += 1
        counts[name] = n
    if not parts:
        raise UserError(f"{masks}: no pedestrian masks found")
    crops = Crops(*(np.concatenate(p) for p in zip(*parts)))
    return crops, {"crops": counts, "images": image_no}


def _batch(crops: Crops, index: np.ndarray, rng: np.random.Generator, augment: bool):
    import torch

    from association.patches import bgr_to_luv_normalised

    bgr, target, weight = crops.bgr[index], crops.target[index], crops.weight[index]
    if augment:
        flip = rng.random(len(index)) < 0.5
        for a in (bgr, target, weight):        # copies already (fancy indexing)
            a[flip] = a[flip][:, :, ::-1]
        gain = rng.uniform(0.7, 1.3, (len(index), 1, 1, 3))
        bgr = np.clip(bgr * gain + rng.uniform(-20, 20, (len(index), 1, 1, 1)), 0, 255).astype(np.uint8)
    return (torch.from_numpy(bgr_to_luv_normalised(np.ascontiguousarray(bgr))),
            torch.from_numpy(np.ascontiguousarray(target)), torch.from_numpy(np.ascontiguousarray(weight)))


def mask_iou(net, crops: Crops, index: np.ndarray, batch: int = 256) -> float:
    """Pooled IoU of the map (p > 0.5) with the centred person's mask (share > 0.5) over ``index``,
    ignore regions left out."""
    import torch

    inter = union = 0.0
    net.eval()
    with torch.no_grad():
        for i in range(0, len(index), batch):
            x, target, weight = _batch(crops, index[i:i + batch], None, False)
            pred, true, counted = net(x) > 0, target > 0.5, weight > 0.5
            inter += float((pred & true & counted).sum())
            union += float(((pred | true) & counted).sum())
    return inter / max(union, 1.0)


def train_foreground(crops: Crops, params: ForegroundParams, log=print):
    """Fits a :class:`association.foreground.ForegroundNet`: per-pixel cross-entropy weighted by
    ``crops.weight``, AdamW with a one-cycle schedule, flips and colour jitter.

    Returns:
        ``(net, facts)``: the network (eval mode) and its training facts (validation IoU, time).
    """
    import torch
    import torch.nn.functional as F

    from association.foreground import ForegroundNet

    torch.set_num_threads(params.threads)
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    sources = np.unique(crops.source)
    held = rng.choice(sources, max(1, int(round(params.val_fraction * len(sources)))), replace=False)
    val = np.flatnonzero(np.isin(crops.source, held))
    train = np.flatnonzero(~np.isin(crops.source, held))
    if len(train) == 0:
        raise UserError("foreground training needs crops from two or more images")
    net = ForegroundNet()
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=params.steps)
    start = time.perf_counter()
    for step in range(params.steps):
        net.train()
        x, target, weight = _batch(crops, rng.choice(train, params.batch), rng, True)
        loss = (F.binary_cross_entropy_with_logits(net(x), target, reduction="none") * weight).sum() / weight.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % 500 == 0:
            log(f"step {step + 1}: loss {loss.item():.4f}")
    facts = {"train_crops": int(len(train)), "val_crops": int(len(val)), "val_iou": round(mask_iou(net, crops, val), 4),
             "seconds": round(time.perf_counter() - start, 1), "params": asdict(params)}
    return net.eval(), facts


# ----------------------------------------------------------------------------- files

def save_map(path: str | Path, net, meta: dict) -> None:
    """Writes a map file: its state dict and metadata (loadable with ``weights_only``), atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "meta": dict(meta, kind="foreground", version=MAP_VERSION)}, tmp)
    tmp.replace(path)


def load_map(path: str | Path):
    """Reads a map file written by :func:`save_map`: ``(net, meta)``.

    Raises:
        UserError: missing, damaged, or not a foreground map.
    """
    from association.backbone import safe_load
    from association.foreground import ForegroundNet

    blob = safe_load(path, "foreground map")
    if not isinstance(blob, dict) or not isinstance(blob.get("meta"), dict) or blob["meta"].get("kind") != "foreground":
        raise UserError(f"{path}: not a foreground map file")
    net = ForegroundNet()
    try:
        net.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise UserError(f"{path}: the map's weights do not fit ForegroundNet ({str(exc).splitlines()[0][:120]})") from None
    return net.eval(), blob["meta"]


def attach(siamese: str | Path, map_path: str | Path, out: str | Path, floor: float, mix: float,
           share: dict | None = None) -> dict:
    """Writes ``out``: the Siamese weights ``siamese`` with the map of ``map_path`` as its foreground
    layer (``SiameseNet(foreground_floor=floor, foreground_mix=mix)``); nothing else changes. A
    ``share`` table ``{gap: share}`` goes into the metadata as the weights' ``foreground_share``
    (``association.foreground.ForegroundByGap``: the weighted colours' share by frame gap).

    Raises:
        UserError: a file is missing or damaged, the weights are not a cost-function network with a
            colour layer, or the map was trained on another patch size.
    """
    from association.backbone import safe_load
    from association.siamese import build_branch, save_weights

    fg, fg_meta = load_map(map_path)
    blob = safe_load(siamese, "Siamese weights")
    meta = blob.get("meta") if isinstance(blob, dict) else None
    if not isinstance(meta, dict) or "state_dict" not in blob:
        raise UserError(f"{siamese}: not a Siamese weights file (no state_dict/meta)")
    if meta.get("topology", "cost_function") != "cost_function" or not meta.get("hist_stripes"):
        raise UserError(f"{siamese}: a foreground map needs the cost-function topology with a colour layer")
    if [meta.get("patch_height"), meta.get("patch_width")] != fg_meta.get("patch"):
        raise UserError(f"{map_path}: the map was trained on {fg_meta.get('patch')} patches, the weights read "
                        f"{[meta.get('patch_height'), meta.get('patch_width')]}")
    meta = {k: v for k, v in meta.items() if k not in ("version", "foreground_share")} | {
        "foreground_floor": float(floor), "foreground_mix": float(mix), "foreground_training": fg_meta.get("training", {})}
    if share:
        from association.crowd import check_table

        problem = check_table(share, "foreground_share", "foreground shares")
        if problem:
            raise UserError(problem)
        meta["foreground_share"] = {int(g): float(v) for g, v in sorted(share.items(), key=lambda kv: int(kv[0]))}
    try:
        net = build_branch(meta)
        state = {k: v for k, v in blob["state_dict"].items() if not k.startswith("fg.")}
        net.load_state_dict(state | {f"fg.{k}": v for k, v in fg.state_dict().items()})
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{siamese}: cannot take the map ({str(exc).splitlines()[0][:120]})") from None
    save_weights(out, net, meta)
    return meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_foreground", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masks", help="the masks folder (PennFudanPed/, MOTS/<seq>/)")
    parser.add_argument("--frames", help="the folder holding the MOT17 sequences the MOTS masks are of")
    parser.add_argument("--without", nargs="*", default=[], help="MOTS sequences left out (a study's fold)")
    parser.add_argument("--out", help="the map file to write")
    parser.add_argument("--map", help="an existing map file: attach it instead of training one")
    parser.add_argument("--attach", nargs="*", default=[], metavar="IN=OUT",
                        help="Siamese weights to write again with the map as their foreground layer")
    parser.add_argument("--floor", type=float, default=0.1, help="the map's weight floor (foreground_floor)")
    parser.add_argument("--mix", type=float, default=0.5, help="the weighted colours' share (foreground_mix)")
    parser.add_argument("--share", nargs="*", default=[], metavar="GAP=SHARE",
                        help="the weighted colours' share by frame gap, kept in the weights (foreground_share)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a ForegroundParams field")
    args = parser.parse_args(argv)
    from association.crowd import check_table
    from mot.config import from_dict, parse_override

    try:     # every option is checked before minutes of training
        share = {".".join(k): v for k, v in map(parse_override, args.share)}
        problem = check_table(share, "--share", "foreground shares") if share else None
        if problem:
            raise UserError(problem)
        pairs = [pair.partition("=")[::2] for pair in args.attach]
        bad = [a for a, (src, dst) in zip(args.attach, pairs) if not src or not dst or "=" not in a]
        if bad:
            raise UserError(f"--attach takes IN=OUT, got {bad[0]!r}")
        if args.map:
            map_path = args.map
        else:
            if not (args.masks and args.frames and args.out):
                raise UserError("training a map needs --masks, --frames and --out (or give --map)")
            params = from_dict(ForegroundParams, {".".join(k): v for k, v in map(parse_override, args.set)},
                               "foreground")
            crops, facts = collect_crops(Path(args.masks), Path(args.frames), args.without, params)
            net, trained = train_foreground(crops, params)
            facts |= trained | {"without": args.without}
            save_map(args.out, net, {"patch": [params.patch_height, params.patch_width], "training": facts})
            print(json.dumps(facts))
            map_path = args.out
        for src, dst in pairs:
            attach(src, map_path, dst, args.floor, args.mix, share)
            print(f"{dst}: {src} with the map of {map_path}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
