"""Many sequences, long runs (issue 16): resume after a kill, a Dask cluster, the run log, progress,
determinism across runs and workers, no file handle left open."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mot.cli import run_main
from mot.config import load_config
from mot.errors import UserError
from mot.pipeline import run
from mot.synthetic import SyntheticSpec, generate_sequence

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "FPS")   # the only fields of metrics.json that differ between equal runs


KILL_CONFIG = ["--config", "iou_only", "--set", "tracker.camera_motion=flow"]   # reads every frame, and fast
STUCK_FRAME = 60


@pytest.fixture(scope="module")
def kill_root(tmp_path_factory) -> Path:
    """A short sequence, then a longer one."""
    root = tmp_path_factory.mktemp("kill")
    generate_sequence(root, SyntheticSpec(name="SYN-1", num_frames=12, width=192, height=128, num_people=3, seed=3))
    generate_sequence(root, SyntheticSpec(name="SYN-2", num_frames=120, width=192, height=128, num_people=4, seed=4,
                                          stay=True))
    return root


def _stalling_copy(root: Path, dst: Path) -> Path:
    """``root`` as links, but SYN-2's frame :data:`STUCK_FRAME` is a named pipe: reading it waits until
    the test puts the frame there, so the run is surely inside SYN-2 when the test stops it."""
    for item in root.rglob("*"):
        target = dst / item.relative_to(root)
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.symlink_to(item)
    stuck = dst / "SYN-2" / "img1" / f"{STUCK_FRAME:06d}.jpg"
    stuck.unlink()
    os.mkfifo(stuck)
    return stuck


def _unstall(stuck: Path, root: Path) -> None:
    stuck.unlink()
    stuck.symlink_to(root / "SYN-2" / "img1" / stuck.name)


def _files(out: Path) -> dict[str, bytes]:
    """Every visible and hidden file in ``out`` but the log (which a resumed run appends to)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "run.jsonl"}


def _without_timing(metrics: dict) -> dict:
    def strip(d):
        return {k: v for k, v in d.items() if k not in TIMING}
    return {"sequences": {n: strip(m) for n, m in metrics["sequences"].items()},
            "combined": strip(metrics["combined"]), "failed": metrics["failed"]}


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


def _assert_same_outputs(resumed: Path, whole: Path) -> None:
    """Result files and config byte for byte; metrics.json apart from its timing fields; the
    per-sequence records apart from seconds and timing; no temporary file left anywhere."""
    a, b = _files(resumed), _files(whole)
    assert sorted(a) == sorted(b)
    assert not [n for n in a if n.endswith(".tmp")]
    for name in a:
        if name.endswith(".txt") or name == "config.yaml":
            assert a[name] == b[name], name
    assert _without_timing(json.loads(a["metrics.json"])) == _without_timing(json.loads(b["metrics.json"]))
    for name in (n for n in a if n.endswith(".metrics.json") and n != "metrics.json"):
        ra, rb = json.loads(a[name]), json.loads(b[name])
        for key in ("seconds", "timing"):
            ra.pop(key), rb.pop(key)
        assert ra == rb, name


def _default_sigint() -> None:
    # A test suite started in the background by a non-interactive shell inherits SIGINT ignored, and
    # so would the run: give it the terminal's default, as a user's Ctrl-C meets it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli_process(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_mot.py"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_sigint, **kwargs)


def _wait_for_done(out: Path, name: str, proc: subprocess.Popen, limit: float = 300) -> None:
    """Waits until the run has logged ``name`` as done (the test's guard against a hang, not a speed check)."""
    end = time.monotonic() + limit
    log = out / "run.jsonl"
    while not (log.exists() and f'"sequence_done", "sequence": "{name}"' in log.read_text()):
        assert proc.poll() is None, f"the run ended before {name} was done: {proc.communicate()[1][-800:]}"
        if time.monotonic() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{name} was never done: {proc.communicate()[1][-800:]}")
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_run_killed_half_way_resumes_to_the_same_files(kill_root, tmp_path, how):
    data, whole, resumed = tmp_path / "data", tmp_path / "whole", tmp_path / "resumed"
    stuck = _stalling_copy(kill_root, data)
    proc = _cli_process("--data", data, "--out", resumed, *KILL_CONFIG, "--quiet", start_new_session=True)
    _wait_for_done(resumed, "SYN-1", proc)
    # SIGINT to the process group, as Ctrl-C in a terminal sends it; SIGKILL leaves no chance to tidy.
    os.killpg(proc.pid, getattr(signal, how))
    _, stderr = proc.communicate(timeout=120)
    assert not (resumed / "SYN-2.txt").exists() and not (resumed / "SYN-2.metrics.json").exists()
    assert not (resumed / "metrics.json").exists()
    if how == "SIGINT":
        assert proc.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr
        assert not list(resumed.glob(".*.tmp"))     # the sequence in progress dropped its temporary file
        assert _events(resumed)[-1]["event"] == "run_interrupted"
    else:
        assert proc.returncode == -signal.SIGKILL
    first = (resumed / "SYN-1.txt").stat().st_mtime_ns

    _unstall(stuck, kill_root)
    assert run_main(["--data", str(data), "--out", str(resumed), *KILL_CONFIG, "--resume", "--quiet"]) == 0
    assert (resumed / "SYN-1.txt").stat().st_mtime_ns == first       # kept, not tracked again
    events = _events(resumed)
    start = max(i for i, e in enumerate(events) if e["event"] == "run_start")
    assert events[start]["to_run"] == ["SYN-2"]
    assert [e["sequence"] for e in events[start:] if e["event"] == "sequence_skipped"] == ["SYN-1"]
    assert run_main(["--data", str(kill_root), "--out", str(whole), *KILL_CONFIG, "--quiet"]) == 0
    _assert_same_outputs(resumed, whole)


def test_a_killed_worker_fails_its_sequences_and_resume_finishes_them(kill_root, tmp_path):
    data, whole, out = tmp_path / "data", tmp_path / "whole", tmp_path / "out"
    stuck = _stalling_copy(kill_root, data)
    proc = _cli_process("--data", data, "--out", out, *KILL_CONFIG, "--workers", "2", "--quiet")
    _wait_for_done(out, "SYN-1", proc)
    workers = [pid for pid in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "SYN-2: the worker running it died" in stderr and "Traceback" not in stderr
    assert not (out / "SYN-2.txt").exists()
    assert json.loads((out / "metrics.json").read_text())["failed"].keys() == {"SYN-2"}
    _unstall(stuck, kill_root)
    assert run_main(["--data", str(data), "--out", str(out), *KILL_CONFIG, "--resume", "--quiet"]) == 0
    assert run_main(["--data", str(kill_root), "--out", str(whole), *KILL_CONFIG, "--quiet"]) == 0
    _assert_same_outputs(out, whole)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_resume_redoes_only_what_is_not_complete(synthetic_root, tmp_path):
    whole, out = tmp_path / "whole", tmp_path / "out"
    cfg = load_config("iou_only")
    run(synthetic_root, cfg, whole)
    shutil.copytree(whole, out)
    (out / "SYN-A.txt").write_text("1,1,1,1,5,5,1,-1,-1,-1\n")   # a result file that is not the recorded one
    (out / "SYN-B.metrics.json").unlink()                          # a sequence without its record
    (out / ".SYN-B.txt.abc123.tmp").write_text("partial")          # a killed run's temporary file
    report = run(synthetic_root, cfg, out, resume=True)
    assert [r.skipped for r in report.runs] == [False, False]
    _assert_same_outputs(out, whole)
    again = run(synthetic_root, cfg, out, resume=True)
    assert [r.skipped for r in again.runs] == [True, True]
    _assert_same_outputs(out, whole)


def test_resume_refuses_an_output_folder_made_with_another_config(synthetic_root, tmp_path):
    out = tmp_path / "out"
    run(synthetic_root, load_config("iou_only"), out, seqs=["SYN-B"])
    with pytest.raises(UserError, match="another config"):
        run(synthetic_root, load_config("iou_only", ["tracker.max_age=3"]), out, seqs=["SYN-B"], resume=True)


def test_run_log_has_one_line_per_event(synthetic_root, tmp_path):
    data = tmp_path / "data"
    for name in ("SYN-A", "SYN-B"):
        (data / name).mkdir(parents=True)
        for item in (synthetic_root / name).iterdir():
            (data / name / item.name).symlink_to(item)
    (data / "SYN-B" / "det").unlink()
    out = tmp_path / "out"
    run(data, load_config("iou_only"), out)
    events = _events(out)
    assert [e["event"] for e in events] == ["run_start", "sequence_start", "sequence_done", "sequence_start",
                                            "sequence_failed", "run_end"]
    done = events[2]
    assert done["sequence"] == "SYN-A" and done["frames"] == 40 and done["rows"] > 0
    assert done["timing"]["counts"]["frames"] == 40 and done["metrics"]["MOTA"] is not None
    assert "det/det.txt not found" in events[4]["error"]
    assert events[-1]["failed"] == 1 and events[-1]["done"] == 1


def test_progress_bars_and_quiet(synthetic_root, tmp_path, capsys):
    run(synthetic_root, load_config("iou_only"), tmp_path / "a", progress=True)
    err = capsys.readouterr().err
    assert "sequences" in err and "2/2" in err and "SYN-A" in err and "fps=" in err
    assert run_main(["--data", str(synthetic_root), "--out", str(tmp_path / "b"), "--config", "iou_only",
                     "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("config", ["iou_only", "default"])
def test_results_are_byte_identical_run_after_run_and_across_workers(synthetic_root, tmp_path, config):
    outs = [tmp_path / "serial1", tmp_path / "serial2", tmp_path / "workers2"]
    run(synthetic_root, load_config(config), outs[0])
    run(synthetic_root, load_config(config), outs[1])
    run(synthetic_root, load_config(config), outs[2], workers=2)
    for name in ("SYN-A.txt", "SYN-B.txt"):
        texts = {(out / name).read_bytes() for out in outs}
        assert len(texts) == 1 and len(texts.pop()) > 0


def test_a_run_leaves_no_file_handle_open(synthetic_root, tmp_path):
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    # Once per process: imports open their own files, the first pool starts multiprocessing's
    # resource tracker (one pipe kept for the life of the process).
    run(synthetic_root, load_config("default"), tmp_path / "warm")
    run(synthetic_root, load_config("iou_only"), tmp_path / "warm2", workers=2, progress=True)
    gc.collect()
    before = sorted(os.listdir(fd_dir))
    run(synthetic_root, load_config("default"), tmp_path / "out", progress=True)
    run(synthetic_root, load_config("iou_only"), tmp_path / "out2", workers=2, progress=True)
    run(synthetic_root, load_config("iou_only"), tmp_path / "out2", resume=True)
    gc.collect()   # a finished pool's pipes and its progress queue's socket go with the pool object
    assert sorted(os.listdir(fd_dir)) == before


def test_local_dask_cluster_gives_the_serial_files(synthetic_root, tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = load_config("default")
    run(synthetic_root, cfg, tmp_path / "serial")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        report = run(synthetic_root, cfg, tmp_path / "cluster", cluster=cluster.scheduler_address, progress=True)
    assert report.failed == []
    for name in ("SYN-A.txt", "SYN-B.txt", "config.yaml"):
        assert (tmp_path / "cluster" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    assert _without_timing(json.loads((tmp_path / "cluster" / "metrics.json").read_text())) == \
        _without_timing(json.loads((tmp_path / "serial" / "metrics.json").read_text()))


def test_cluster_without_dask_is_a_one_line_error(synthetic_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed -> ImportError
    code = run_main(["--data", str(synthetic_root), "--out", str(tmp_path / "o"), "--cluster", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and 'pip install "siamese-mot[cluster]"' in err


def test_unreachable_cluster_is_a_one_line_error(synthetic_root, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import mot.cluster
    monkeypatch.setattr(mot.cluster, "CONNECT_TIMEOUT", 1)
    code = run_main(["--data", str(synthetic_root), "--out", str(tmp_path / "o"), "--cluster", "tcp://127.0.0.1:9",
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler" in err and "Traceback" not in err
