"""End to end: the command line on generated sequences, including bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mot.cli import evaluate_main, labelled_items, run_main
from mot.errors import UserError
from mot.config import load_config
from mot.pipeline import run, track_sequence
from mot.sequence import open_sequence

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "run_mot.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_run_writes_results_config_and_metrics(synthetic_root, tmp_path):
    out = tmp_path / "out"
    assert run_main(["--data", str(synthetic_root), "--out", str(out), "--set", "tracker.max_age=10"]) == 0
    assert (out / "SYN-A.txt").is_file() and (out / "SYN-B.txt").is_file()
    assert load_config(out / "config.yaml").tracker.max_age == 10
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["sequences"]) == {"SYN-A", "SYN-B"}
    combined = metrics["combined"]
    for key in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "FP", "FN", "frames", "seconds", "FPS"):
        assert key in combined
    # The IoU tracker on mildly noisy detections should track most people most of the time.
    assert combined["MOTA"] > 50 and combined["IDF1"] > 50 and combined["frames"] == 70


def test_oracle_detector_beats_noisy_detections(synthetic_root, tmp_path):
    noisy = run(synthetic_root, load_config(None), tmp_path / "a")
    oracle = run(synthetic_root, load_config(None, ["detector.type=gt"]), tmp_path / "b")
    assert oracle.combined["MOTA"] > noisy.combined["MOTA"]


def test_parallel_workers_give_the_same_results(synthetic_root, tmp_path):
    run(synthetic_root, load_config(None), tmp_path / "serial")
    run(synthetic_root, load_config(None), tmp_path / "parallel", workers=2)
    for name in ("SYN-A.txt", "SYN-B.txt"):
        assert (tmp_path / "serial" / name).read_text() == (tmp_path / "parallel" / name).read_text()


def test_results_are_deterministic(synthetic_root):
    seq = open_sequence(synthetic_root / "SYN-A")
    a, b = track_sequence(seq, load_config(None)), track_sequence(seq, load_config(None))
    assert (a.tlwh == b.tlwh).all() and (a.ids == b.ids).all() and len(a) > 0


def test_failed_sequence_is_reported_and_others_still_run(synthetic_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data)
    (data / "SYN-B" / "det" / "det.txt").unlink()
    out = tmp_path / "out"
    proc = _cli("--data", data, "--out", out)
    assert proc.returncode == 1
    assert "error: SYN-B: detection file det/det.txt not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "SYN-A.txt").is_file() and not (out / "SYN-B.txt").exists()
    assert set(json.loads((out / "metrics.json").read_text())["failed"]) == {"SYN-B"}


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "seqinfo.ini").unlink(), "seqinfo.ini not found"),
    (lambda d: (d / "img1" / "000003.jpg").unlink(), "frame 3 of 40 is missing"),
    (lambda d: (d / "img1" / "000003.jpg").write_bytes(b"junk"), "000003.jpg: cannot read image"),
    (lambda d: (d / "det" / "det.txt").write_text("1,-1,5,5\n"), "det.txt:1: expected at least 7"),
    (lambda d: (d / "gt" / "gt.txt").write_text("1,1,x,5,5,5,1,1,1\n"), "gt.txt:1: not a number"),
])
def test_bad_sequence_inputs_fail_cleanly(seq_copy, tmp_path, damage, message):
    damage(seq_copy)
    out = tmp_path / "out"
    proc = _cli("--data", seq_copy, "--out", out)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2   # the error, then the count of failed sequences
    assert not (out / "SYN-A.txt").exists()


def test_empty_detections_give_zero_tracks_not_an_error(seq_copy, tmp_path):
    (seq_copy / "det" / "det.txt").write_text("")
    report = run(seq_copy, load_config(None, ["association.type=iou", "association.params={}"]), tmp_path / "out")
    assert not report.failed
    assert (tmp_path / "out" / "SYN-A.txt").read_text() == ""
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())["sequences"]["SYN-A"]
    assert metrics["FP"] == 0 and metrics["FN"] > 0 and metrics["MOTA"] == 0


@pytest.mark.parametrize("args, message", [
    (["--set", "tracker.n_int=3"], "unknown key 'tracker.n_int'"),
    (["--set", "tracker.max_age=abc"], "'tracker.max_age' must be int"),
    (["--set", "detector.type=nope"], "unknown detector type 'nope'"),
    (["--config", "missing.yaml"], "missing.yaml: config file not found"),
    (["--seqs", "NOPE"], "no sequence matches --seqs NOPE"),
])
def test_bad_arguments_fail_cleanly(synthetic_root, tmp_path, args, message):
    proc = _cli("--data", synthetic_root, "--out", tmp_path / "out", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not any((tmp_path / "out").glob("*.txt"))


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_cannot_be_a_folder_fails_in_one_line(synthetic_root, tmp_path, capsys, where):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "sub"
    assert run_main(["--data", str(synthetic_root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: {out}: cannot be an output folder, {blocker} is a file"
    assert blocker.read_text() == "not a folder"


def test_evaluate_without_results_folder_fails_in_one_line(synthetic_root, tmp_path, capsys):
    assert evaluate_main(["--data", str(synthetic_root), "--results", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none'}: results folder not found"
    assert not (tmp_path / "none").exists()


def test_evaluate_script_matches_run(synthetic_root, tmp_path):
    out = tmp_path / "out"
    run(synthetic_root, load_config(None), out)
    first = json.loads((out / "metrics.json").read_text())
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--data", str(synthetic_root),
                           "--results", str(out), "--out", str(tmp_path / "ev")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    second = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for key in ("HOTA", "MOTA", "IDF1", "FP", "FN"):
        assert second["combined"][key] == first["combined"][key]


def test_demo_runs_with_no_arguments(tmp_path):
    proc = _cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HOTA" in proc.stdout and "COMBINED" in proc.stdout
    assert (tmp_path / "runs" / "demo" / "metrics.json").is_file()


def test_labelled_items_keep_order_and_reject_bad_items():
    assert labelled_items(["b=x=1", "a=y"], "--opt") == {"b": "x=1", "a": "y"}
    assert list(labelled_items(["cfg/one.yaml", "two=cfg/2.yaml"], "--configs", bare=lambda s: Path(s).stem)) == \
        ["one", "two"]
    for bad in (["plain"], ["=v"], ["k="], ["k=1", "k=2"]):
        with pytest.raises(UserError, match="--opt"):
            labelled_items(bad, "--opt")
