"""Training the SiamMask head on top of the frozen SiamRPN (``scripts/train_siammask.py``).

The SiamRPN network (backbone, class and box branches) is loaded and frozen; only the mask head
(:class:`mot.siammask.MaskHead`) learns, with per-pixel binary cross-entropy over the window of the
score-map position that covers the target (ignore regions weigh nothing). No epoch is chosen on
held-out data: the run has a fixed number of steps, so a held-out sequence stays unseen.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mot.errors import UserError
from mot.siammask import MaskHead, backbone_levels, save_mask_weights
from mot.siamrpn import load_weights, normalise
from mot.training.siammask_data import MaskBank, parse_source, sample_mask_pair
from mot.training.siamrpn_data import Augment
from mot.weights import resolve


@dataclass
class MaskTrainParams:
    """Everything that fixes a training run (saved with the weights)."""

    sources: list[str] = field(default_factory=list)   # "pennfudan" and/or MOT17 sequence folders
    mask_root: str = ""          # the data/masks folder (PennFudanPed/, MOTS/)
    siamrpn: str = "siamrpn.pt"  # the frozen SiamRPN (shipped name or path)
    steps: int = 2500
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    frame_step: int = 4          # MOTS: every this many frames of each instance
    min_height: float = 40.0     # instances lower than this (pixels) are left out
    seed: int = 0
    threads: int = 1
    augment: Augment = field(default_factory=lambda: Augment(max_delta=8, max_shift=16.0, max_scale=1.15,
                                                             negative_rate=0.0, flip_rate=0.5))


def _batch(bank, rng, p: MaskTrainParams):
    pairs = [sample_mask_pair(bank, rng, p.augment) for _ in range(p.batch_size)]
    z, x, pos, target, weight = (np.stack([q[i] for q in pairs]) for i in range(5))
    return (torch.from_numpy(normalise(z)), torch.from_numpy(normalise(x)), torch.from_numpy(pos),
            torch.from_numpy(target), torch.from_numpy(weight))


def mask_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted per-pixel BCE: (B, m, m) logits, soft targets in [0, 1], weights (0: ignored)."""
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * weight).sum() / weight.sum().clamp(min=1.0)


def window_iou(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    """(B,) IoU of the thresholded prediction with the target (> 0.5) over the non-ignored pixels."""
    pred, true = (logits > 0) & (weight > 0), (target > 0.5) & (weight > 0)
    inter = (pred & true).flatten(1).sum(1).float()
    union = (pred | true).flatten(1).sum(1).float()
    return (inter / union.clamp(min=1)).numpy()


def _forward(net, head, z, x, pos):
    with torch.no_grad():
        tfeat = net.backbone(z)
        levels = backbone_levels(net, x)
    return head(head.template(tfeat), levels, pos)


def train_mask(p: MaskTrainParams, out: str | Path, command: str = "", progress: bool = True) -> dict:
    """Trains the head for ``p.steps`` steps and saves it to ``out`` with its metadata.

    Returns:
        A summary: loss and window IoU per 100 steps (on the training pairs), seconds.
    """
    if not p.sources:
        raise UserError("training needs at least one source (pennfudan or a MOT17 sequence folder)")
    torch.set_num_threads(p.threads)
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    start = time.perf_counter()
    net, _ = load_weights(resolve(p.siamrpn))
    for q in net.parameters():
        q.requires_grad_(False)
    bank = MaskBank([parse_source(s, Path(p.mask_root)) for s in p.sources], net.geometry, p.frame_step,
                    p.min_height, progress)
    head = MaskHead(net.geometry)
    opt = torch.optim.AdamW(head.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=p.steps, pct_start=0.1)
    history, sums = [], np.zeros(2)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=p.steps, desc="siammask", unit="step")
    head.train()
    for step in range(1, p.steps + 1):
        z, x, pos, target, weight = _batch(bank, rng, p)
        logits = _forward(net, head, z, x, pos)
        loss = mask_loss(logits, target, weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        sums += (loss.item(), float(window_iou(logits.detach(), target, weight).mean()))
        if bar is not None:
            bar.update(1)
        if step % 100 == 0 or step == p.steps:
            k = step % 100 or 100
            row = {"step": step, "loss": round(sums[0] / k, 4), "window_iou": round(sums[1] / k, 4)}
            history.append(row)
            sums[:] = 0
            if bar is not None:
                bar.write(json.dumps(row))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    summary = {"history": history, "seconds": round(seconds, 1), "sources": [Path(s).name for s in p.sources],
               "instances": len(bank.tracks), "crops": int(len(bank.crops))}
    save_mask_weights(out, head.eval(), {"command": command, "summary": json.dumps(summary),
                                         "params": json.dumps(dataclasses.asdict(p))})
    return summary
