"""SiamMask: RLE, pasting at image borders, one owner per pixel, the head's shapes, its weights'
metadata checks, and the MOTS file a tracking run writes (on a generated sequence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mot.config import load_config
from mot.errors import UserError
from mot.masks import (MaskWriter, PastedMask, box_mask, compose, decode_rle, encode_rle, paste, read_mots,
                       run_lengths)
from mot.siammask import (MASK_WEIGHTS_VERSION, MaskHead, backbone_levels, load_mask_weights, mask_size,
                          save_mask_weights)
from mot.siamrpn import Geometry, SiamRPNNet, save_weights

coco = pytest.importorskip("pycocotools.mask")

TINY = Geometry(template_size=32, search_size=64, anchor_size=15.0, anchor_ratios=[0.4, 0.6], width=4)


def _full(mask: PastedMask, hw) -> np.ndarray:
    out = np.zeros(hw, bool)
    h, w = mask.bitmap.shape
    out[mask.y0:mask.y0 + h, mask.x0:mask.x0 + w] = mask.bitmap
    return out


def test_rle_round_trip_and_agrees_with_pycocotools():
    rng = np.random.default_rng(3)
    for _ in range(200):
        hw = tuple(int(v) for v in rng.integers(1, 25, 2))
        bh, bw = int(rng.integers(0, hw[0] + 1)), int(rng.integers(0, hw[1] + 1))
        y0, x0 = int(rng.integers(0, hw[0] - bh + 1)), int(rng.integers(0, hw[1] - bw + 1))
        mask = PastedMask(x0, y0, rng.random((bh, bw)) < rng.random())
        full = _full(mask, hw)
        counts = encode_rle(mask, hw)
        assert np.array_equal(decode_rle(counts, hw), full)                       # our round trip
        assert counts == coco.encode(np.asfortranarray(full.astype(np.uint8)))["counts"].decode()
        ours = coco.decode({"size": list(hw), "counts": counts.encode()}).astype(bool)
        assert np.array_equal(ours, full)                                         # pycocotools reads ours
        assert sum(run_lengths(mask, hw)) == hw[0] * hw[1]


def test_paste_window_partly_outside_the_image():
    prob = np.zeros((8, 8), np.float32)
    prob[:, :4] = 1.0                                   # the window's left half is the target
    m = paste(prob, np.array([-10, -6, 40, 40], np.float32), (20, 30), 0.5)
    assert (m.x0, m.y0) == (0, 0) and m.bitmap.shape == (20, 30)   # clipped to the image
    full = _full(m, (20, 30))
    assert full[:, :10].all()                           # window x in [-10, 10): left half
    assert not full[:, 10:].any()
    # A window over the bottom-right corner.
    m = paste(np.ones((8, 8), np.float32), np.array([25, 15, 10, 10], np.float32), (20, 30), 0.5)
    assert (m.x0, m.y0) == (25, 15) and m.bitmap.shape == (5, 5) and m.bitmap.all()
    # Wholly outside: empty.
    assert paste(np.ones((8, 8), np.float32), np.array([40, 0, 10, 10], np.float32), (20, 30), 0.5).area == 0


def test_box_mask_clipped_and_compose_gives_one_owner_per_pixel():
    hw = (20, 30)
    a = box_mask(np.array([-5, 2, 15, 10], np.float32), hw)     # partly left of the image
    assert (a.x0, a.y0) == (0, 2) and a.bitmap.shape == (10, 10)
    b = box_mask(np.array([5, 4, 10, 14], np.float32), hw)      # overlaps a; its bottom is lower
    out = compose([a, b], np.array([[-5, 2, 15, 10], [5, 4, 10, 14]], np.float32), hw)
    fa, fb = _full(out[0], hw), _full(out[1], hw)
    assert not (fa & fb).any()
    assert (fa | fb).sum() == (_full(a, hw) | _full(b, hw)).sum()
    assert fb[4:12, 5:10].all()                                # the nearer person (lower bottom) keeps the overlap


def _tiny_net_and_head(seed=0):
    torch.manual_seed(seed)
    net, head = SiamRPNNet(TINY).eval(), MaskHead(TINY).eval()
    return net, head


def test_head_output_shapes_for_a_batch_of_tracks():
    net, head = _tiny_net_and_head()
    b = 5
    z, x = torch.randn(b, 3, 32, 32), torch.randn(b, 3, 64, 64)
    levels = backbone_levels(net, x)
    assert torch.equal(levels[-1], net.backbone(x))
    n = TINY.score_size
    position = torch.tensor([[0, 0], [n - 1, n - 1], [2, 1], [0, n - 1], [n - 1, 0]])
    with torch.no_grad():
        out = head(head.template(net.backbone(z)), levels, position)
    assert out.shape == (b, mask_size(TINY), mask_size(TINY))
    assert mask_size(Geometry()) == 32


@pytest.fixture
def tiny_files(tmp_path):
    net, head = _tiny_net_and_head()
    rpn, mask = tmp_path / "rpn.pt", tmp_path / "mask.pt"
    save_weights(rpn, net, {"command": "test"})
    save_mask_weights(mask, head, {"command": "test"})
    return rpn, mask


def test_search_with_masks_batched_keeps_the_boxes(tiny_files):
    from mot.refiner import SiamRPN

    rpn, mask = tiny_files
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    tlwh = np.array([[10, 10, 12, 30], [60, 20, 15, 40], [-5, 50, 10, 30]], np.float32)
    plain, masked = SiamRPN(str(rpn), "cpu"), SiamRPN(str(rpn), "cpu", mask_weights=str(mask))
    boxes, scores = plain.search(image, plain.templates(image, tlwh), tlwh)
    templates = masked.templates(image, tlwh)
    assert templates.shape[1] == 3
    b2, s2, probs, windows = masked.search(image, templates, tlwh, masks=True)
    np.testing.assert_allclose(b2, boxes, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(s2, scores, rtol=1e-5, atol=1e-6)
    assert probs.shape == (3, mask_size(TINY), mask_size(TINY)) and windows.shape == (3, 4)
    assert ((probs >= 0) & (probs <= 1)).all()
    one = masked.search(image, templates[1:2], tlwh[1:2], masks=True)   # batched = one by one
    np.testing.assert_allclose(one[2][0], probs[1], atol=1e-5)
    np.testing.assert_allclose(one[3][0], windows[1], atol=1e-4)


def _one_line_error(path, geometry=TINY, match=None):
    with pytest.raises(UserError, match=match) as info:
        load_mask_weights(path, geometry)
    assert "\n" not in str(info.value)


def test_mask_weights_metadata_checked(tiny_files, tmp_path):
    _, path = tiny_files
    head, meta = load_mask_weights(path, TINY)
    assert meta["version"] == MASK_WEIGHTS_VERSION and meta["command"] == "test"
    blob = torch.load(path, weights_only=True)

    wrong = dict(blob, meta=dict(blob["meta"], version=MASK_WEIGHTS_VERSION + 1))
    torch.save(wrong, tmp_path / "version.pt")
    _one_line_error(tmp_path / "version.pt", match="version")

    state = dict(blob["state_dict"])
    key = next(k for k in state if k.endswith("weight") and state[k].ndim == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    torch.save(dict(blob, state_dict=state), tmp_path / "shape.pt")
    _one_line_error(tmp_path / "shape.pt", match="do not fit")

    (tmp_path / "corrupt.pt").write_bytes(b"not a torch file at all" * 10)
    _one_line_error(tmp_path / "corrupt.pt", match="not a readable")

    _one_line_error(path, geometry=dataclasses.replace(TINY, width=8), match="geometry")
    _one_line_error(tmp_path / "missing.pt", match="not found")
    torch.save({"meta": {"format": "other"}, "state_dict": {}}, tmp_path / "foreign.pt")
    _one_line_error(tmp_path / "foreign.pt", match="not a SiamMask")


def test_mask_config_needs_the_refiner():
    with pytest.raises(UserError, match=r"refiner: mask: true needs the refiner on \(set refiner.enabled: true"):
        load_config(None, ["refiner.enabled=false", "refiner.mask=true"])
    cfg = load_config(None, ["refiner.enabled=true", "refiner.mask=true"])
    assert cfg.refiner.mask and not load_config(None).refiner.mask


def test_mask_writer_is_atomic_and_sorted(tmp_path):
    path = tmp_path / "S.masks.txt"
    hw = (10, 12)
    with pytest.raises(RuntimeError):
        with MaskWriter(path, delay=2, image_hw=hw) as w:
            w.add(np.array([1]), np.array([3]), np.array([[0, 0, 4, 4]], np.float32), [box_mask([0, 0, 4, 4], hw)], 1)
            raise RuntimeError("the run failed")
    assert not path.exists() and not list(tmp_path.iterdir())
    with MaskWriter(path, delay=1, image_hw=hw) as w:
        w.add(np.array([2, 2]), np.array([7, 3]), np.array([[0, 0, 4, 4], [5, 5, 3, 3]], np.float32),
              [box_mask([0, 0, 4, 4], hw), box_mask([5, 5, 3, 3], hw)], 2)
        w.add(np.array([1]), np.array([9]), np.array([[1, 1, 2, 2]], np.float32), [box_mask([1, 1, 2, 2], hw)], 2)
        w.add(np.array([3]), np.array([1]), np.array([[1, 1, 2, 2]], np.float32), [None], 3)   # no mask: no line
    lines = path.read_text().splitlines()
    assert [tuple(line.split()[:5]) for line in lines] == [("1", "9", "2", "10", "12"), ("2", "3", "2", "10", "12"),
                                                           ("2", "7", "2", "10", "12")]
    assert decode_rle(lines[1].split()[5], hw)[5:8, 5:8].all()


def test_tracking_run_writes_mots_masks(synthetic_root, tmp_path, tiny_files):
    from mot.pipeline import run_one
    from mot.io import read_results

    rpn, mask = tiny_files
    cfg = load_config("iou_only", ["refiner.enabled=true", "refiner.mask=true", f"refiner.weights={rpn}",
                             f"refiner.mask_weights={mask}", "refiner.mask_threshold=0.0",
                             "runtime.device=cpu", "runtime.torch_threads=1"])
    out = tmp_path / "out"
    result = run_one(synthetic_root / "SYN-B", cfg, out)
    assert result.error is None
    rows = read_results(out / "SYN-B.txt")
    mots = read_mots(out / "SYN-B.masks.txt")
    assert mots, "no mask written"
    import cv2
    h, w = cv2.imread(str(next((synthetic_root / "SYN-B" / "img1").iterdir()))).shape[:2]
    box_rows = set(zip(rows.frames.tolist(), rows.ids.tolist()))
    for frame, entries in mots.items():
        union = np.zeros((h, w), np.int32)
        for track_id, cls, mh, mw, rle in entries:
            assert (cls, mh, mw) == (2, h, w)
            assert (frame, track_id) in box_rows                   # every mask belongs to an output row
            union += decode_rle(rle, (h, w))
        assert union.max() <= 1                                    # one owner per pixel
        assert [e[0] for e in entries] == sorted(e[0] for e in entries)


def test_missing_pycocotools_is_a_one_line_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    with pytest.raises(UserError, match="pip install pycocotools") as info:
        MaskWriter(tmp_path / "S.masks.txt")
    assert "\n" not in str(info.value)


def test_shipped_mask_head_fits_the_shipped_siamrpn():
    from mot.siammask import DEFAULT_MASK_NAME
    from mot.siamrpn import DEFAULT_NAME, load_weights
    from mot.weights import shipped

    net, _ = load_weights(shipped(DEFAULT_NAME))
    path = shipped(DEFAULT_MASK_NAME)
    head, meta = load_mask_weights(path, net.geometry)
    assert path.stat().st_size < 2 * 1024 * 1024
    assert "train_siammask.py" in meta["command"]


def test_run_without_pycocotools_stops_before_any_work(monkeypatch, synthetic_root, tmp_path):
    import sys

    from mot.pipeline import run

    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    cfg = load_config("iou_only", ["refiner.enabled=true", "refiner.mask=true"])
    with pytest.raises(UserError, match="pycocotools"):
        run(synthetic_root / "SYN-B", cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()
