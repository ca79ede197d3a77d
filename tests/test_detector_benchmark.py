"""The detector benchmark's matching (MOTChallenge protocol), AP and agreement, computed by hand."""

import json

import numpy as np
import pytest

from mot.errors import UserError
from mot.io import DetectionTable, GroundTruth
from mot.studies.detector_benchmark import (agreement, average_precision, benchmark_detectors, match_detections,
                                            quality)


def _gt(rows, classes=True):
    """rows: (frame, id, x, y, w, h, consider, class)."""
    a = np.array(rows, np.float64).reshape(-1, 8)
    return GroundTruth(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6].astype(np.float32),
                       a[:, 6] != 0, a[:, 7].astype(np.int64) if classes else None, np.ones(len(a), np.float32))


def _dets(rows):
    """rows: (frame, x, y, w, h, score)."""
    a = np.array(rows, np.float64).reshape(-1, 6)
    return DetectionTable(a[:, 0].astype(np.int64), a[:, 1:5].astype(np.float32), a[:, 5].astype(np.float32))


def test_matching_follows_the_mot17_protocol():
    gt = _gt([(1, 1, 0, 0, 10, 20, 1, 1),       # pedestrian
              (1, 2, 50, 0, 10, 20, 1, 7),      # static person: a distractor
              (1, 3, 100, 0, 10, 20, 0, 1),     # pedestrian not to consider
              (2, 1, 0, 0, 10, 20, 1, 1)])
    dets = _dets([(1, 0, 0, 10, 20, 0.9),       # TP
                  (1, 1, 0, 10, 20, 0.8),       # duplicate of the same person: FP
                  (1, 50, 0, 10, 20, 0.7),      # on the distractor: ignored
                  (1, 100, 0, 10, 20, 0.6),     # on the ignored pedestrian: FP (the protocol keeps it)
                  (1, 200, 0, 10, 20, 0.5)])    # on nobody: FP; frame 2's person is missed
    m = match_detections(gt, dets, num_frames=2)
    assert m.n_gt == 2 and m.frames == 2
    assert m.scores.tolist() == pytest.approx([0.9, 0.8, 0.6, 0.5])
    assert m.tp.tolist() == [True, False, False, False]
    q = quality(m)
    assert q["P"] == pytest.approx(25.0) and q["R"] == pytest.approx(50.0)
    assert q["AP"] == pytest.approx(50.0)   # recall 0.5 reached at precision 1
    assert q["F1max"] == pytest.approx(100 * 2 * 1 * 0.5 / 1.5) and q["at_score"] == pytest.approx(0.9)
    # only frame 2: nothing detected, one person missed
    only2 = match_detections(gt, dets, num_frames=2, frames=[2])
    assert only2.n_gt == 1 and len(only2.scores) == 0 and quality(only2)["AP"] == 0.0


def test_the_better_scored_detection_takes_the_person():
    gt = _gt([(1, 1, 0, 0, 10, 20, 1, 1)], classes=False)
    dets = _dets([(1, 0, 0, 10, 16, 0.3),      # IoU 0.8, low score
                  (1, 0, 0, 10, 12, 0.9)])     # IoU 0.6, high score: takes the person first
    m = match_detections(gt, dets, num_frames=1)
    assert m.tp.tolist() == [True, False]


def test_average_precision_all_point_interpolation():
    # TP, FP, TP, FP with 4 people: recall .25 .25 .5 .5, precision 1 .5 .667 .5
    recall = np.array([0.25, 0.25, 0.5, 0.5])
    precision = np.array([1.0, 0.5, 2 / 3, 0.5])
    assert average_precision(recall, precision) == pytest.approx(0.25 * 1.0 + 0.25 * 2 / 3)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def test_agreement_pairs_boxes_per_frame():
    a = _dets([(1, 0, 0, 10, 20, 0.9), (1, 50, 0, 10, 20, 0.5), (2, 0, 0, 10, 20, 0.4)])
    b = _dets([(1, 0, 0, 10, 20, 0.8), (1, 51, 0, 10, 20, 0.5), (3, 0, 0, 10, 20, 0.4)])
    r = agreement(a, b)
    assert r["paired"] == 2 and r["boxes_a"] == 3 and r["boxes_b"] == 3
    assert r["iou_ge_0.99"] == pytest.approx(50.0)
    assert r["max_score_diff"] == pytest.approx(0.1, abs=1e-6)


def test_benchmark_on_a_generated_sequence(synthetic_root, tmp_path):
    out = tmp_path / "out"
    result = benchmark_detectors(synthetic_root, [], ["noisy=det/det.txt", "none=det/missing.txt"], out,
                                 seqs=["SYN-A"], compare=["noisy:noisy"], log=lambda msg: None)
    assert [r["source"] for r in result["rows"]] == ["noisy"]      # a missing file gives no row
    assert 0 < result["rows"][0]["AP"] <= 100
    assert result["agreement"][0]["iou_ge_0.99"] == pytest.approx(100.0)
    assert json.loads((out / "detectors.json").read_text())["rows"] == result["rows"]
    assert "| SYN-A | noisy |" in (out / "detectors.md").read_text()
    with pytest.raises(UserError, match="--public .*expected LABEL=VALUE"):
        benchmark_detectors(synthetic_root, [], ["det/det.txt"], out)
