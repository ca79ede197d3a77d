"""Which pixels of a person's patch are that person: a small foreground-map network.

A patch cut at a box holds the person and whatever else the box covers: background, and in a crowd
other people. :class:`ForegroundNet` maps a normalised LUV patch to per-pixel logits, at half the
patch's resolution, of belonging to the person the box is centred on (others count as background).
It is trained on pedestrian instance masks (Penn-Fudan; MOTS on MOT17-05 and MOT17-09). A
:class:`association.siamese.SiameseNet` built with ``foreground_floor`` adds a second colour layer
whose votes are weighted by this map: the person's colours without the background, which one frame
later is the same and helps, but after 30 frames has changed and misleads. The shipped weights
carry a map and use it from two frames on (since 5 December 2026; docs/appearance.md, "Shipped: the
foreground map from two frames on"; its trials in docs/appearance-last-cell.md).
:class:`association.by_gap.SharesByGap` gives the weighted colours their share by the frames between
two boxes.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ForegroundNet(nn.Module):
    """(B, 3, H, W) normalised LUV -> (B, H/2, W/2) logits of the centred person (45k parameters).

    An encoder down to stride 8 with a whole-patch context vector (which person is the centred one
    depends on all of it), decoded with 1x1 convolutions at stride 4 and upsampled to stride 2, the
    resolution :class:`association.siamese.SoftHistogram` votes at. About 7 ms for 50 patches of
    64x32 on one CPU thread; a U-Net decoding to stride 2 (128k parameters) cost 37-63 ms and
    scored the same on the appearance benchmark (docs/appearance-last-cell.md, session 22).
    """

    def __init__(self):
        super().__init__()
        self.e1 = _cbr(3, 16, 2)
        self.e2 = _cbr(16, 32, 2)
        self.e3 = nn.Sequential(_cbr(32, 48, 2), _cbr(48, 48))
        self.g = nn.Linear(48, 48)
        self.d = nn.Sequential(nn.Conv2d(48 + 32, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(32, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.e2(self.e1(x))
        c = self.e3(b)
        c = c + self.g(c.mean((2, 3)))[:, :, None, None]
        u = F.interpolate(c, size=b.shape[2:], mode="bilinear", align_corners=False)
        y = self.out(self.d(torch.cat([u, b], 1)))
        return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)[:, 0]
