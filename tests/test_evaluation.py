"""Our evaluation equals TrackEval's own MotChallenge2DBox on the same files (MOT15 and MOT17 modes)."""

import json
import shutil

import numpy as np
import pytest

from mot.config import load_config
from mot.evaluation import preprocess, score_sequence
from mot.io import TrackResults, read_ground_truth, read_results
from mot.pipeline import run
from trackeval_reference import trackeval_reference

pytest.importorskip("trackeval", reason="TrackEval not installed (pip install --no-deps trackeval==1.3.0)")


def _rewrite_gt(seq_dir, mode):
    """Turns SYN ground truth into a 2DMOT2015 file, or a MOT17 file with distractors and ignored rows."""
    lines = (seq_dir / "gt" / "gt.txt").read_text().splitlines()
    out = []
    for line in lines:
        f, i, x, y, w, h, conf, cls, vis = line.split(",")
        if mode == "MOT15":
            out.append(",".join([f, i, x, y, w, h, "1" if int(i) != 2 else "0", "-1", "-1", "-1"]))
        else:
            cls = {3: "7", 4: "8", 5: "12"}.get(int(i), "1")
            consider = "0" if int(i) in (3, 4, 5, 6) else "1"
            out.append(",".join([f, i, x, y, w, h, consider, cls, vis]))
    (seq_dir / "gt" / "gt.txt").write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("mode", ["MOT15", "MOT17"])
def test_equals_trackeval(mode, synthetic_root, tmp_path):
    data = tmp_path / "data"
    for name in ("SYN-A", "SYN-B"):
        shutil.copytree(synthetic_root / name, data / name)
        _rewrite_gt(data / name, mode)
    out = tmp_path / "out"
    report = run(data, load_config(None), out)
    assert not report.failed
    metrics = json.loads((out / "metrics.json").read_text())
    if mode == "MOT17":
        # The tracker follows everyone, so some of its boxes land on distractors: they must be removed,
        # not counted as false positives.
        gt = read_ground_truth(data / "SYN-A" / "gt" / "gt.txt")
        assert gt.protocol == "MOT17" and np.isin(gt.classes, [7, 8, 12]).any()
        results = read_results(out / "SYN-A.txt")
        kept = sum(len(f.trk_ids) for f in preprocess(gt, results, 40))
        assert len(results) - kept > 10, "the tracker output must hit distractor boxes for this test to mean anything"
    ref = trackeval_reference([data / "SYN-A", data / "SYN-B"], out, tmp_path / "te", mode)
    for seq in ("SYN-A", "SYN-B", "COMBINED"):
        ours = metrics["combined"] if seq == "COMBINED" else metrics["sequences"][seq]
        for key in ("MOTA", "IDF1", "HOTA"):
            assert ours[key] == pytest.approx(ref[seq][key], abs=0.1), (seq, key)


def test_distractor_hits_are_not_false_positives(tmp_path):
    gt_file = tmp_path / "gt.txt"
    # Frame 1: a pedestrian (id 1) and a static person (class 7); the tracker boxes both.
    gt_file.write_text("1,1,10,10,20,40,1,1,1\n1,2,100,10,20,40,1,7,1\n")
    gt = read_ground_truth(gt_file)
    res = TrackResults(np.array([1, 1]), np.array([1, 2]), np.array([[9, 9, 20, 40], [99, 9, 20, 40]], np.float32),
                       np.ones(2, np.float32))
    m = score_sequence(gt, res, 1).metrics
    assert m["FP"] == 0 and m["FN"] == 0 and m["MOTA"] == pytest.approx(100)
    # The same boxes scored as 2DMOT2015 (no classes): the second box is a false positive... of a real person.
    gt15 = tmp_path / "gt15.txt"
    gt15.write_text("1,1,10,10,20,40,1,-1,-1,-1\n")
    m15 = score_sequence(read_ground_truth(gt15), res, 1).metrics
    assert m15["FP"] == 1 and m15["MOTA"] == pytest.approx(0)


def test_perfect_and_empty_tracker(tmp_path):
    gt_file = tmp_path / "gt.txt"
    gt_file.write_text("1,1,10,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n")
    gt = read_ground_truth(gt_file)
    perfect = TrackResults(gt.frames, gt.ids, gt.tlwh, np.ones(2, np.float32))
    m = score_sequence(gt, perfect, 2).metrics
    assert m["MOTA"] == pytest.approx(100) and m["IDF1"] == pytest.approx(100) and m["HOTA"] == pytest.approx(100)
    m = score_sequence(gt, TrackResults.empty(), 2).metrics
    assert m["FN"] == 2 and m["MOTA"] == pytest.approx(0) and m["HOTA"] == pytest.approx(0)
