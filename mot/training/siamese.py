"""Training the Siamese appearance network from ground-truth tracks (``scripts/train_siamese.py``).

Validation is by whole held-out sequences: a sequence named in ``val`` never gives a training crop.
Training is seeded; it stops early when the validation loss has not improved for ``patience``
evaluations, or at ``max_iters`` or ``max_minutes``, and saves the best weights with their metadata.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from association.flow import FlowParams
from association.patches import PatchParams
from association.backbone import load_imagenet
from association.siamese import BACKBONES, LOSSES, SiameseNet, network_meta, save_weights
from association.topologies import TOPOLOGIES, InNetworkNet, JointNet, balanced_bce, build_network
from mot.training.siamese_data import CropSet, PKSampler, load_reid_crops, load_sequence_crops, make_inputs
from mot.errors import UserError
from mot.sequence import discover


@dataclass
class TrainParams:
    """Everything a training run depends on (saved, with the result, in the weights metadata)."""

    # MOT17's seven scenes and the VIPeR crops train; two 2DMOT2015 scenes of other kinds (street
    # level, elevated) choose the stopping point. No 2DMOT2015 sequence is trained on, so every one of
    # them can be left out of the matcher's training too (trained on ADL-Rundle-6 and PETS09-S2L1
    # instead, the network fitted those scenes and did worse on the street-level ones).
    train: list[str] = field(default_factory=lambda: ["MOT17-*"])
    val: list[str] = field(default_factory=lambda: ["TUD-Campus", "PETS09-S3-MF1"])
    reid_fraction: float = 0.5    # share of batches drawn from the re-id crops (when given)
    use_flow: bool = True
    topology: str = "cost_function"   # cost_function | in_network | joint (association/topologies.py)
    backbone: str = "plain"       # plain | mobilenetv2 (ImageNet weights: train(pretrained=...))
    depth: int = 14               # MobileNetV2 feature modules kept (14: up to stride 16, 96 channels)
    backbone_lr_scale: float = 1.0  # the pretrained backbone's learning rate relative to lr
    patch_height: int = 128
    patch_width: int = 64
    embedding_dim: int = 128
    width: int = 32
    hist_stripes: int = 4         # colour-histogram branch beside the CNN (0: the CNN alone)
    hist_levels: int = 1          # its pyramid: hist_stripes, hist_stripes / 2, ... stripes (1: no pyramid)
    hist_share: float = 0.9       # its share of the squared embedding distance
    loss: str = "contrastive"     # contrastive | triplet (batch-hard; collapsed in our CPU budget)
    margin: float = 1.0
    p: int = 16                   # identities per batch
    k: int = 4                    # crops per identity
    max_gap: int = 30             # frames between the crops of one identity in a batch
    near_gap: int = -1            # >= 0: two of each identity's crops at most this many frames apart (-1: off)
    half_weight: float = 0.0      # weight of the loss on each half (colour, CNN) alone, beside the joined one
    neighbours: bool = False      # a batch's people: those nearest one person in one frame (not any in the window)
    min_visibility: float = 0.3   # MOT16/17 boxes less visible than this give no crop (2DMOT2015 has no visibility)
    occlude_prob: float = 0.0     # share of training patches half hidden behind another person of the batch
    occlude_zoom: float = 1.0     # the occluder magnified up to this many times (nearer the camera; 1: same scale)
    joint_pairs: int = 64         # pairs per batch for the joint topology (half positive)
    jpeg_prob: float = 0.0        # share of training crops re-encoded as JPEG (compression)
    jpeg_quality_min: int = 10
    jpeg_quality_max: int = 50
    lr: float = 1e-3
    weight_decay: float = 5e-4
    max_iters: int = 3000         # length of the cosine learning-rate schedule
    stop_after: int = 0           # end at this iteration without changing the schedule (0: run it all)
    eval_every: int = 150
    patience: int = 5             # evaluations without improvement before stopping
    max_minutes: float = 60.0     # a wall-clock cap (a run cut by it is reproduced with stop_after)
    val_batches: int = 40
    seed: int = 0
    threads: int = 1

    def validate(self):
        if self.loss not in LOSSES:
            return f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}"
        overlap = set(self.train) & set(self.val)
        if overlap:
            return f"sequences both in train and val: {', '.join(sorted(overlap))}"
        if not self.val:
            return "leave at least one sequence out for validation"
        if self.topology not in TOPOLOGIES:
            return f"topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}"
        if self.backbone not in BACKBONES:
            return f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
        if not 0 <= self.jpeg_prob <= 1 or not 1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100:
            return "jpeg_prob must be in [0, 1] and 1 <= jpeg_quality_min <= jpeg_quality_max <= 100"
        if self.hist_stripes < 0:
            return "hist_stripes must be >= 0 (0: no colour branch)"
        if self.hist_levels < 1 or (self.hist_stripes and self.hist_stripes % (1 << (self.hist_levels - 1))):
            return "hist_levels must be >= 1, and hist_stripes must halve that many times"
        if not 0 < self.hist_share < 1:
            return "hist_share must be in (0, 1)"
        if not 0 <= self.stop_after <= self.max_iters:
            return "stop_after must be in [0, max_iters]"
        if self.near_gap < -1 or self.near_gap > self.max_gap:
            return "near_gap must be -1 (off) or in [0, max_gap]"
        if not 0 <= self.min_visibility <= 1 or not 0 <= self.occlude_prob <= 1:
            return "min_visibility and occlude_prob must be in [0, 1]"
        if self.occlude_zoom < 1:
            return "occlude_zoom must be >= 1 (1: the occluder at the patch's own scale)"
        if self.half_weight < 0:
            return "half_weight must be >= 0"
        if self.half_weight > 0 and (self.topology != "cost_function" or self.hist_stripes == 0):
            return "half_weight needs the cost_function topology with a colour layer (hist_stripes > 0)"
        return None


def find_sequences(roots: list[Path], names: list[str]) -> list[Path]:
    """The sequences under any of ``roots`` whose name matches one of ``names`` (exact or shell pattern).

    Raises:
        UserError: a name matches no sequence.
    """
    found = [p for root in roots for p in discover(root)]
    chosen = []
    for name in names:
        hits = [p for p in found if fnmatch.fnmatch(p.name, name)]
        if not hits:
            raise UserError(f"train_siamese: no sequence {name!r} under {', '.join(map(str, roots))}")
        chosen += [p for p in hits if p not in chosen]
    return chosen


def _load_sets(roots: list[Path], names: list[str], start: int, patch: PatchParams, flow: FlowParams,
               cache: Path, progress: bool, min_visibility: float) -> list[CropSet]:
    return [load_sequence_crops(p, start + i, patch, flow, cache, min_visibility, progress)
            for i, p in enumerate(find_sequences(roots, names))]


def batch_loss(net: nn.Module, x: torch.Tensor, ids: torch.Tensor, params: TrainParams,
               rng: np.random.Generator) -> torch.Tensor:
    """The topology's loss on one P x K batch.

    - cost_function: the configured embedding loss (contrastive or batch-hard triplet), plus
      ``half_weight`` times the same loss on each half of the embedding alone (colour, CNN), so the
      CNN half must tell people apart on its own and not only where the colour fails;
    - in_network: balanced binary cross-entropy of the weighted-L1 head over all pairs of the batch;
    - joint: balanced binary cross-entropy of the stacked-pair network over ``joint_pairs`` pairs
      (half of them positive, the negatives drawn from the batch: people seen close by).

    Args:
        x: (B, C, H, W) float32 inputs; ids: (B,) int64 identities.
    """
    if isinstance(net, InNetworkNet):
        e = net(x)
        i, j = torch.triu_indices(len(ids), len(ids), offset=1)
        return balanced_bce(net.head_logits(e[i], e[j]), ids[i] == ids[j])
    if isinstance(net, JointNet):
        i, j = torch.triu_indices(len(ids), len(ids), offset=1)
        same = (ids[i] == ids[j]).numpy()
        half = params.joint_pairs // 2
        pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
        pick = np.concatenate([rng.choice(pos, min(half, len(pos)), replace=False),
                               rng.choice(neg, min(params.joint_pairs - half, len(neg)), replace=False)])
        pick = torch.from_numpy(pick)
        a, b = i[pick], j[pick]
        swap = torch.from_numpy(rng.random(len(pick)) < 0.5)   # the order of a pair carries no meaning
        a, b = torch.where(swap, b, a), torch.where(swap, a, b)
        return balanced_bce(net.pair_logits(x[a], x[b]), ids[a] == ids[b])
    loss = LOSSES[params.loss]
    if params.half_weight == 0:
        return loss(net(x), ids, params.margin)
    hist, cnn = net.halves(x)
    return (loss(net.weigh(hist, cnn), ids, params.margin)
            + params.half_weight * (loss(hist, ids, params.margin) + loss(cnn, ids, params.margin)))


def evaluate(net: nn.Module, sets: list[CropSet], batches: list[tuple[int, np.ndarray]], params: TrainParams,
             patch: PatchParams) -> float:
    """Mean loss over fixed validation batches (no augmentation; the joint pairs drawn with a fixed seed)."""
    net.eval()
    losses = []
    rng = np.random.default_rng(params.seed + 4)
    with torch.no_grad():
        for si, rows in batches:
            x = make_inputs(sets[si], rows, patch, params.use_flow, None)
            losses.append(float(batch_loss(net, x, torch.from_numpy(sets[si].ids[rows]), params, rng)))
    net.train()
    return float(np.mean(losses))


def build_model(params: TrainParams, patch: PatchParams, pretrained: str | Path | None = None) -> nn.Module:
    """The untrained network of the recipe, its backbone loaded from ImageNet weights when given.

    Raises:
        UserError: ``pretrained`` with the plain backbone, or an unreadable or wrong pretrained file.
    """
    channels = 5 if params.use_flow else 3
    branch = SiameseNet(channels, params.embedding_dim, params.width, hist_stripes=params.hist_stripes,
                        hist_share=params.hist_share, patch=(patch.height, patch.width),
                        backbone=params.backbone, depth=params.depth, hist_levels=params.hist_levels)
    net = build_network(params.topology, branch)
    if pretrained is not None:
        if params.backbone != "mobilenetv2":
            raise UserError("train_siamese: --pretrained needs backbone=mobilenetv2")
        if isinstance(net, JointNet):
            load_imagenet(net.features, pretrained, luv_channels=(0, channels))
        else:
            load_imagenet(branch.features, pretrained)
    return net


def train(data: str | Path | list, out: str | Path, params: TrainParams | None = None,
          reid: str | Path | list | None = None, cache: str | Path | None = None, patch: PatchParams | None = None,
          flow: FlowParams | None = None, progress: bool = True, pretrained: str | Path | None = None) -> dict:
    """Trains the network and saves the best weights (lowest validation loss).

    Args:
        data: a folder (or a list of folders) of MOTChallenge-layout sequences with ground truth.
        out: the weights file to write.
        params: the recipe.
        reid: optional folder (or list of folders) of identity-labelled crops (VIPeR, CUHK01 or
            CUHK03 layout), used with zero flow.
        cache: folder for the cropped data (default: ``~/.cache/siamese-mot``), outside the repo.
        patch: patch size (default: the recipe's patch_height x patch_width); flow: flow settings.
        progress: show a tqdm bar.
        pretrained: ImageNet MobileNetV2 state dict to start the backbone from (see
            ``association/backbone.py``); its file name and size are saved in the metadata.

    Returns:
        A summary: iterations, best validation loss, seconds, stop reason, losses.
    """
    params = params or TrainParams()
    problem = params.validate()
    if problem:
        raise UserError(f"train_siamese: {problem}")
    patch, flow = patch or PatchParams(params.patch_height, params.patch_width), flow or FlowParams()
    cache = Path(cache) if cache else Path.home() / ".cache" / "siamese-mot"
    torch.manual_seed(params.seed)
    if params.threads > 0:
        torch.set_num_threads(params.threads)
    t_start = time.perf_counter()
    net = build_model(params, patch, pretrained)

    roots = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    train_sets = _load_sets(roots, params.train, 0, patch, flow, cache, progress, params.min_visibility)
    val_sets = _load_sets(roots, params.val, 500, patch, flow, cache, progress, params.min_visibility)
    sampler = PKSampler(train_sets, params.p, params.k, params.max_gap, params.seed, params.near_gap,
                        params.neighbours)
    reid_sampler = None
    reid_roots = [] if reid is None else [Path(r) for r in (reid if isinstance(reid, (list, tuple)) else [reid])]
    if reid_roots and params.reid_fraction > 0:
        reid_sets = [load_reid_crops(r, 990 + i, patch) for i, r in enumerate(reid_roots)]
        reid_sampler = PKSampler(reid_sets, params.p, 2, 1, params.seed + 1)
    val_sampler = PKSampler(val_sets, params.p, params.k, params.max_gap, params.seed + 2)
    val_batches = [val_sampler.batch() for _ in range(params.val_batches)]
    prep_seconds = time.perf_counter() - t_start

    net.train()
    # No weight decay on the colour branch: its few parameters (the spatial mask, the vote sharpness)
    # are not weights to shrink; decay would only flatten the mask and blur the bins. A pretrained
    # backbone may learn more slowly than the new layers (backbone_lr_scale).
    groups: dict[tuple[float, float], list] = {}
    for name, p in net.named_parameters():
        is_hist = ".hist." in f".{name}"
        is_backbone = "features." in name and pretrained is not None
        key = (params.lr * (params.backbone_lr_scale if is_backbone else 1.0), 0.0 if is_hist else params.weight_decay)
        groups.setdefault(key, []).append(p)
    opt = torch.optim.Adam([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, params.max_iters)
    rng = np.random.default_rng(params.seed + 3)
    jpeg = (params.jpeg_prob, (params.jpeg_quality_min, params.jpeg_quality_max))
    best, best_state, best_iter, stale = float("inf"), None, 0, 0
    history, running, stop = [], [], "max_iters"
    bar = tqdm(range(1, params.max_iters + 1), desc="train siamese", disable=not progress)
    for it in bar:
        if reid_sampler is not None and rng.random() < params.reid_fraction:
            si, rows = reid_sampler.batch()
            crops = reid_sampler.sets[si]
        else:
            si, rows = sampler.batch()
            crops = train_sets[si]
        x = make_inputs(crops, rows, patch, params.use_flow, rng, *jpeg, params.occlude_prob,
                        params.occlude_zoom)
        loss = batch_loss(net, x, torch.from_numpy(crops.ids[rows]), params, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if it % params.eval_every == 0 or it == params.max_iters:
            val = evaluate(net, val_sets, val_batches, params, patch)
            history.append({"iter": it, "train_loss": float(np.mean(running)), "val_loss": val})
            running = []
            bar.set_postfix(train=f"{history[-1]['train_loss']:.4f}", val=f"{val:.4f}", best=f"{min(best, val):.4f}")
            if val < best:
                best, best_iter, stale = val, it, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= params.patience:
                    stop = "early_stopping"
                    break
        if it == params.stop_after:
            stop = "stop_after"
            break
        if time.perf_counter() - t_start > params.max_minutes * 60:
            stop = "max_minutes"
            break
    bar.close()
    if best_state is None:  # stopped before the first evaluation
        best = evaluate(net, val_sets, val_batches, params, patch)
        best_state, best_iter = net.state_dict(), it
    net.load_state_dict(best_state)
    seconds = time.perf_counter() - t_start
    meta = network_meta(net, patch, flow if params.use_flow else None, loss=params.loss, margin=params.margin,
                        train_sequences=",".join(params.train), val_sequences=",".join(params.val),
                        reid=",".join(r.name for r in reid_roots) if reid_sampler else "", seed=params.seed,
                        pretrained=Path(pretrained).name if pretrained else "", jpeg_prob=params.jpeg_prob,
                        near_gap=params.near_gap, half_weight=params.half_weight,
                        min_visibility=params.min_visibility, occlude_prob=params.occlude_prob,
                        occlude_zoom=params.occlude_zoom,
                        best_iter=best_iter, val_loss=best, stopped_at=it, max_iters=params.max_iters)
    save_weights(out, net, meta)
    return {"iterations": it, "best_iter": best_iter, "best_val_loss": best, "stop": stop,
            "seconds": seconds, "prep_seconds": prep_seconds, "history": history, "out": str(out)}


def calibrate_weights(src: str | Path, dst: str | Path, hist_levels: int | None = None,
                      crowd_share: dict | None = None, hist_share_by_gap: dict | None = None) -> dict:
    """Copies Siamese weights with inference settings changed in their metadata (the tensors as they are).

    Args:
        src, dst: weights files (``dst`` may be ``src``; written atomically).
        hist_levels: the colour layer's pyramid levels at inference (``SoftHistogram``; the trained
            stripes must halve that many times), or None to keep them.
        crowd_share: the colour share of crowded pairs, ``{gap: share}`` (``association.crowd``);
            ``{}`` removes it, None keeps it.
        hist_share_by_gap: the colour layer's share by frame gap, ``{gap: share}``
            (``association.by_gap``); ``{}`` removes it, None keeps it.

    Returns:
        The new metadata.

    Raises:
        UserError: unreadable weights, a table :func:`association.crowd.check_table` refuses, or
            settings the weights cannot take (checked by loading the result before it is written).
    """
    from association.backbone import safe_load
    from association.crowd import check_table
    from association.siamese import AppearanceModel, AppearanceParams

    blob = safe_load(src, "Siamese weights")
    if not isinstance(blob, dict) or not isinstance(blob.get("meta"), dict):
        raise UserError(f"{src}: not a Siamese weights file (no state_dict/meta)")
    meta = dict(blob["meta"])
    if hist_levels is not None:
        meta["hist_levels"] = int(hist_levels)
    for name, table in (("crowd_share", crowd_share), ("hist_share_by_gap", hist_share_by_gap)):
        if table is None:
            continue
        problem = check_table(table, name)
        if problem:
            raise UserError(f"{problem} ({dst} not written)")
        meta.pop(name, None)
        if table:
            meta[name] = {int(g): float(s) for g, s in sorted(table.items(), key=lambda kv: int(kv[0]))}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save({**blob, "meta": meta}, tmp)
    try:
        model = AppearanceModel(AppearanceParams(weights=str(tmp)), device="cpu")   # what the tracker refuses
        if "crowd_share" in meta and model.crowd is None:
            raise UserError(f"{src}: crowd_share needs weights with a colour layer")
    except UserError as exc:
        tmp.unlink()
        raise UserError(f"{str(exc).replace(str(tmp), str(src))} ({dst} not written)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)
    return meta
