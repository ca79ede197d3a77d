"""The import direction of DESIGN's layout: the product never imports the lab, stages never import
the tracker or the runner."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = ("mot.training", "mot.studies")
UPSTREAM = ("mot.tracker", "mot.pipeline", "mot.api", "mot.cli") + LAB


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _hits(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_stages_never_import_the_tracker_or_the_runner():
    assert _hits("association", UPSTREAM) == []
    assert _hits("detectors", UPSTREAM) == []


def test_library_never_imports_training_or_studies():
    lab_dirs = {ROOT / "mot" / "training", ROOT / "mot" / "studies"}
    bad = []
    for path in sorted((ROOT / "mot").rglob("*.py")):
        if lab_dirs & set(path.parents):
            continue
        bad += [f"{path.relative_to(ROOT)} imports {n}" for n in _imports(path)
                if any(n == f or n.startswith(f + ".") for f in LAB)]
    assert bad == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The check above would fail on a stage importing the tracker inside a function."""
    f = tmp_path / "stage.py"
    f.write_text("def f():\n    from mot.tracker import TrackManager\n    import mot.studies.loso\n")
    assert {"mot.tracker", "mot.tracker.TrackManager", "mot.studies.loso"} <= _imports(f)


def test_a_tracking_run_loads_no_training_or_study_module(synthetic_root, tmp_path):
    """A whole run of the default pipeline (appearance, matcher, refiner on) in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from mot.config import load_config\n"
        "from mot.pipeline import run\n"
        f"cfg = load_config(None, ['refiner.enabled=true'])\n"
        f"report = run({str(synthetic_root)!r}, cfg, {str(tmp_path / 'out')!r}, seqs=['SYN-B'])\n"
        "assert not report.failed, report.failed\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('mot', 'association', 'detectors')))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "mot.tracker" in loaded and "association.learned" in loaded   # the run really tracked
    assert [m for m in loaded if m.startswith(LAB)] == []


def test_scripts_are_thin():
    """Scripts parse arguments and call the library: no classes, and little code of their own."""
    for path in sorted((ROOT / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text())
        assert not [n for n in tree.body if isinstance(n, ast.ClassDef)], path.name
        assert len(path.read_text().splitlines()) <= 80, path.name
