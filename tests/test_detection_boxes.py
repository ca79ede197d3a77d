"""The appearance benchmark on detector boxes (mot/studies/detection_boxes.py) on a generated sequence."""

from __future__ import annotations

import numpy as np
import pytest

from mot.errors import UserError
from mot.io import read_ground_truth
from mot.sequence import open_sequence
from mot.studies.appearance import luv_histograms
from mot.studies.detection_boxes import KINDS, detection_boxes_text, matched_boxes, score_on_detections


def _write_dets(path, frames, tlwh):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f},-1,{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},0.9,-1,-1,-1\n"
                            for f, (x, y, w, h) in zip(frames, tlwh)))


def test_noisy_detections_match_one_to_one(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    boxes = matched_boxes(seq, "det/det.txt")
    gt = read_ground_truth(seq.gt_path)
    assert 0 < len(boxes["frames"]) <= int(gt.consider.sum())
    for f in np.unique(boxes["frames"]):   # one detection per person and frame, and one person per detection
        rows = boxes["frames"] == f
        assert len(set(boxes["ids"][rows])) == rows.sum()
        assert len({tuple(b) for b in boxes["det_tlwh"][rows]}) == rows.sum()
    x1 = np.maximum(boxes["tlwh"][:, 0], boxes["det_tlwh"][:, 0])
    x2 = np.minimum(boxes["tlwh"][:, 0] + boxes["tlwh"][:, 2], boxes["det_tlwh"][:, 0] + boxes["det_tlwh"][:, 2])
    assert (x2 > x1).all()                 # matched boxes overlap
    assert not np.allclose(boxes["tlwh"], boxes["det_tlwh"])   # the generated detector is noisy


def test_detections_on_the_ground_truth_score_the_same(seq_copy):
    """A detection file that repeats the ground-truth boxes: both kinds of box give the same scores
    and no misfit; the generated noisy detector gives a misfit."""
    dst = seq_copy
    gt = read_ground_truth(dst / "gt" / "gt.txt")
    keep = gt.consider
    _write_dets(dst / "det" / "det_gt.txt", gt.frames[keep], gt.tlwh[keep])
    seq = open_sequence(dst)
    same = score_on_detections(seq, "det/det_gt.txt", {"hist": luv_histograms}, gaps=(1, 5))
    assert same["boxes"] == int(keep.sum())
    assert same["misfit"] == pytest.approx({"dx/w": 0, "dy/h": 0, "log h": 0, "log w": 0}, abs=1e-3)
    a, b = (same["scores"][k]["hist"] for k in KINDS)
    for g in (1, 5):
        assert a[g]["auc"] == pytest.approx(b[g]["auc"], abs=1e-6) and a[g]["rank1"] == b[g]["rank1"]
    noisy = score_on_detections(seq, "det/det.txt", {"hist": luv_histograms}, gaps=(1, 5))
    assert noisy["misfit"]["log w"] > 0.005 and noisy["misfit"]["dx/w"] > 0.005
    text = detection_boxes_text({"SYN-A": noisy}, gaps=(1, 5))
    assert "| hist | detection |" in text and "| hist | ground truth |" in text


def test_bad_inputs_name_the_file(seq_copy):
    with pytest.raises(UserError, match="det_none.txt: detection file not found"):
        matched_boxes(open_sequence(seq_copy), "det/det_none.txt")
    _write_dets(seq_copy / "det" / "far.txt", [1], np.array([[5000.0, 5000.0, 10.0, 20.0]]))
    with pytest.raises(UserError, match="far.txt: no detection overlaps"):
        matched_boxes(open_sequence(seq_copy), "det/far.txt")
