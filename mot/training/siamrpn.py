"""Training the SiamRPN refiner on template/search pairs of the same identity (``scripts/train_siamrpn.py``).

Pairs come from ground-truth tracks of MOTChallenge sequences and from OTB/VOT single-object
sequences (:mod:`mot.training.siamrpn_data`); anchors are labelled by IoU; the loss is cross-entropy over a
sample of positive and negative anchors plus smooth-L1 on the positives' offsets. Validation uses
whole held-out sequences (never frames of a training sequence): mean IoU of the top-scoring box
with the target, on a fixed seeded set of pairs; the best epoch is kept.
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
from mot.geometry import iou_matrix
from mot.siamrpn import Geometry, SiamRPNNet, assign_targets, decode, make_anchors, normalise, save_weights
from mot.training.siamrpn_data import Augment, CropBank, sample_pair


@dataclass
class TrainParams:
    """Everything that fixes a training run (saved with the weights)."""

    train: list[str] = field(default_factory=list)   # sequence folders (MOT or SOT) to train on
    val: list[str] = field(default_factory=list)     # whole held-out sequence folders
    epochs: int = 8
    steps_per_epoch: int = 120
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    pos_iou: float = 0.6          # anchors with IoU >= this are positive
    neg_iou: float = 0.3          # anchors with IoU < this are negative
    pos_per_pair: int = 16        # positives sampled per pair for the loss
    anchors_per_pair: int = 64    # positives + negatives sampled per pair
    loc_weight: float = 1.2       # weight of smooth-L1 against cross-entropy
    val_pairs: int = 256
    seed: int = 0
    threads: int = 1
    geometry: Geometry = field(default_factory=Geometry)
    augment: Augment = field(default_factory=Augment)


def _batch(bank, rng, p: TrainParams, anchors: np.ndarray):
    zs, xs, labels, deltas = [], [], [], []
    for _ in range(p.batch_size):
        z, x, box, positive = sample_pair(bank, rng, p.geometry, p.augment)
        lab, dl = assign_targets(anchors, box, p.pos_iou, p.neg_iou)
        if not positive:
            lab[:] = 0
        lab = lab.reshape(-1)
        pos, neg = np.nonzero(lab == 1)[0], np.nonzero(lab == 0)[0]
        keep_pos = rng.permutation(pos)[:p.pos_per_pair]
        keep_neg = rng.permutation(neg)[:p.anchors_per_pair - len(keep_pos)]
        sampled = np.full(lab.shape, -1, np.int64)
        sampled[keep_pos], sampled[keep_neg] = 1, 0
        zs.append(z)
        xs.append(x)
        labels.append(sampled)
        deltas.append(dl.reshape(-1, 4))
    return (torch.from_numpy(normalise(np.stack(zs))), torch.from_numpy(normalise(np.stack(xs))),
            torch.from_numpy(np.stack(labels)), torch.from_numpy(np.stack(deltas)))


def rpn_loss(cls, loc, labels, deltas, loc_weight: float):
    """Cross-entropy on sampled anchors (positives and negatives weighted equally as groups) plus
    smooth-L1 on the positives.

    Args:
        cls: (B, k, 2, n, n) logits; loc: (B, k, 4, n, n) offsets.
        labels: (B, A) int64 1/0/-1 (ignored); deltas: (B, A, 4) float32 targets, A = k n n.
    """
    b = cls.shape[0]
    logits = cls.permute(0, 1, 3, 4, 2).reshape(b, -1, 2)
    pred = loc.permute(0, 1, 3, 4, 2).reshape(b, -1, 4)
    pos, neg = labels == 1, labels == 0
    ce = F.cross_entropy(logits.reshape(-1, 2), labels.clamp(min=0).reshape(-1), reduction="none").reshape(b, -1)
    cls_loss = 0.5 * (ce[pos].mean() if pos.any() else ce.sum() * 0) + 0.5 * (ce[neg].mean() if neg.any() else ce.sum() * 0)
    loc_loss = F.smooth_l1_loss(pred[pos], deltas[pos]) if pos.any() else pred.sum() * 0
    return cls_loss + loc_weight * loc_loss, float(cls_loss.detach()), float(loc_loss.detach())


@torch.no_grad()
def validate(net: SiamRPNNet, batches, anchors_t: torch.Tensor) -> float:
    """Mean IoU of the top-scoring anchor's decoded box with the target over positive pairs."""
    net.eval()
    ious = []
    for z, x, boxes in batches:
        cls, loc = net(z, x)
        b = cls.shape[0]
        score = torch.softmax(cls, dim=2)[:, :, 1].reshape(b, -1)
        pred = decode(anchors_t[None], loc.permute(0, 1, 3, 4, 2).reshape(b, -1, 4))
        best = pred[torch.arange(b), score.argmax(1)].numpy()
        for p, g in zip(best, boxes):
            ious.append(iou_matrix(_xyxy(p), _xyxy(g))[0, 0])
    net.train()
    return float(np.mean(ious)) if ious else 0.0


def _xyxy(c):
    c = np.asarray(c, np.float32).reshape(1, 4)
    return np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)


def _val_batches(bank, p: TrainParams):
    rng = np.random.default_rng(p.seed + 1)
    aug = dataclasses.replace(p.augment, negative_rate=0.0)
    out = []
    for start in range(0, p.val_pairs, p.batch_size):
        pairs = [sample_pair(bank, rng, p.geometry, aug) for _ in range(min(p.batch_size, p.val_pairs - start))]
        out.append((torch.from_numpy(normalise(np.stack([q[0] for q in pairs]))),
                    torch.from_numpy(normalise(np.stack([q[1] for q in pairs]))),
                    np.stack([q[2] for q in pairs])))
    return out


def train(p: TrainParams, out: str | Path, command: str = "", progress: bool = True) -> dict:
    """Trains and saves the best-validation weights to ``out`` (with their metadata).

    Returns:
        A summary: per-epoch losses and validation IoU, the best epoch, seconds.

    Raises:
        UserError: no training or validation sequences, or one of them shared by both.
    """
    problem = p.geometry.validate()
    if problem:
        raise UserError(f"geometry: {problem}")
    if not p.train or not p.val:
        raise UserError("training needs --train and --val sequences")
    names = [Path(f).name for f in p.train], [Path(f).name for f in p.val]
    if set(names[0]) & set(names[1]):
        raise UserError(f"sequence {sorted(set(names[0]) & set(names[1]))[0]} is in both --train and --val")
    torch.set_num_threads(p.threads)
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    start = time.perf_counter()
    bank = CropBank([Path(f) for f in p.train], p.geometry, progress)
    val_bank = CropBank([Path(f) for f in p.val], p.geometry, progress)
    if not bank.tracks or not val_bank.tracks:
        raise UserError("no target with two or more frames in the training or validation sequences")
    anchors = make_anchors(p.geometry)
    anchors_t = torch.from_numpy(anchors.reshape(-1, 4))
    val_batches = _val_batches(val_bank, p)
    net = SiamRPNNet(p.geometry)
    opt = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    total = p.epochs * p.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p.lr, total_steps=total, pct_start=0.1)
    history, best, best_state = [], -1.0, None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="siamrpn", unit="step")
    for epoch in range(p.epochs):
        sums = np.zeros(3)
        for _ in range(p.steps_per_epoch):
            z, x, labels, deltas = _batch(bank, rng, p, anchors)
            cls, loc = net(z, x)
            loss, c, l = rpn_loss(cls, loc, labels, deltas, p.loc_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            sums += (loss.item(), c, l)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}")
        val_iou = validate(net, val_batches, anchors_t)
        row = {"epoch": epoch + 1, "loss": round(sums[0] / p.steps_per_epoch, 4),
               "cls": round(sums[1] / p.steps_per_epoch, 4), "loc": round(sums[2] / p.steps_per_epoch, 4),
               "val_iou": round(val_iou, 4)}
        history.append(row)
        if bar is not None:
            bar.write(json.dumps(row))
        if val_iou > best:
            best, best_state = val_iou, {k: v.clone() for k, v in net.state_dict().items()}
    if bar is not None:
        bar.close()
    net.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    summary = {"history": history, "best_val_iou": round(best, 4),
               "best_epoch": int(np.argmax([h["val_iou"] for h in history]) + 1), "seconds": round(seconds, 1),
               "train": names[0], "val": names[1], "crops": int(len(bank.crops))}
    save_weights(out, net.eval(), {"command": command, "summary": json.dumps(summary),
                                   "params": json.dumps(dataclasses.asdict(p))})
    return summary
