"""What a run leaves beside each result file, so that a later run (``--resume``) can tell which
sequences are complete and what their scores were, without tracking them again.

``OUT/<SEQ>.metrics.json`` is written atomically *after* ``OUT/<SEQ>.txt`` is in place. It holds the
sequence's frames, seconds, stage timing, its score (the metrics and the raw counts that
:func:`mot.evaluation.combine` sums, exactly: floats round-trip through JSON), the SHA-256 of the
config it was run with and of the result file. A sequence is complete when its record reads, was
made with the same config and the result file's hash matches: a run killed at any point leaves
either a complete pair or something a resumed run redoes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mot.evaluation import SequenceScore
from mot.io import atomic_write_text

VERSION = 1
RECORD_SUFFIX = ".metrics.json"


def record_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f"{name}{RECORD_SUFFIX}"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _encode(value):
    """JSON form of a score's values: arrays as ``{"array": [...], "dtype": ...}`` (exact for floats)."""
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict) and set(value) == {"array", "dtype"}:
        return np.array(value["array"], dtype=value["dtype"])
    return value


def score_to_json(score: SequenceScore | None) -> dict | None:
    if score is None:
        return None
    hota = None if score.hota_raw is None else {k: _encode(v) for k, v in score.hota_raw.items()}
    return {"metrics": {k: _encode(v) for k, v in score.metrics.items()},
            "counts": {k: _encode(v) for k, v in score.counts.items()}, "hota_raw": hota}


def score_from_json(data: dict | None) -> SequenceScore | None:
    if data is None:
        return None
    hota = None if data["hota_raw"] is None else {k: _decode(v) for k, v in data["hota_raw"].items()}
    return SequenceScore(dict(data["metrics"]), dict(data["counts"]), hota)


def write_record(out_dir: Path, name: str, record: dict) -> None:
    """Writes ``<SEQ>.metrics.json`` atomically (after the result file is in place)."""
    atomic_write_text(record_path(out_dir, name), json.dumps({"version": VERSION, **record}, indent=1) + "\n")


def read_complete(out_dir: Path, name: str, config_sha256: str, result_file: Path,
                  video: Path | None = None) -> dict | None:
    """The record of a sequence that is complete in ``out_dir`` for this config, else None."""
    path = record_path(out_dir, name)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != VERSION:
        return None
    if record.get("config_sha256") != config_sha256 or not result_file.is_file():
        return None
    if video is not None and not video.is_file():
        return None
    try:
        if file_digest(result_file) != record.get("results_sha256"):
            return None
    except OSError:
        return None
    return record


def remove_partial(out_dir: Path, names: list[str]) -> list[Path]:
    """Removes what a killed run can leave behind for these sequences: the hidden temporary files of
    atomic writes (``.<file>.*.tmp``). Returns the removed paths."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    files = ([f"{n}.txt" for n in names] + [f"{n}.masks.txt" for n in names] + [f"{n}{RECORD_SUFFIX}" for n in names]
             + ["metrics.json", "config.yaml"])
    removed = []
    for f in files:
        for tmp in out_dir.glob(f".{_glob_escape(f)}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)
