"""The three Siamese topologies of Leal-Taixé et al. (2016, section 3), behind one switch.

- ``cost_function``: two weight-sharing branches, each patch embedded once; the Euclidean distance
  of the embeddings is the cost (:class:`association.siamese.SiameseNet` itself). One forward pass
  per detection.
- ``in_network``: the same branches, their outputs joined inside the network by a learned weighted
  L1 distance and a sigmoid (Koch, Zemel, Salakhutdinov 2015): ``P(same) = sigmoid(b + sum_j
  w_j |a_j - b_j|)``. Still one branch pass per detection; the head is a dot product per pair.
- ``joint``: the two patches (with their flows) stacked into one input of twice the channels, one
  network, two-way softmax. One forward pass per (track, detection) pair.

Every network here answers :meth:`pair_logits` (``xa``, ``xb`` -> a score that is larger for the
same person: the logit of P(same), or minus the distance for ``cost_function``), which is what the
appearance benchmark and the pair losses use.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from association.backbone import MobileNetV2Features
from association.siamese import SiameseNet, pair_distance

TOPOLOGIES = ("cost_function", "in_network", "joint")


class InNetworkNet(nn.Module):
    """Shared branch + learned weighted L1 + sigmoid (Koch et al. 2015).

    Args:
        branch: the embedding branch (its ``output_dim`` sizes the head).
    """

    def __init__(self, branch: SiameseNet):
        super().__init__()
        self.branch = branch
        self.head = nn.Linear(branch.output_dim, 1)
        # Start as a scaled L1 distance: far apart -> unlikely the same person.
        nn.init.constant_(self.head.weight, -4.0 / branch.output_dim ** 0.5)
        nn.init.constant_(self.head.bias, 2.0)

    def spec(self) -> dict:
        return self.branch.spec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, E) embeddings (the branch)."""
        return self.branch(x)

    def head_logits(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        """(B, E), (B, E) embeddings -> (B,) logits of P(same)."""
        return self.head((ea - eb).abs()).squeeze(1)

    def pair_logits(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) x2 -> (B,) logits of P(same)."""
        return self.head_logits(self.branch(xa), self.branch(xb))


class JointNet(nn.Module):
    """Both patches stacked channel-wise into one network; two-way softmax (index 1: same person).

    Mirrors a branch's settings (backbone, depth or width, C input channels) on 2C input channels,
    globally pooled into a linear classifier.

    Args:
        branch: the :class:`SiameseNet` whose settings to mirror (its weights are not used).
    """

    def __init__(self, branch: SiameseNet):
        super().__init__()
        self._spec = branch.spec()
        c2 = 2 * branch.in_channels
        if branch.backbone == "mobilenetv2":
            self.features = MobileNetV2Features(c2, branch.depth)
            c_out = self.features.out_channels
        else:
            self.features = SiameseNet(c2, 8, branch.width).features
            c_out = 4 * branch.width
        self.classify = nn.Linear(c_out, 2)

    def spec(self) -> dict:
        return dict(self._spec)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """(B, 2C, H, W) stacked pair -> (B, 2) logits (softmax: P(different), P(same))."""
        return self.classify(F.adaptive_avg_pool2d(self.features(pair), 1).flatten(1))

    def pair_logits(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) x2 -> (B,) logit of P(same) (log-odds of the softmax)."""
        logits = self(torch.cat([xa, xb], 1))
        return logits[:, 1] - logits[:, 0]


def build_network(topology: str, branch: SiameseNet) -> nn.Module:
    """The network of a topology around a branch description.

    Raises:
        ValueError: unknown topology.
    """
    if topology == "cost_function":
        return branch
    if topology == "in_network":
        return InNetworkNet(branch)
    if topology == "joint":
        return JointNet(branch)
    raise ValueError(f"topology must be one of {', '.join(TOPOLOGIES)}, got {topology!r}")


def topology_of(net: nn.Module) -> str:
    """The topology name of a network built by :func:`build_network`."""
    if isinstance(net, InNetworkNet):
        return "in_network"
    if isinstance(net, JointNet):
        return "joint"
    if isinstance(net, SiameseNet):
        return "cost_function"
    raise TypeError(f"not a Siamese topology network: {type(net).__name__}")


def pair_logits(net: nn.Module, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B,) scores, larger for the same person, for any topology."""
    if isinstance(net, SiameseNet):
        return -pair_distance(net(xa), net(xb))
    return net.pair_logits(xa, xb)


def balanced_bce(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of P(same) logits, positive and negative pairs weighted equally.

    Args:
        logits: (B,) float32; same: (B,) bool.
    """
    y = same.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    pos, neg = same, ~same
    out = logits.sum() * 0.0
    if pos.any():
        out = out + loss[pos].mean()
    if neg.any():
        out = out + loss[neg].mean()
    return out
