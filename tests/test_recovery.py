"""Appearance brings an identity back after a 20-frame occlusion that IoU association loses.

Person 1 of a generated sequence is hidden for 20 frames and waits in place meanwhile, so the
constant-velocity prediction has moved on when they reappear: IoU + Hungarian starts a new track,
the shipped learned association (Siamese appearance + context through XGBoost) should not.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from mot.config import load_config
from mot.geometry import iou_matrix_tlwh
from mot.io import read_ground_truth, read_results
from mot.pipeline import run
from mot.synthetic import SyntheticSpec, generate_sequence

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GAP = (41, 60)


@pytest.fixture(scope="module")
def occluded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("occluded")
    generate_sequence(root, SyntheticSpec(name="SYN-OCC", num_frames=100, num_people=4, seed=5,
                                          miss_rate=0.0, false_alarms=0.0, occluded_gap=GAP))
    return root / "SYN-OCC"


def track_ids_of_person(seq: Path, result_file: Path, person: int) -> tuple[set, set]:
    """The tracker ids that covered ``person`` (IoU >= 0.5, Hungarian per frame) before and after the gap."""
    gt = read_ground_truth(seq / "gt" / "gt.txt")
    res = read_results(result_file)
    before, after = set(), set()
    for frame in np.unique(gt.frames):
        g = gt.frames == frame
        r = res.frames == frame
        if not r.any():
            continue
        iou = iou_matrix_tlwh(gt.tlwh[g], res.tlwh[r])
        rows, cols = linear_sum_assignment(-iou)
        for i, j in zip(rows, cols):
            if gt.ids[g][i] == person and iou[i, j] >= 0.5:
                (before if frame < GAP[0] else after).add(int(res.ids[r][j]))
    return before, after


@pytest.mark.parametrize("config, keeps_identity", [("iou_only.yaml", False), ("default.yaml", True)])
def test_identity_across_occlusion(occluded, tmp_path, config, keeps_identity):
    report = run(occluded, load_config(CONFIGS / config), tmp_path)
    assert not report.failed
    before, after = track_ids_of_person(occluded, tmp_path / "SYN-OCC.txt", person=1)
    assert before and after, "person 1 must be tracked on both sides of the gap"
    assert (before == after and len(before) == 1) is keeps_identity, (before, after)
