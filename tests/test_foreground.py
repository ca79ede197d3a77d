"""The foreground-weighted colour layer (association/foreground.py; a lead, off in what ships)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from association.patches import PatchParams, bgr_to_luv_normalised
from association.siamese import SiameseNet, SoftHistogram, load_weights, network_meta, save_weights
from mot.errors import UserError


def _patch(left_bgr, right_bgr):
    img = np.zeros((1, 64, 32, 3), np.uint8)
    img[:, :, :16], img[:, :, 16:] = left_bgr, right_bgr
    return torch.from_numpy(bgr_to_luv_normalised(img))


def test_weights_leave_out_the_colours_they_zero():
    hist = SoftHistogram(8, 4, 2, 64, 32)
    two, red = _patch((0, 0, 255), (255, 0, 0)), _patch((0, 0, 255), (0, 0, 255))
    left = torch.zeros(1, 32, 16)
    left[:, :, :8] = 1
    assert torch.allclose(hist(two, torch.ones(1, 32, 16)), hist(two), atol=1e-6)
    assert torch.allclose(hist(two, left), hist(red), atol=1e-5)
    assert not torch.allclose(hist(two), hist(red), atol=1e-2)


def _net(**kw):
    torch.manual_seed(0)
    return SiameseNet(3, 16, 8, 4, hist_stripes=4, patch=(64, 32), **kw).eval()


class _LeftHalf(torch.nn.Module):
    """A foreground map that says the left half of the patch is the person."""

    def forward(self, x):
        logits = torch.full((len(x), 32, 16), -10.0)
        logits[:, :, :8] = 10.0
        return logits


def test_the_colour_half_joins_the_plain_and_the_weighted_histograms():
    net = _net(foreground_floor=0.1, foreground_mix=0.3)
    assert net.fg(torch.randn(2, 3, 64, 32)).shape == (2, 32, 16)      # the histogram's voting grid
    net.fg = _LeftHalf()
    x = torch.cat([_patch((0, 0, 255), (255, 0, 0)), _patch((0, 255, 0), (40, 40, 40))])
    with torch.no_grad():
        out, colour = net(x), net.colour(x)
        plain = net.hist(x)
        weighted = net.hist(x, 0.1 + 0.9 * torch.sigmoid(net.fg(x)))
    assert out.shape == (2, 16 + 2 * 2048) == (2, net.output_dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(colour, torch.cat([plain * 0.7 ** 0.5, weighted * 0.3 ** 0.5], 1), atol=1e-6)
    assert not torch.allclose(plain, weighted, atol=1e-3)


def test_weights_round_trip_and_a_missing_map_is_a_one_line_error(tmp_path):
    net = _net(foreground_floor=0.1)
    meta = network_meta(net, PatchParams(64, 32), None)
    save_weights(tmp_path / "fg.pt", net, meta)
    back, back_meta = load_weights(tmp_path / "fg.pt")
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(back(x), net(x), atol=1e-6)
    assert back_meta["foreground_floor"] == 0.1 and back_meta["foreground_mix"] == 0.5
    blob = torch.load(tmp_path / "fg.pt", weights_only=True)
    blob["state_dict"] = {k: v for k, v in blob["state_dict"].items() if not k.startswith("fg.")}
    torch.save(blob, tmp_path / "no_map.pt")
    with pytest.raises(UserError, match="do not match their metadata") as err:
        load_weights(tmp_path / "no_map.pt")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw", [dict(hist_stripes=0), dict(foreground_mix=1.0), dict(foreground_floor=1.0)])
def test_a_foreground_map_needs_a_colour_layer_and_valid_shares(kw):
    args = dict(hist_stripes=4, foreground_floor=0.1, foreground_mix=0.5) | kw
    with pytest.raises(ValueError, match="foreground map"):
        SiameseNet(3, 16, 8, 4, patch=(64, 32), **args)
