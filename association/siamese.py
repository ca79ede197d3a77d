"""The Siamese appearance network (after Leal-Taixé et al., "Learning by tracking", CVPRW 2016).

One branch (the two Siamese branches share all weights, so one module serves both) reads a
detection patch: 3 LUV channels plus, optionally, 2 channels of optical flow under the box. It
outputs an L2-normalised embedding; the Euclidean distance between two embeddings (0 to 2) says how
unlike the two detections are. Trained with the contrastive loss of Hadsell, Chopra and LeCun or a
batch-hard triplet loss (``mot/training/siamese.py``).

At run time :class:`AppearanceModel` embeds all the detections of a frame in one forward pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from association.backbone import MobileNetV2Features, fuse_batch_norm, safe_load
from association.flow import FlowComputer, FlowParams, crop_flow
from association.foreground import ForegroundNet
from association.patches import LUV_MEAN, LUV_STD, PatchParams, crop_patches
from mot.errors import UserError
from mot.runtime import resolve_device
from mot.weights import resolve as resolve_weights, shipped

#: The format of the saved weights file; bump it when the network or its inputs change.
WEIGHTS_VERSION = 3
#: Versions this code reads: version 1 files predate the colour-histogram branch (they have none),
#: version 2 files the MobileNetV2 backbone and the topologies (they are the plain CNN, cost-function).
READABLE_VERSIONS = (1, 2, 3)
#: The branch's convolutional part: the project's small CNN, or MobileNetV2 (``association/backbone.py``).
BACKBONES = ("plain", "mobilenetv2")
#: The weights that ship with the package (``scripts/train_siamese.py`` reproduces them).
DEFAULT_NAME = "siamese.pt"
DEFAULT_WEIGHTS = shipped(DEFAULT_NAME)


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class SoftHistogram(nn.Module):
    """Joint LUV colour histograms of horizontal stripes, as a differentiable layer.

    Each pixel votes for the ``bins^3`` joint LUV bins with soft weights (per channel, a softmax
    over the squared distances to the bin centres times a learned sharpness, near hard bins at the
    start), so the histogram is smooth in the colours. The votes are weighted by a learned spatial
    mask (where in a box the person's colours are, shared by all boxes) and summed per stripe. Each
    stripe's histogram is normalised and square-rooted (Hellinger) and the stripes are joined with
    unit norm, so the Euclidean distance of two outputs is the Hellinger distance of the colour
    distributions. With ``levels`` > 1 the stripes also form a pyramid (as in spatial pyramid
    matching): level ``l`` joins each ``2^l`` neighbouring stripes into one, so ``stripes``,
    ``stripes / 2``, ... stripes are histogrammed, each level with the same share of the squared
    distance. The coarse levels change little when a box's edges move; the fine ones keep the
    heights apart. At initialisation the mask is uniform and the layer is a soft, per-stripe
    version of the fixed LUV histogram baseline (``association.patches.colour_histograms``, which
    uses two halves).

    Args:
        bins: bins per LUV channel (output ``(stripes + stripes / 2 + ...) * bins^3``).
        stripes: horizontal stripes (of the finest level).
        pool: the patch is average-pooled by this factor before voting (cost falls with pool^2).
        height, width: the input patch size (the mask is ``height/pool x width/pool``).
        sharpness: the initial vote sharpness (softplus of the parameter; larger is harder).
        levels: pyramid levels (1: the stripes alone); ``stripes`` must divide by ``2^(levels-1)``.
    """

    def __init__(self, bins: int = 8, stripes: int = 4, pool: int = 2, height: int = 128, width: int = 64,
                 sharpness: float = 8.0, levels: int = 1):
        super().__init__()
        if levels < 1 or stripes % (1 << (levels - 1)):
            raise ValueError(f"SoftHistogram: {stripes} stripes do not halve into {levels} pyramid levels")
        self.bins, self.stripes, self.pool, self.levels = bins, stripes, pool, levels
        h, w = height // pool, width // pool
        # softplus(0.5413) = 1: a uniform mask
        self.mask = nn.Parameter(torch.full((h, w), 0.5413))
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)))
        self.register_buffer("mean", torch.from_numpy(LUV_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.from_numpy(LUV_STD).view(1, 3, 1, 1))
        self.register_buffer("centres", torch.arange(bins, dtype=torch.float32).view(1, 1, bins, 1))

    @property
    def output_dim(self) -> int:
        return sum(self.stripes >> level for level in range(self.levels)) * self.bins ** 3

    def forward(self, luv: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) normalised LUV -> (B, output_dim) float32 with unit norm. ``weight``: optional
        (B, H/pool, W/pool) per-box pixel weights multiplying the learned mask."""
        return self.histograms(luv, (weight,))[0]

    def histograms(self, luv: torch.Tensor, weights) -> list[torch.Tensor]:
        """:meth:`forward` once per entry of ``weights`` (each None or per-box pixel weights), the
        soft votes computed once for all of them."""
        x = luv.contiguous() * self.std + self.mean           # OpenCV's 8-bit LUV, 0..255 (channels first)
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        b, _, h, w = x.shape
        if (h, w) != tuple(self.mask.shape):
            raise ValueError(f"SoftHistogram built for {tuple(self.mask.shape)} pooled patches, got {(h, w)}")
        t = (x * (self.bins / 256.0) - 0.5).view(b, 3, 1, h * w)   # in bin units, bin k centred on k
        # Soft votes over the bins (B, 3, bins, P), summing to 1; sharpness learned (init near hard bins).
        votes = torch.softmax(-(t - self.centres) ** 2 * F.softplus(self.sharpness), dim=2).contiguous()
        rows = torch.linspace(0, h, self.stripes + 1).round().long().tolist()
        out = []
        for weight in weights:
            mask = F.softplus(self.mask).reshape(1, 1, h * w)
            if weight is not None:
                mask = mask * weight.reshape(b, 1, h * w)
            # The mask weighs the L votes before the joint L-u votes are formed (one product less on the big array).
            lu = ((votes[:, 0] * mask)[:, :, None, :] * votes[:, 1, None, :, :]).reshape(b, self.bins ** 2, h * w)
            hists = torch.stack([torch.bmm(lu[:, :, rows[s] * w:rows[s + 1] * w],
                                           votes[:, 2, :, rows[s] * w:rows[s + 1] * w].transpose(1, 2)).reshape(b, -1)
                                 for s in range(self.stripes)], 1)          # (B, stripes, bins^3), not normalised
            parts = []
            for level in range(self.levels):
                n = self.stripes >> level
                hist = hists.reshape(b, n, -1, hists.shape[2]).sum(2) if level else hists
                hist = torch.sqrt(hist / hist.sum(2, keepdim=True).clamp(min=1e-6) + 1e-10)
                parts.append(hist.reshape(b, -1) / (n ** 0.5 if self.levels > 1 else 1.0))   # unit norm per level
            out.append(F.normalize(torch.cat(parts, 1), dim=1))
        return out


class SiameseNet(nn.Module):
    """One branch of the Siamese network (the weights are shared, so this is the whole network).

    Five stages of 3x3 convolutions take a 128x64 patch down to 8x4; the map is pooled into
    ``stripes`` horizontal stripes (keeping head / torso / legs apart, indifferent to left-right
    flips) and projected to the CNN embedding. With ``hist_stripes`` > 0 a :class:`SoftHistogram`
    of the LUV channels sits beside the convolutions, and the output is the two unit vectors
    joined as ``[sqrt(s) * histogram, sqrt(1 - s) * cnn]`` with ``s = hist_share``: still of unit
    norm, its squared distance is ``s`` times the colour distance plus ``1 - s`` times the CNN's.
    Trained together, the convolutions learn what the colour distribution misses.

    Args:
        in_channels: 5 (LUV + flow) or 3 (LUV only).
        embedding_dim: CNN embedding size E.
        width: channels of the first stage (later stages double it, up to 4x).
        stripes: horizontal stripes pooled before the projection.
        hist_stripes: stripes of the colour-histogram branch (0: no such branch).
        hist_bins: its bins per LUV channel.
        hist_levels: its pyramid levels (1: the stripes alone; :class:`SoftHistogram`).
        hist_share: its share of the squared distance, in (0, 1).
        patch: (height, width) of the input patches (the histogram mask is sized by it).
        backbone: ``plain`` (the five stages above) or ``mobilenetv2`` (the first ``depth`` modules
            of MobileNetV2, ``width`` unused; ImageNet weights are loaded by the trainer).
        depth: MobileNetV2 feature modules kept.
        foreground_floor: with a value in [0, 1), a second colour layer whose votes are weighted by
            ``floor + (1 - floor) * p``, p the :class:`association.foreground.ForegroundNet` map of
            the centred person (None: no such layer; the shipped weights have one, floor 0.1).
        foreground_mix: that layer's share ``a`` of the colour distance (the plain layer keeps 1 - a).
    """

    def __init__(self, in_channels: int = 5, embedding_dim: int = 128, width: int = 32, stripes: int = 4,
                 hist_stripes: int = 0, hist_bins: int = 8, hist_share: float = 0.5,
                 patch: tuple[int, int] = (128, 64), backbone: str = "plain", depth: int = 14,
                 hist_levels: int = 1, foreground_floor: float | None = None, foreground_mix: float = 0.5):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        w = width
        if backbone == "plain":
            self.features = nn.Sequential(
                _block(in_channels, w, 2),                  # 64x32
                _block(w, w), nn.MaxPool2d(2),              # 32x16
                _block(w, 2 * w), nn.MaxPool2d(2),          # 16x8
                _block(2 * w, 4 * w), nn.MaxPool2d(2),      # 8x4
                _block(4 * w, 4 * w))
            c_out = 4 * w
        else:
            self.features = MobileNetV2Features(in_channels, depth)
            c_out = self.features.out_channels
        self.backbone, self.depth, self.width = backbone, depth, width
        self.pool = nn.AdaptiveAvgPool2d((stripes, 1))
        self.project = nn.Linear(c_out * stripes, embedding_dim)
        self.in_channels = in_channels
        self.hist = SoftHistogram(hist_bins, hist_stripes, 2, *patch, levels=hist_levels) if hist_stripes > 0 else None
        self.hist_share = float(hist_share) if self.hist is not None else 0.0
        if foreground_floor is not None and (self.hist is None or not 0 <= foreground_floor < 1
                                             or not 0 < foreground_mix < 1):
            raise ValueError(f"a foreground map needs a colour layer, a floor in [0, 1) and a mix in (0, 1); got "
                             f"hist_stripes={hist_stripes}, floor={foreground_floor}, mix={foreground_mix}")
        self.fg = ForegroundNet() if foreground_floor is not None else None
        self.fg_floor, self.fg_mix = foreground_floor, float(foreground_mix)

    @property
    def output_dim(self) -> int:
        hist = self.hist.output_dim * (2 if self.fg is not None else 1) if self.hist is not None else 0
        return self.project.out_features + hist

    def spec(self) -> dict:
        """The hyper-parameters that rebuild this network (saved in the weights metadata)."""
        return {"in_channels": self.in_channels, "backbone": self.backbone, "depth": self.depth,
                "embedding_dim": self.project.out_features, "width": self.width,
                "stripes": self.pool.output_size[0], "hist_stripes": self.hist.stripes if self.hist else 0,
                "hist_bins": self.hist.bins if self.hist else 0, "hist_share": self.hist_share,
                "hist_levels": self.hist.levels if self.hist else 1,
                **({"foreground_floor": self.fg_floor, "foreground_mix": self.fg_mix} if self.fg is not None else {})}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float32 patches -> (B, output_dim) float32 L2-normalised embeddings."""
        return self.join(*self.trunk(x))

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Everything before the projection: the pooled stripes (B, C_out * stripes) and the colour
        histograms (B, H), or None without a colour layer. Scene adaptation trains on these."""
        return self.pool(self.features(x)).flatten(1), (self.colour(x[:, :3]) if self.hist is not None else None)

    def colour(self, luv: torch.Tensor) -> torch.Tensor:
        """The colour layer's unit vector; with a foreground map, the plain histograms joined with
        those of the votes weighted by it, ``[sqrt(1 - a) * plain, sqrt(a) * foreground]``."""
        if self.fg is None:
            return self.hist(luv)
        weight = self.fg_floor + (1 - self.fg_floor) * torch.sigmoid(self.fg(luv))
        plain, weighted = self.hist.histograms(luv, (None, weight))
        a = self.fg_mix
        return torch.cat([plain * (1 - a) ** 0.5, weighted * a ** 0.5], 1)

    def join(self, pooled: torch.Tensor, hist: torch.Tensor | None) -> torch.Tensor:
        """The embedding from :meth:`trunk`'s outputs: the projection, normalised, beside the histograms."""
        return self.weigh(hist, F.normalize(self.project(pooled), dim=1))

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The two parts of the embedding before they are weighed, each of unit norm: the colour
        histograms (None without a colour layer) and the CNN embedding (``weigh`` joins them)."""
        pooled, hist = self.trunk(x)
        return hist, self.join(pooled, None)      # without histograms, join is the CNN part alone

    def weigh(self, hist: torch.Tensor | None, cnn: torch.Tensor) -> torch.Tensor:
        """The embedding from :meth:`halves`: ``[sqrt(s) * histogram, sqrt(1 - s) * cnn]``."""
        if hist is None:
            return cnn
        s = self.hist_share
        return torch.cat([hist * s ** 0.5, cnn * (1 - s) ** 0.5], 1)


def pair_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, E), (B, E) -> (B,) Euclidean distances, with a safe gradient at 0."""
    return torch.sqrt(((a - b) ** 2).sum(dim=1) + 1e-12)


def contrastive_loss(distance: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hadsell-Chopra-LeCun contrastive loss, ``y d^2 + (1 - y) max(m - d, 0)^2`` averaged over pairs.

    Args:
        distance: (B,) float32 pair distances d.
        same: (B,) float32 or bool, y = 1 for the same identity, 0 for different ones.
        margin: m, the distance beyond which different pairs cost nothing.

    Returns:
        () float32 mean loss (0 for B = 0).
    """
    if distance.numel() == 0:
        return distance.sum()
    y = same.to(distance.dtype)
    return (y * distance ** 2 + (1 - y) * torch.clamp(margin - distance, min=0) ** 2).mean()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans, Beyer, Leibe 2017).

    For every anchor with at least one positive and one negative in the batch:
    ``max(d(a, hardest positive) - d(a, hardest negative) + margin, 0)``, averaged.

    Args:
        embeddings: (B, E) float32.
        labels: (B,) int64 identities.
        margin: the triplet margin.

    Returns:
        () float32 mean loss (0 when no anchor has both a positive and a negative).
    """
    dist = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    valid = pos.any(1) & (~same).any(1)
    if not valid.any():
        return embeddings.sum() * 0.0
    hardest_pos = torch.where(pos, dist, torch.zeros_like(dist)).max(1).values
    hardest_neg = torch.where(same, torch.full_like(dist, float("inf")), dist).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def batch_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The contrastive loss over all pairs of a batch, positive and negative pairs weighted equally.

    Args:
        embeddings: (B, E) float32.
        labels: (B,) int64 identities.
        margin: the contrastive margin.
    """
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    d = pair_distance(embeddings[i], embeddings[j])
    y = labels[i] == labels[j]
    return contrastive_loss(d[y], y[y], margin) + contrastive_loss(d[~y], y[~y], margin)


LOSSES = {"triplet": batch_hard_triplet_loss, "contrastive": batch_contrastive_loss}


# ----------------------------------------------------------------------------- weights file

def save_weights(path: str | Path, net: SiameseNet, meta: dict) -> None:
    """Saves the network as a dict of tensors plus primitive metadata (loadable with weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "meta": dict(meta, version=WEIGHTS_VERSION)}, tmp)
    tmp.replace(path)


def network_meta(net: nn.Module, patch: PatchParams, flow: FlowParams | None, **extra) -> dict:
    """The metadata saved with the weights: all that is needed to feed and rebuild the network.

    ``net`` is a :class:`SiameseNet` or one of the pair networks of ``association/topologies.py``.
    """
    from association.topologies import topology_of

    return {"patch_height": patch.height, "patch_width": patch.width, "topology": topology_of(net), **net.spec(),
            "use_flow": flow is not None,
            "flow_method": flow.method if flow else "", "flow_downscale": flow.downscale if flow else 0.0,
            "flow_preset": flow.dis_preset if flow else "", "luv_mean": LUV_MEAN.tolist(),
            "luv_std": LUV_STD.tolist(), **extra}


def build_branch(meta: dict) -> SiameseNet:
    """The (untrained) branch network described by a weights file's metadata."""
    return SiameseNet(meta["in_channels"], meta["embedding_dim"], meta["width"], meta["stripes"],
                      meta.get("hist_stripes", 0), meta.get("hist_bins") or 8, meta.get("hist_share", 0.5),
                      (meta["patch_height"], meta["patch_width"]), meta.get("backbone", "plain"),
                      meta.get("depth", 14), meta.get("hist_levels", 1), meta.get("foreground_floor"),
                      meta.get("foreground_mix", 0.5))


def load_weights(path: str | Path) -> tuple[nn.Module, dict]:
    """Loads a weights file saved by :func:`save_weights` (safely: ``weights_only=True``).

    Returns:
        The network (eval mode, CPU) and its metadata: a :class:`SiameseNet` for the cost-function
        topology (every file before version 3), else the pair network of ``association/topologies.py``.

    Raises:
        UserError: the file is missing, corrupt, of another version, or does not fit its metadata.
    """
    path = Path(path)
    blob = safe_load(path, "Siamese weights")
    if not isinstance(blob, dict) or "meta" not in blob or "state_dict" not in blob:
        raise UserError(f"{path}: not a Siamese weights file (no state_dict/meta)")
    meta = blob["meta"]
    if meta.get("version") not in READABLE_VERSIONS:
        raise UserError(f"{path}: weights version {meta.get('version')!r}, this code reads "
                        f"{', '.join(map(str, READABLE_VERSIONS))}")
    if meta.get("luv_mean") != LUV_MEAN.tolist() or meta.get("luv_std") != LUV_STD.tolist():
        raise UserError(f"{path}: weights were trained with another LUV normalisation "
                        f"({meta.get('luv_mean')}, {meta.get('luv_std')}); retrain them")
    from association.topologies import build_network

    if meta.get("in_channels") == 5 and not meta.get("flow_method"):
        raise UserError(f"{path}: weights read 5 channels (LUV + flow) but name no flow settings")
    try:
        net = build_network(meta.get("topology", "cost_function"), build_branch(meta))
        net.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:120]
        raise UserError(f"{path}: weights do not match their metadata ({reason})") from None
    return net.eval(), meta


# ----------------------------------------------------------------------------- run time

@dataclass
class AppearanceParams:
    """The appearance model at run time."""

    weights: str | None = None   # path to a weights file; None: the one shipped in mot/weights/
    # Off by default: zeroing the shipped weights' flow channels changes no metric (appearance benchmark;
    # tracking TUD-Campus and MOT17-05, a moving camera) and saves the flow's 10-17 ms per frame.
    use_flow: bool | None = False  # None: as the weights were trained; False zeroes the flow channels
    batch_size: int = 64          # patches per forward pass (a frame with more is split)
    # The colour layer's share s of the squared distance, [sqrt(s) * histogram, sqrt(1 - s) * cnn]:
    # None keeps the share the weights were trained with; a value in [0, 1] re-weights the two parts
    # at inference without retraining (weights with a colour layer only; 1: colour only, 0: CNN only).
    hist_share: float | None = None
    # The colour share of crowded pairs by frame gap, {gap: share} (association/crowd.py): None keeps
    # the table in the weights' metadata (none: off), {} switches it off. Weights with a colour layer only.
    crowd_share: dict | None = None
    crowd_iou: float = 0.5        # a box overlapping another of its frame by more than this is crowded
    # The foreground-weighted colours' share by frame gap, {gap: share} (association/by_gap.py):
    # None keeps the weights' metadata table (none: their trained mix at every gap), {} switches it
    # off. Weights with a foreground map only; not with a crowd share.
    foreground_share: dict | None = None
    # The colour layer's share by frame gap, {gap: share} (association/by_gap.py), in place of the one
    # share above at every gap: None keeps the weights' metadata table (none: one share), {} switches
    # it off. Weights with a colour layer and a CNN only; not with a crowd share.
    hist_share_by_gap: dict | None = None
    # Test-time flip: each part of the embedding (colour layer, CNN) is the normalised mean of the
    # patch's and its mirror image's, as re-id models are commonly tested; the network costs twice.
    flip_average: bool = False

    def validate(self):
        from association.crowd import check_table

        if self.batch_size < 1:
            return "batch_size must be >= 1"
        if self.hist_share is not None and not 0 <= self.hist_share <= 1:
            return f"hist_share must be in [0, 1] or null, got {self.hist_share}"
        if not 0 <= self.crowd_iou < 1:
            return f"crowd_iou must be in [0, 1), got {self.crowd_iou}"
        for name in ("crowd_share", "foreground_share", "hist_share_by_gap"):
            if getattr(self, name) is not None and (problem := check_table(getattr(self, name), name, "shares")):
                return problem
        return None


class AppearanceModel:
    """Embeds all the detections of a frame: flow + LUV patches + one batched forward pass.

    Holds no per-frame state: the caller passes the previous frame (the pipeline keeps it).

    Args:
        params: weights and switches.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.

    Raises:
        UserError: unreadable weights, ``use_flow=True`` with weights trained without flow, an invalid
            ``hist_share`` or ``crowd_share`` given for weights without a colour layer, or a
            ``crowd_share`` table in the metadata that :func:`association.crowd.check_table` refuses.
    """

    def __init__(self, params: AppearanceParams | None = None, device: str = "auto"):
        self.params = params or AppearanceParams()
        problem = self.params.validate()
        if problem:
            raise UserError(f"appearance: {problem}")
        self.device = resolve_device(device)
        path = resolve_weights(self.params.weights, DEFAULT_NAME)
        net, self.meta = load_weights(path)
        topology = self.meta.get("topology", "cost_function")
        if topology == "joint":
            raise UserError(f"{path}: a joint-input (pair) network scores pairs of patches; the tracker "
                            f"embeds each detection once: use a cost_function or in_network model")
        # The in-network topology's branch embeds; its learned weighted-L1 head scores pairs.
        self.pair_head = net.head if topology == "in_network" else None
        branch = net if topology == "cost_function" else net.branch
        if self.params.hist_share is not None:
            if branch.hist is None:
                raise UserError(f"{path}: appearance hist_share={self.params.hist_share}, but these weights "
                                f"have no colour layer")
            branch.hist_share = float(self.params.hist_share)
        #: the colour share of crowded pairs (``association.crowd.CrowdShare``), or None (off)
        self.crowd = self._crowd_share(path, branch)
        #: the colour layer's and the foreground colours' shares by frame gap
        #: (``association.by_gap.SharesByGap``), or None (the trained mix at every gap)
        self.by_gap = self._shares_by_gap(path, branch)
        if self.crowd is not None and self.by_gap is not None:
            raise UserError(f"{path}: appearance crowd_share cannot be on with a share by gap (set "
                            f"foreground_share and hist_share_by_gap to {{}}: the shipped weights carry a share by gap)")
        # Inference only: batch norms folded into the convolutions, channels-last (faster on a CPU).
        self.net = fuse_batch_norm(branch).to(self.device, memory_format=torch.channels_last)
        self.patch = PatchParams(self.meta["patch_height"], self.meta["patch_width"])
        trained_with_flow = self.meta["in_channels"] == 5
        if self.params.use_flow and not trained_with_flow:
            raise UserError(f"{path}: appearance use_flow=true, but these weights were trained without flow")
        self.use_flow = trained_with_flow if self.params.use_flow is None else self.params.use_flow
        self.flow_params = (FlowParams(self.meta["flow_method"], self.meta["flow_downscale"],
                                       self.meta["flow_preset"]) if trained_with_flow else None)
        self.flow = FlowComputer(self.flow_params) if self.use_flow else None
        #: seconds spent in the last call, by stage (flow, patches, network)
        self.timing: dict[str, float] = {}

    def _crowd_share(self, path, branch):
        from association.crowd import CrowdShare

        table = self._table(path, "crowd_share")
        if self.params.crowd_share and (branch.hist is None or not 0 < branch.hist_share < 1):
            raise UserError(f"{path}: appearance crowd_share is set, but these weights have no colour layer "
                            f"or it has all the distance or none (hist_share {branch.hist_share:g})")
        if not table or branch.hist is None or not 0 < branch.hist_share < 1:
            return None
        hist_dim = branch.output_dim - branch.project.out_features
        return CrowdShare.from_table(table, branch.hist_share, hist_dim, self.params.crowd_iou)

    def _table(self, path, name: str):
        """The config's ``{gap: share}`` table ``name``, or the weights' metadata one when it is None."""
        from association.crowd import check_table

        table = getattr(self.params, name)
        if table is None:
            table = self.meta.get(name)
            problem = check_table(table, name, "shares") if table is not None else None
            if problem:
                raise UserError(f"{path}: metadata {problem}")
        return table

    def _shares_by_gap(self, path, branch):
        from association.by_gap import GapTable, SharesByGap

        colour, foreground = self._table(path, "hist_share_by_gap"), self._table(path, "foreground_share")
        if foreground and branch.fg is None:
            raise UserError(f"{path}: appearance foreground_share is set, but these weights have no foreground map")
        if colour and (branch.hist is None or not 0 < branch.hist_share < 1):
            raise UserError(f"{path}: appearance hist_share_by_gap is set, but these weights have no colour layer "
                            f"or it has all the distance or none (hist_share {branch.hist_share:g})")
        if not colour and not foreground:
            return None
        try:
            return SharesByGap(branch.hist.output_dim,
                               GapTable.from_table(colour, branch.hist_share, "hist_share_by_gap") if colour else None,
                               GapTable.from_table(foreground, branch.fg_mix, "foreground_share") if foreground else None,
                               branch.fg is not None)
        except ValueError as exc:
            raise UserError(f"{path}: appearance {exc}") from None

    @property
    def embedding_dim(self) -> int:
        return self.net.output_dim

    def cnn_part(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, E) embeddings from :meth:`embed` -> (N, E_cnn) float32 unit rows: their CNN part alone,
        without the colour layer (the last ``E_cnn`` columns, see :class:`SiameseNet`)."""
        from association.features import unit_tail
        return unit_tail(embeddings, self.net.project.out_features)

    def inputs(self, image_bgr: np.ndarray, tlwh: np.ndarray, prev_image_bgr: np.ndarray | None = None,
               flow: np.ndarray | None = None) -> np.ndarray:
        """The network input of every box.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame t.
            tlwh: (N, 4) float32 boxes (0-based top-left x, y, width, height) in frame t.
            prev_image_bgr: (H, W, 3) uint8 BGR frame t-1, or None (zero flow).
            flow: a precomputed flow field from :meth:`FlowComputer.compute` (skips computing it).

        Returns:
            (N, C, H_p, W_p) float32, C = 5 (LUV + flow) or 3 as the weights expect.
        """
        t0 = time.perf_counter()
        if self.flow_params is not None and self.use_flow and flow is None:
            flow = self.flow.compute(prev_image_bgr, image_bgr)
        t1 = time.perf_counter()
        x = crop_patches(image_bgr, tlwh, self.patch)
        if self.flow_params is not None:
            flow_crops = (crop_flow(flow, tlwh, self.flow_params, self.patch) if self.use_flow
                          else np.zeros((len(x), 2) + x.shape[2:], np.float32))
            x = np.concatenate([x, flow_crops], axis=1)
        self.timing = {"flow": t1 - t0, "patches": time.perf_counter() - t1}
        return x

    @torch.no_grad()
    def embed_inputs(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H_p, W_p) float32 network inputs -> (N, E) float32 L2-normalised embeddings."""
        t0 = time.perf_counter()
        out = np.zeros((len(x), self.embedding_dim), np.float32)
        for start in range(0, len(x), self.params.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start:start + self.params.batch_size]))
            batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            out[start:start + len(batch)] = self._forward(batch).cpu().numpy()
        self.timing["network"] = time.perf_counter() - t0
        return out

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.params.flip_average:
            return self.net(batch)
        mirror = batch.flip(3)
        if self.flow_params is not None:                # the x flow changes sign in the mirror image
            mirror[:, 3] = -mirror[:, 3]
        hist, cnn = self.net.halves(torch.cat([batch, mirror]))
        n = len(batch)
        mean = lambda part: F.normalize(part[:n] + part[n:], dim=1)      # noqa: E731
        return self.net.weigh(None if hist is None else mean(hist), mean(cnn))

    def embed(self, image_bgr: np.ndarray, tlwh: np.ndarray, prev_image_bgr: np.ndarray | None = None) -> np.ndarray:
        """Embeds the detections of one frame.

        Args:
            image_bgr: (H, W, 3) uint8 BGR frame t, as OpenCV reads it.
            tlwh: (N, 4) float32 boxes, 0-based top-left x, y, width, height; N may be 0; boxes may
                reach outside the frame.
            prev_image_bgr: (H, W, 3) uint8 BGR frame t-1, or None on the first frame or after a
                gap (the flow channels are then zero).

        Returns:
            (N, E) float32 L2-normalised embeddings; the distance between two rows (0 to 2) is small
            for the same person.
        """
        return self.embed_inputs(self.inputs(image_bgr, tlwh, prev_image_bgr))


def embedding_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, E), (D, E) float32 embeddings -> (T, D) float32 Euclidean distances in [0, 2]."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
