"""Appearance brings an identity back after a 20-frame occlusion that IoU association loses.

Person 1 of a generated sequence is hidden for 20 frames and waits in place meanwhile, so the
constant-velocity prediction has moved on when they reappear: IoU + Hungarian starts a new track,
the shipped learned association (Siamese appearance + context through XGBoost) should not.
"""

from pathlib import Path

import pytest

from mot.config import load_config
from mot.pipeline import run
from mot.studies.recovery import _seeds, main, occluded_scene, track_ids_of_person

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def occluded(tmp_path_factory) -> Path:
    return occluded_scene(tmp_path_factory.mktemp("occluded"), seed=5)


@pytest.mark.parametrize("config, keeps_identity", [("iou_only.yaml", False), ("default.yaml", True)])
def test_identity_across_occlusion(occluded, tmp_path, config, keeps_identity):
    report = run(occluded, load_config(CONFIGS / config), tmp_path)
    assert not report.failed
    before, after = track_ids_of_person(occluded, tmp_path / f"{occluded.name}.txt", person=1)
    assert before and after, "person 1 must be tracked on both sides of the gap"
    assert (before == after and len(before) == 1) is keeps_identity, (before, after)


def test_probe_counts_scenes_and_refuses_bad_seeds(tmp_path, capsys):
    """scripts/recovery_probe.py: IoU association loses the identity on every scene that counts; a
    bad --seeds is one line and exit 2."""
    assert _seeds("0-2,5") == [0, 1, 2, 5]
    assert main(["--config", str(CONFIGS / "iou_only.yaml"), "--seeds", "5,6", "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "kept one identity in 0 of 2 scenes" in out and (tmp_path / "r.json").is_file()
    for bad in (["--seeds", "a-b"], ["--seeds", "5-3"], ["--seeds", "5", "--out", str(tmp_path / "no" / "r.json")]):
        assert main(bad) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert main(["--seeds", "5", "--set", f"association.params.matcher={tmp_path / 'none.json'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.json" in err
