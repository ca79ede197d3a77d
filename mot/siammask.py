"""The SiamMask branch (after Wang et al., CVPR 2019) on top of the shipped SiamRPN, sized for a CPU.

A third depthwise-correlation branch of the template and search features gives a response vector
per score-map position. At the position the SiamRPN search chose, that vector is decoded into a
coarse 8x8 mask and refined upward with the search crop's own backbone features at strides 8, 4
and 2 (SiamMask's refinement module, shrunk): the result is :func:`mask_size` square logits of the
target over the template-sized window of the search crop that the position stands for (crop
pixels ``[stride * i, stride * i + template_size)``, rows and columns).

The SiamRPN network stays frozen: its backbone is run layer by layer (:func:`backbone_levels`) so
the box and class outputs are those of :meth:`mot.siamrpn.SiamRPNNet.search`, and the mask head
reads the intermediate maps. The head's weights are a separate small file
(``mot/weights/siammask.pt``; ``scripts/train_siammask.py`` reproduces it) that records the
geometry of the SiamRPN weights it was trained on; loading checks both.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mot.errors import UserError
from mot.siamrpn import Geometry, SiamRPNNet, read_weights_file, xcorr_depthwise

#: The format of the mask head's weights file; bump it when the head or its inputs change.
MASK_WEIGHTS_VERSION = 1
MASK_WEIGHTS_FORMAT = "siamese-mot-siammask"
#: The head that ships with the package.
DEFAULT_MASK_NAME = "siammask.pt"


def mask_size(geometry: Geometry) -> int:
    """Side of the predicted mask: the window at stride 2 (32 for the shipped 64-pixel template)."""
    return 4 * (geometry.template_size // geometry.stride)


def backbone_levels(net: SiamRPNNet, x: torch.Tensor) -> list[torch.Tensor]:
    """The backbone's four stage outputs of ``x``: strides 2, 4, 8 and 8 (the last is the usual
    backbone output, so ``levels[-1]`` equals ``net.backbone(x)``)."""
    out = []
    for block in net.backbone:
        x = block(x)
        out.append(x)
    return out


class MaskHead(nn.Module):
    """The mask branch: correlation at one position -> :func:`mask_size` square logits.

    Args:
        geometry: the SiamRPN geometry (backbone width, template and search sizes).
    """

    def __init__(self, geometry: Geometry):
        super().__init__()
        w = geometry.width
        c = 4 * w
        self.geometry = geometry
        self.kernel = nn.Sequential(nn.Conv2d(c, c, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.search = nn.Sequential(nn.Conv2d(c, c, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.cells = geometry.template_size // geometry.stride   # the window's side at stride 8
        self.decode = nn.Sequential(nn.Linear(c, 128), nn.ReLU(inplace=True), nn.Linear(128, 8 * self.cells ** 2))
        self.lat8 = nn.Sequential(nn.Conv2d(c, 16, 1), nn.ReLU(inplace=True))
        self.lat4 = nn.Sequential(nn.Conv2d(2 * w, 8, 1), nn.ReLU(inplace=True))
        self.lat2 = nn.Sequential(nn.Conv2d(w, 8, 1), nn.ReLU(inplace=True))
        self.up8 = nn.Sequential(nn.Conv2d(8 + 16, 16, 3, padding=1), nn.ReLU(inplace=True))
        self.up4 = nn.Sequential(nn.Conv2d(16 + 8, 16, 3, padding=1), nn.ReLU(inplace=True))
        self.up2 = nn.Sequential(nn.Conv2d(16 + 8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 1, 3, padding=1))

    def template(self, template_feature: torch.Tensor) -> torch.Tensor:
        """(B, C, t, t) template backbone features -> (B, C, t - 2, t - 2) mask kernels."""
        return self.kernel(template_feature)

    def forward(self, kernel: torch.Tensor, levels: list[torch.Tensor], position: torch.Tensor) -> torch.Tensor:
        """Mask logits at one score-map position per pair.

        Args:
            kernel: (B, C, h, h) from :meth:`template`.
            levels: :func:`backbone_levels` of the B search crops.
            position: (B, 2) int64 score-map (row, column) of each pair.

        Returns:
            (B, m, m) float32 logits over the window of each position, m = :func:`mask_size`.
        """
        b = kernel.shape[0]
        corr = xcorr_depthwise(self.search(levels[-1]), kernel)          # (B, C, n, n)
        rows = torch.arange(b, device=kernel.device)
        vec = corr[rows, :, position[:, 0], position[:, 1]]              # (B, C)
        cells = self.cells
        x = self.decode(vec).reshape(b, 8, cells, cells)
        x = self.up8(torch.cat([x, self.lat8(_windows(levels[-1], position, cells, 1))], 1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.up4(torch.cat([x, self.lat4(_windows(levels[1], position, 2 * cells, 2))], 1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.up2(torch.cat([x, self.lat2(_windows(levels[0], position, 4 * cells, 4))], 1))
        return x[:, 0]


def _windows(feature: torch.Tensor, position: torch.Tensor, side: int, step: int) -> torch.Tensor:
    """(B, C, H, W) maps -> (B, C, side, side): the window at ``step * position`` of each."""
    out = [feature[i, :, r:r + side, c:c + side] for i, (r, c) in enumerate((position * step).tolist())]
    return torch.stack(out)


def save_mask_weights(path: str | Path, head: MaskHead, extra: dict | None = None) -> None:
    """Saves the head's state dict with the metadata :func:`load_mask_weights` checks, plus ``extra``
    (the training command, data and scores: plain values only)."""
    meta = {"format": MASK_WEIGHTS_FORMAT, "version": MASK_WEIGHTS_VERSION, "mask_size": mask_size(head.geometry),
            "geometry": dataclasses.asdict(head.geometry), **(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()}}, tmp)
    tmp.replace(path)


def load_mask_weights(path: str | Path, geometry: Geometry) -> tuple[MaskHead, dict]:
    """Loads a mask head saved by :func:`save_mask_weights` for a SiamRPN of ``geometry``
    (``weights_only=True``: no pickled code).

    Raises:
        UserError: a missing or unreadable file, another format or version, a geometry other than
            the SiamRPN's, or tensors that do not fit the head (one line each).
    """
    path = Path(path)
    blob, meta = read_weights_file(path, "SiamMask", MASK_WEIGHTS_FORMAT, MASK_WEIGHTS_VERSION)
    if meta.get("geometry") != dataclasses.asdict(geometry):
        raise UserError(f"{path}: SiamMask weights were trained for another SiamRPN geometry than the refiner's")
    if meta.get("mask_size") != mask_size(geometry):
        raise UserError(f"{path}: SiamMask mask size {meta.get('mask_size')}, this code predicts {mask_size(geometry)}")
    head = MaskHead(geometry)
    state = blob.get("state_dict")
    try:
        head.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: SiamMask weights do not fit the head ({first})") from None
    return head.eval(), meta
