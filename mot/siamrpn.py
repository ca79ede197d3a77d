"""The SiamRPN network (after Li et al., CVPR 2018, and SiamRPN++, CVPR 2019), sized for a CPU.

A small strided backbone reads a template crop (the target with context, ``template_size`` square)
and a search crop (``search_size`` square, the same scale, centred where the target should be).
Depthwise cross-correlation of the two feature maps feeds a classification head (target or
background per anchor) and a regression head (box offsets per anchor). The anchors are k boxes
per score-map cell with width/height ratios of standing people.

The network is stateless: templates are features returned to the caller (the refiner keeps one
per track in its ``mot.refiner.RefinerState``), and :class:`SiamRPN` searches any number of (template, crop) pairs
in one batched forward pass. Crop geometry and box decoding live here too, so training and
inference share them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mot.errors import UserError
from mot.weights import shipped
from mot.geometry import iou_matrix

#: The format of the saved weights file; bump it when the network, its inputs or anchors change.
WEIGHTS_VERSION = 1
WEIGHTS_FORMAT = "siamese-mot-siamrpn"
#: The weights that ship with the package (``scripts/train_siamrpn.py`` reproduces them).
DEFAULT_NAME = "siamrpn.pt"
DEFAULT_WEIGHTS = shipped(DEFAULT_NAME)
#: Pixel normalisation of the BGR crops: (value - mean) / std for every channel.
PIXEL_MEAN, PIXEL_STD = 128.0, 64.0


@dataclass
class Geometry:
    """Input sizes and anchors; saved with the weights and checked on load.

    Attributes:
        template_size: side of the square template crop (pixels).
        search_size: side of the square search crop; ``search_size - template_size`` is a multiple
            of ``stride``.
        stride: backbone stride (8).
        context: SiamRPN context margin: the template covers ``sqrt((w + p)(h + p))``,
            ``p = context * (w + h)``.
        anchor_size: sqrt(area) of every anchor, in crop pixels (a person fills about 0.46 of the
            template side with context 0.5).
        anchor_ratios: anchor width / height ratios (standing people are 0.25 to 0.75).
        width: channels of the first backbone stage (later stages 2x and 4x).
    """

    template_size: int = 64
    search_size: int = 128
    stride: int = 8
    context: float = 0.5
    anchor_size: float = 30.0
    anchor_ratios: list[float] = field(default_factory=lambda: [0.25, 0.33, 0.41, 0.55, 0.75])
    width: int = 16

    @property
    def k(self) -> int:
        return len(self.anchor_ratios)

    @property
    def score_size(self) -> int:
        """Side n of the score map."""
        return (self.search_size - self.template_size) // self.stride + 1

    def validate(self) -> str | None:
        if self.template_size % self.stride or self.search_size % self.stride:
            return "template_size and search_size must be multiples of stride"
        if self.search_size <= self.template_size:
            return "search_size must exceed template_size"
        return None


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def xcorr_depthwise(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise cross-correlation of B (search, kernel) pairs in one grouped convolution.

    Args:
        search: (B, C, Hs, Ws) float32 search features.
        kernel: (B, C, Hk, Wk) float32 template features.

    Returns:
        (B, C, Hs - Hk + 1, Ws - Wk + 1) float32.
    """
    b, c = kernel.shape[:2]
    out = F.conv2d(search.reshape(1, b * c, *search.shape[2:]), kernel.reshape(b * c, 1, *kernel.shape[2:]),
                   groups=b * c)
    return out.reshape(b, c, *out.shape[2:])


class _Branch(nn.Module):
    """Adjusts template and search features, correlates them depthwise, maps to ``out`` channels."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        self.kernel = nn.Sequential(nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
                                    nn.ReLU(inplace=True))
        self.search = nn.Sequential(nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels),
                                    nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, out, 1))


class SiamRPNNet(nn.Module):
    """Backbone + depthwise RPN head. Holds no per-target state.

    Args:
        geometry: input sizes and anchors (k = ``len(anchor_ratios)``).
    """

    def __init__(self, geometry: Geometry):
        super().__init__()
        w = geometry.width
        self.geometry = geometry
        self.backbone = nn.Sequential(_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2),
                                      _block(4 * w, 4 * w, 1))
        self.cls = _Branch(4 * w, 2 * geometry.k)
        self.loc = _Branch(4 * w, 4 * geometry.k)

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, T) normalised template crops -> (B, 2, C, T/8 - 2, T/8 - 2) template features
        (the classification and regression kernels stacked)."""
        f = self.backbone(z)
        return torch.stack([self.cls.kernel(f), self.loc.kernel(f)], dim=1)

    def search(self, template: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Correlates B templates with B search crops.

        Args:
            template: (B, 2, C, h, h) from :meth:`template`.
            x: (B, 3, S, S) normalised search crops.

        Returns:
            cls: (B, k, 2, n, n) float32 logits (background, target) per anchor.
            loc: (B, k, 4, n, n) float32 offsets (dx, dy, dw, dh) per anchor.
        """
        return self.correlate(template, self.backbone(x))

    def correlate(self, template: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`search` from the search crops' backbone features ``f`` (B, C, S/8, S/8)."""
        b, n, k = f.shape[0], self.geometry.score_size, self.geometry.k
        cls = self.cls.head(xcorr_depthwise(self.cls.search(f), template[:, 0]))
        loc = self.loc.head(xcorr_depthwise(self.loc.search(f), template[:, 1]))
        return cls.reshape(b, k, 2, n, n), loc.reshape(b, k, 4, n, n)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.search(self.template(z), x)


def make_anchors(geometry: Geometry) -> np.ndarray:
    """The anchors of the score map, in search-crop pixels relative to the crop centre.

    Returns:
        (k, n, n, 4) float32 cxcywh; ``[a, i, j]`` is ratio ``a`` at score-map row i, column j.
    """
    n, s = geometry.score_size, geometry.stride
    offsets = (np.arange(n, dtype=np.float32) - (n - 1) / 2) * s
    cy, cx = np.meshgrid(offsets, offsets, indexing="ij")
    out = np.zeros((geometry.k, n, n, 4), np.float32)
    for a, ratio in enumerate(geometry.anchor_ratios):
        out[a, ..., 0], out[a, ..., 1] = cx, cy
        out[a, ..., 2] = geometry.anchor_size * np.sqrt(ratio)
        out[a, ..., 3] = geometry.anchor_size / np.sqrt(ratio)
    return out


def encode(anchors: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Regression targets: (..., 4) cxcywh anchors and boxes -> (..., 4) float32 (dx, dy, dw, dh)."""
    a, b = np.asarray(anchors, np.float32), np.asarray(boxes, np.float32)
    return np.stack([(b[..., 0] - a[..., 0]) / a[..., 2], (b[..., 1] - a[..., 1]) / a[..., 3],
                     np.log(b[..., 2] / a[..., 2]), np.log(b[..., 3] / a[..., 3])], axis=-1).astype(np.float32)


def decode(anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode`: (..., 4) cxcywh anchors, (..., 4) deltas -> (..., 4) cxcywh."""
    cx = anchors[..., 0] + deltas[..., 0] * anchors[..., 2]
    cy = anchors[..., 1] + deltas[..., 1] * anchors[..., 3]
    w = anchors[..., 2] * torch.exp(deltas[..., 2].clamp(max=4.0))
    h = anchors[..., 3] * torch.exp(deltas[..., 3].clamp(max=4.0))
    return torch.stack([cx, cy, w, h], dim=-1)


def assign_targets(anchors: np.ndarray, box_cxcywh: np.ndarray, pos_iou: float, neg_iou: float):
    """Labels every anchor against one target box by IoU (SiamRPN/Faster R-CNN rule).

    Anchors with IoU >= ``pos_iou`` are positive, < ``neg_iou`` negative, between ignored; the
    best anchor is positive as well if its IoU is at least ``neg_iou`` (a small target still gets
    one).

    Args:
        anchors: (k, n, n, 4) float32 cxcywh anchors (crop pixels, centre-relative).
        box_cxcywh: (4,) float32 target in the same coordinates.

    Returns:
        labels: (k, n, n) int64: 1 positive, 0 negative, -1 ignored.
        deltas: (k, n, n, 4) float32 regression targets (meaningful where positive).
    """
    flat = anchors.reshape(-1, 4)
    box = np.asarray(box_cxcywh, np.float32).reshape(1, 4)

    def xyxy(c):
        return np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)

    iou = iou_matrix(xyxy(flat), xyxy(box))[:, 0]
    labels = np.full(len(flat), -1, np.int64)
    labels[iou < neg_iou] = 0
    labels[iou >= pos_iou] = 1
    best = int(np.argmax(iou))
    if iou[best] >= neg_iou:
        labels[best] = 1
    deltas = encode(flat, np.repeat(box, len(flat), axis=0))
    return labels.reshape(anchors.shape[:3]), deltas.reshape(anchors.shape)


def context_size(tlwh: np.ndarray, context: float) -> np.ndarray:
    """(N, 4) tlwh -> (N,) float32 template side in image pixels, ``sqrt((w + p)(h + p))``."""
    b = np.asarray(tlwh, np.float32).reshape(-1, 4)
    p = context * (b[:, 2] + b[:, 3])
    return np.sqrt(np.maximum((b[:, 2] + p) * (b[:, 3] + p), 1.0)).astype(np.float32)


def square_regions(centres: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Whole-pixel square regions, so that cropping is exact.

    Args:
        centres: (N, 2) float32 wanted centres (image pixels).
        sides: (N,) float32 wanted sides.

    Returns:
        (N, 4) float32 tlwh squares with integer corners and sides >= 1; their true centres are
        ``tlwh[:, :2] + tlwh[:, 2:] / 2``.
    """
    side = np.maximum(np.round(np.asarray(sides, np.float32)), 1.0)
    c = np.asarray(centres, np.float32).reshape(-1, 2)
    tl = np.round(c - side[:, None] / 2)
    return np.concatenate([tl, side[:, None], side[:, None]], axis=1).astype(np.float32)


class Pyramid:
    """An image and its 2x, 4x ... reductions (``cv2.pyrDown``), built lazily and shared by every
    crop of a frame: a large region is then cut from a small level, so a crop costs about the same
    whatever the region's size, and many tracks share one reduction of the frame.

    Args:
        image_bgr: (H, W, 3) uint8 BGR.
    """

    def __init__(self, image_bgr: np.ndarray):
        self.levels = [image_bgr]
        self.mean = tuple(float(v) for v in image_bgr.reshape(-1, 3)[::97].mean(axis=0))

    def level(self, i: int) -> np.ndarray:
        while len(self.levels) <= i and min(self.levels[-1].shape[:2]) >= 2:
            self.levels.append(cv2.pyrDown(self.levels[-1]))
        return self.levels[min(i, len(self.levels) - 1)]


def crop_regions(image_bgr: np.ndarray | Pyramid, regions_tlwh: np.ndarray, size: int) -> np.ndarray:
    """Crops square regions to ``size x size`` network inputs.

    Each region is cut from the smallest pyramid level on which it still spans at least ``size``
    pixels, by an exact (sub-pixel) affine map; parts outside the image are filled with the image's
    mean colour (as SiamFC/SiamRPN do).

    Args:
        image_bgr: (H, W, 3) uint8 BGR, or its :class:`Pyramid` (to share the reductions).
        regions_tlwh: (N, 4) float32 square tlwh regions (0-based pixels); may leave the image.
        size: output side.

    Returns:
        (N, 3, size, size) float32 normalised crops.
    """
    pyramid = image_bgr if isinstance(image_bgr, Pyramid) else Pyramid(image_bgr)
    regions = np.asarray(regions_tlwh, np.float64).reshape(-1, 4)
    out = np.empty((len(regions), size, size, 3), np.uint8)
    for i, (x0, y0, side, _) in enumerate(regions):
        lvl = max(int(np.floor(np.log2(max(side / size, 1.0)))), 0)
        img = pyramid.level(lvl)
        f = 2.0 ** -min(lvl, len(pyramid.levels) - 1)
        step = side / size * f
        # Output pixel u has its centre at x0 + (u + 0.5) side / size; pixel indices (centres at
        # integers) halve from one pyrDown level to the next.
        m = np.array([[step, 0, (x0 + 0.5 * side / size - 0.5) * f],
                      [0, step, (y0 + 0.5 * side / size - 0.5) * f]], np.float64)
        out[i] = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=pyramid.mean)
    return normalise(out)


def normalise(crops_bgr: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32 network input."""
    x = (crops_bgr.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def save_weights(path: str | Path, net: SiamRPNNet, extra: dict | None = None) -> None:
    """Saves the state dict with the metadata that loading checks (format, version, geometry,
    anchors) plus ``extra`` (training command, data, scores: plain values only)."""
    meta = {"format": WEIGHTS_FORMAT, "version": WEIGHTS_VERSION, "geometry": dataclasses.asdict(net.geometry),
            "anchors": make_anchors(net.geometry).reshape(-1, 4)[:net.geometry.k, 2:].tolist(),
            **(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, tmp)
    tmp.replace(path)


def read_weights_file(path: Path, what: str, fmt: str, version: int) -> tuple[dict, dict]:
    """A weights file's ``{"meta", "state_dict"}`` blob and its metadata, read with
    ``weights_only=True``; ``what`` names the model in the errors.

    Raises:
        UserError: a missing or unreadable file, another format or another version (one line each).
    """
    if not path.is_file():
        raise UserError(f"{path}: {what} weights not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise UserError(f"{path}: not a readable {what} weights file ({type(exc).__name__})") from None
    meta = blob.get("meta") if isinstance(blob, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise UserError(f"{path}: not a {what} weights file (no '{fmt}' metadata)")
    if meta.get("version") != version:
        raise UserError(f"{path}: {what} weights version {meta.get('version')}, this code reads {version}")
    return blob, meta


def load_weights(path: str | Path) -> tuple[SiamRPNNet, dict]:
    """Loads weights saved by :func:`save_weights` (``weights_only=True``: no pickled code).

    Raises:
        UserError: a missing or unreadable file, another format or version, or metadata that does
            not match the network this code builds (input sizes, anchors, tensor shapes).
    """
    path = Path(path)
    blob, meta = read_weights_file(path, "SiamRPN", WEIGHTS_FORMAT, WEIGHTS_VERSION)
    names = {f.name for f in dataclasses.fields(Geometry)}
    raw = meta.get("geometry")
    if not isinstance(raw, dict) or set(raw) != names:
        raise UserError(f"{path}: SiamRPN weights geometry metadata must have keys {', '.join(sorted(names))}")
    geometry = Geometry(**raw)
    problem = geometry.validate()
    if problem:
        raise UserError(f"{path}: SiamRPN weights geometry: {problem}")
    anchors = make_anchors(geometry).reshape(-1, 4)[:geometry.k, 2:]
    if not np.allclose(np.asarray(meta.get("anchors"), np.float32).reshape(-1, 2), anchors, atol=1e-3):
        raise UserError(f"{path}: SiamRPN anchors in the metadata do not match its geometry")
    net = SiamRPNNet(geometry)
    try:
        net.load_state_dict(blob["state_dict"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:120]
        raise UserError(f"{path}: SiamRPN weights do not fit the network ({first})") from None
    return net.eval(), meta
