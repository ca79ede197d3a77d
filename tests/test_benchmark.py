"""The benchmark (issue 6): score scalings, stage timing, peers, the report builder and its CLI."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mot.studies import peers
from mot.studies.benchmark import benchmark, main
from mot.config import load_config
from mot.errors import UserError
from mot.pipeline import run
from mot.studies.report import write_report
from mot.sequence import open_folder
from mot.synthetic import SyntheticSpec, generate_sequence
from mot.timing import StageTimer

ROOT = Path(__file__).resolve().parents[1]
IOU = str(ROOT / "configs" / "iou_only.yaml")
NO_PYTHON = "/nonexistent/python"   # an interpreter that cannot run: DeepSORT is "not installed"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """Two tiny sequences; the second has no det/det.txt (a reported failure, the other still runs)."""
    root = tmp_path_factory.mktemp("bench")
    generate_sequence(root, SyntheticSpec(name="TINY-A", num_frames=25, num_people=4, seed=21))
    generate_sequence(root, SyntheticSpec(name="TINY-B", num_frames=10, num_people=3, seed=22))
    (root / "TINY-B" / "det" / "det.txt").unlink()
    return root


@pytest.fixture(scope="module")
def report_without_peers(tiny_root, tmp_path_factory):
    """The report for iou_only with DeepSORT unavailable and no ``trackers`` peers asked for."""
    out = tmp_path_factory.mktemp("bench_out")
    result = benchmark(tiny_root, out, configs=[IOU], peers=["deepsort"], peer_python=NO_PYTHON,
                       density=(4,), density_frames=3, repeats=2, detectors=False, log=lambda m: None)
    return result, write_report(result, out)


# ----------------------------------------------------------------------------- units

def test_scale_scores_by_hand():
    ref = np.array([-1.0, 0.0, 1.0, 130.0], np.float32)
    s = np.array([-1.0, 0.5, 130.0], np.float32)
    np.testing.assert_allclose(peers.scale_scores(s, "clip", ref), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(peers.scale_scores(s, "minmax", ref), [0.0, 1.5 / 131, 1.0], rtol=1e-6)
    np.testing.assert_allclose(peers.scale_scores(s, "rank", ref), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(peers.scale_scores(s, "sqrt_rank", ref), [0.5, np.sqrt(0.5), 1.0], rtol=1e-6)
    assert peers.scale_scores(np.zeros(0), "rank", np.zeros(0)).shape == (0,)
    with pytest.raises(UserError, match="valid: clip"):
        peers.scale_scores(s, "softmax", ref)


def test_stage_timer_laps_and_splits():
    t = StageTimer()
    t.lap("a")
    t.lap("b")
    t.split("b", {"b1": 0.25})
    t.count("people", 3)
    t.count("people", 2)
    d = t.as_dict()
    assert set(d["seconds"]) == {"a", "b", "b1"} and d["counts"] == {"people": 5}
    assert d["seconds"]["b1"] == 0.25 and d["seconds"]["b"] < 0  # b took ~0 s, so moving 0.25 s out leaves < 0


def test_pipeline_records_stage_times(tiny_root, tmp_path):
    report = run(tiny_root, load_config(IOU), tmp_path, seqs=["TINY-A"], progress=False)
    timing = report.runs[0].timing
    assert {"read", "detector", "association", "linking", "tracker"} <= set(timing["seconds"])
    assert "flow" not in timing["seconds"] and "refiner" not in timing["seconds"]  # absent, not zero
    assert timing["counts"]["frames"] == 25
    detections = np.loadtxt(tiny_root / "TINY-A" / "det" / "det.txt", delimiter=",", ndmin=2)
    assert timing["counts"]["people"] == len(detections)


def test_load_detections_per_frame(tiny_root):
    seq = open_folder(tiny_root / "TINY-A")
    dets = peers.load_detections(seq)
    assert len(dets) == 25 and sum(len(d) for d in dets) > 0
    with pytest.raises(UserError, match="det_frcnn.txt not found"):
        peers.load_detections(seq, "det/det_frcnn.txt")


# ----------------------------------------------------------------------------- report builder

def test_report_lists_results_failures_and_missing_peers(report_without_peers, tiny_root):
    result, md_path = report_without_peers
    md = md_path.read_text()
    assert result["ours"]["iou_only"]["combined"]["MOTA"] > 50  # the tiny scene is easy for IoU tracking
    assert "| iou_only | TINY-A |" in md
    # The sequence without detections is a reported failure; the other sequence still ran.
    assert "TINY-B: detection file det/det.txt not found" in md.split("## Failures")[1]
    # DeepSORT could not run: skipped, and said so in the tables and the list below them.
    assert result["peers"]["peers"]["deepsort"]["status"].startswith("not installed")
    assert "| DeepSORT | not installed |" in md
    assert "| 4 |" in md.split("## Cost vs people per frame")[1]  # the density row for 4 people
    saved = json.loads((md_path.parent / "report.json").read_text())
    assert saved["density"]["rows"][0]["people"] == 4 and len(saved["density"]["rows"][0]["fps_runs"]) == 2
    assert saved["machine"]["cores"] >= 1 and saved["machine"]["cpu"]


def test_report_plots(report_without_peers):
    _, md_path = report_without_peers
    md = md_path.read_text()
    if importlib.util.find_spec("matplotlib") is None:
        assert "matplotlib not installed" in md
        pytest.skip("matplotlib (the bench extra) is not installed: the report says so, no plots to check")
    for name in ("accuracy.png", "stages.png", "density.png"):
        data = (md_path.parent / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"({name})" in md


def test_trackers_peer_runs_and_is_scored(tiny_root, tmp_path):
    if importlib.util.find_spec("trackers") is None:
        pytest.skip("the bench extra (trackers) is not installed: pip install -e '.[bench]'")
    sweep = peers.run_peers(tiny_root, ("sort", "bytetrack"), scalings=("clip", "rank"), out_dir=tmp_path)
    data = sweep.to_json()
    assert data["failed"] == {"TINY-B": data["failed"]["TINY-B"]} and "not found" in data["failed"]["TINY-B"]
    for name in ("sort", "bytetrack"):
        peer = data["peers"][name]
        assert peer["status"] == "ok" and peer["best_scaling"] in ("clip", "rank")
        best = peer["sweep"][peer["best_scaling"]]["combined"]
        assert 20 < best["MOTA"] <= 100 and best["IDF1"] > 20
        assert best["HOTA"] is None or best["HOTA"] >= max(
            (peer["sweep"][s]["combined"]["HOTA"] or 0) for s in ("clip", "rank"))
        assert (tmp_path / name / "clip" / "TINY-A.txt").stat().st_size > 0
    # run_peer: 1-based frames, ids from 1, boxes near the detections it was given.
    seq = open_folder(tiny_root / "TINY-A")
    dets = peers.load_detections(seq)
    res = peers.run_peer("sort", seq, dets, "clip")
    assert len(res) and res.frames.min() >= 1 and res.ids.min() >= 1
    f = int(res.frames[0])
    assert np.abs(dets[f - 1].tlwh[:, None, :] - res.tlwh[res.frames == f][None]).sum(2).min() < 1.0


# ----------------------------------------------------------------------------- command line

def test_cli_user_error_is_one_line(tiny_root, tmp_path, capsys):
    assert main(["--data", str(tiny_root), "--out", str(tmp_path), "--peers", "kalmanfilter"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown peer 'kalmanfilter' (valid: sort, bytetrack, ocsort, botsort, deepsort, none)"]
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--peers", "none",
                 "--configs", IOU, "--density"]) == 2
    assert "data path not found" in capsys.readouterr().err


def test_cli_writes_report_and_exits_1_on_failed_sequences(tiny_root, tmp_path, capsys):
    code = main(["--data", str(tiny_root), "--out", str(tmp_path / "out"), "--configs", IOU, "--peers", "none",
                 "--density", "--no-detector-cost", "--quiet"])
    assert code == 1  # TINY-B has no detections
    captured = capsys.readouterr()
    assert "TINY-B" in captured.err and (tmp_path / "out" / "report.md").is_file()
    assert captured.out.strip() == f"report: {tmp_path / 'out' / 'report.md'}"
    assert sys.modules.get("deep_sort_realtime") is None  # DeepSORT never loads in this process


def test_detector_cost_hook_skips_file_detectors(tmp_path):
    from mot.studies.benchmark import detector_costs
    (tmp_path / "a.yaml").write_text("detector:\n  type: gt\n")
    (tmp_path / "b.yaml").write_text("detector: [not, a, mapping]\n")   # an invalid config is passed over
    result = detector_costs(tmp_path, log=lambda m: None)
    assert result == {"status": "ok", "rows": []}


def test_cli_reuses_earlier_peer_results(report_without_peers, tiny_root, tmp_path, capsys):
    _, md_path = report_without_peers
    earlier = str(md_path.parent / "report.json")
    args = ["--data", str(tiny_root), "--out", str(tmp_path), "--configs", IOU, "--density", "--no-detector-cost",
            "--quiet", "--reuse-peers", earlier]
    assert main(args) == 1  # TINY-B still has no detections
    reused = (tmp_path / "report.md").read_text()
    assert "| DeepSORT | not installed |" in reused and f"reused from {earlier} (run of " in reused
    capsys.readouterr()
    assert main(args + ["--det-file", "det/other.txt"]) == 2  # those peers ran on other detections
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its peers ran on" in err[0] and err[0].endswith("det/other.txt")


def test_a_config_that_cannot_run_is_reported_not_fatal(tiny_root, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("association:\n  type: learned\n  params:\n    features: [iou]\n    matcher: /nonexistent/m.json\n")
    code = main(["--data", str(tiny_root), "--out", str(tmp_path / "out"), "--configs", IOU, str(bad),
                 "--peers", "none", "--density", "3", "--density-frames", "3", "--repeats", "1",
                 "--density-config", str(bad), "--no-detector-cost", "--quiet"])
    assert code == 1
    md = (tmp_path / "out" / "report.md").read_text()
    assert "could not run: /nonexistent/m.json" in md
    assert "- bad: TINY-A: /nonexistent/m.json: matcher model not found" in md
    assert "| iou_only | TINY-A |" in md  # the config that can run still ran
