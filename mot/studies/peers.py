"""Peer trackers on our detections: SORT, ByteTrack, OC-SORT, BoT-SORT (roboflow ``trackers``) and
DeepSORT (``deep-sort-realtime``), for side-by-side comparisons.

None of them is a dependency of the core package (they are the optional ``bench`` extra). The four
``trackers`` peers run in this process. DeepSORT runs in a separate interpreter
(``mot/studies/peer_deepsort.py``): its package imports torchvision, which does not load beside the CPU
torch build this project pins, so it lives in its own environment, named by ``peer_python`` or the
``SIAMESE_MOT_PEER_PYTHON`` variable.

Peers expect detection scores in [0, 1]; 2DMOT2015's ACF scores run from about -1 to 130, so the
scores are mapped with a few scalings (:data:`SCALINGS`) and :func:`run_peers` reports every peer at
the scaling that scores best on the data it is given (tuned on the test data: the strongest fair
anchor for a comparison, and to be said so wherever the numbers are shown).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mot.errors import UserError
from mot.evaluation import combine, score_sequence
from mot.io import TrackResults, read_detections, read_ground_truth, read_results, write_results
from mot.sequence import Sequence, discover, open_sequence
from mot.types import Detections

#: Peer names, in report order.
PEERS = ("sort", "bytetrack", "ocsort", "botsort", "deepsort")
#: Display names.
PEER_LABELS = {"sort": "SORT", "bytetrack": "ByteTrack", "ocsort": "OC-SORT", "botsort": "BoT-SORT",
               "deepsort": "DeepSORT"}
#: Score scalings swept by :func:`run_peers`; see :func:`scale_scores`.
SCALINGS = ("clip", "minmax", "rank", "sqrt_rank")
#: The environment variable naming the interpreter that runs DeepSORT.
PEER_PYTHON_ENV = "SIAMESE_MOT_PEER_PYTHON"
_TRACKERS_CLASSES = {"sort": "SORTTracker", "bytetrack": "ByteTrackTracker", "ocsort": "OCSORTTracker",
                     "botsort": "BoTSORTTracker"}
_REPO_ROOT = Path(__file__).resolve().parents[2]


def scale_scores(scores: np.ndarray, scaling: str, reference: np.ndarray) -> np.ndarray:
    """Maps raw detector scores to [0, 1].

    Args:
        scores: (N,) float32 raw scores to map.
        scaling: ``clip`` (clipped to [0, 1]; right for scores that already are probabilities),
            ``minmax`` (linear from the reference's min to its max), ``rank`` (the fraction of
            reference scores at or below each score: indifferent to the range) or ``sqrt_rank``
            (its square root: fewer detections fall under a peer's fixed thresholds).
        reference: (M,) float32 all the raw scores of the sequence (the mapping is per sequence).

    Returns:
        (N,) float32 scores in [0, 1], in the order given (monotone in the raw score).
    """
    s = np.asarray(scores, np.float64)
    ref = np.sort(np.asarray(reference, np.float64))
    if scaling == "clip":
        out = np.clip(s, 0.0, 1.0)
    elif scaling == "minmax":
        lo, hi = (ref[0], ref[-1]) if ref.size else (0.0, 1.0)
        out = np.clip((s - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.ones_like(s)
    elif scaling in ("rank", "sqrt_rank"):
        out = np.searchsorted(ref, s, side="right") / max(ref.size, 1) if ref.size else np.ones_like(s)
        if scaling == "sqrt_rank":
            out = np.sqrt(out)
    else:
        raise UserError(f"unknown score scaling {scaling!r} (valid: {', '.join(SCALINGS)})")
    return out.astype(np.float32)


def load_detections(seq: Sequence, det_file: str = "det/det.txt") -> list[Detections]:
    """The public detections of a sequence, one :class:`Detections` per frame (element f-1 is frame f).

    Raises:
        UserError: the file is missing or malformed.
    """
    path = seq.path / det_file
    if seq.is_video or not path.is_file():
        raise UserError(f"{seq.name}: detection file {det_file} not found ({path})")
    table = read_detections(path, seq.info.seq_length)
    index = table.index()
    return [Detections(table.tlwh[r], table.scores[r]) for r in
            (index.rows(f) for f in range(1, seq.info.seq_length + 1))]


def peer_python(explicit: str | None = None) -> str:
    """The interpreter for DeepSORT: ``explicit``, else ``$SIAMESE_MOT_PEER_PYTHON``, else this one."""
    return explicit or os.environ.get(PEER_PYTHON_ENV) or sys.executable


def peer_status(name: str, python: str | None = None) -> str | None:
    """None when the peer can run, else why not (``not installed: ...``)."""
    if name not in PEERS:
        raise UserError(f"unknown peer {name!r} (valid: {', '.join(PEERS)})")
    if name != "deepsort":
        return None if importlib.util.find_spec("trackers") else "not installed: pip install -e '.[bench]'"
    exe = peer_python(python)
    try:
        probe = subprocess.run([exe, "-c", "import deep_sort_realtime.embedder.embedder_pytorch"],
                               capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not installed: cannot run {exe} ({type(exc).__name__})"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["import failed"])[-1][:160]
        return f"not installed in {exe} (set --peer-python or ${PEER_PYTHON_ENV}; README 'Benchmark'): {last}"
    return None


@dataclass
class PeerRun:
    """One peer on one sequence at one scaling: its output rows and the seconds it took."""

    results: TrackResults
    seconds: float


def run_peer(name: str, seq: Sequence, detections_per_frame: list[Detections], score_scale: str,
             python: str | None = None) -> TrackResults:
    """Runs one peer tracker over one sequence.

    Args:
        name: one of :data:`PEERS`.
        seq: the sequence (its frame rate; its images for BoT-SORT's camera motion and DeepSORT).
        detections_per_frame: element f-1 holds frame f's detections (raw scores, 0-based tlwh).
        score_scale: one of :data:`SCALINGS`.
        python: the interpreter for DeepSORT (see :func:`peer_python`).

    Returns:
        The peer's output rows (1-based frames, 0-based tlwh, ids from 1).
    """
    return run_peer_scalings(name, seq, detections_per_frame, [score_scale], python)[score_scale].results


def run_peer_scalings(name: str, seq: Sequence, detections_per_frame: list[Detections], scalings: list[str],
                      python: str | None = None, cache_dir: Path | None = None) -> dict[str, PeerRun]:
    """Runs one peer once per scaling (DeepSORT embeds each detection once for all of them).

    Returns:
        Scaling -> :class:`PeerRun`.

    Raises:
        UserError: the peer is unknown or fails (one line).
    """
    if len(detections_per_frame) != seq.info.seq_length:
        raise ValueError(f"{len(detections_per_frame)} frames of detections for {seq.info.seq_length} frames")
    reference = np.concatenate([d.scores for d in detections_per_frame]) if detections_per_frame else np.zeros(0)
    scaled = {s: [scale_scores(d.scores, s, reference) for d in detections_per_frame] for s in scalings}
    if name == "deepsort":
        return _run_deepsort(seq, detections_per_frame, scaled, peer_python(python), cache_dir)
    if name not in _TRACKERS_CLASSES:
        raise UserError(f"unknown peer {name!r} (valid: {', '.join(PEERS)})")
    return _run_trackers_peer(name, seq, detections_per_frame, scaled)


def _run_trackers_peer(name: str, seq: Sequence, dets: list[Detections],
                       scaled: dict[str, list[np.ndarray]]) -> dict[str, PeerRun]:
    """One pass over the frames, one tracker per scaling (BoT-SORT reads each image once for all)."""
    import supervision as sv
    import trackers

    cls = getattr(trackers, _TRACKERS_CLASSES[name])
    instances = {s: cls(frame_rate=float(seq.info.frame_rate)) for s in scaled}
    uses_frame = name == "botsort"  # camera motion compensation; the others ignore (and warn about) frames
    rows: dict[str, list[TrackResults]] = {s: [] for s in scaled}
    seconds = dict.fromkeys(scaled, 0.0)
    read = 0.0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for (frame, image), d in zip(seq.frames(read_images=uses_frame, prefetch=0), dets):
            read += time.perf_counter() - t0
            xyxy = np.concatenate([d.tlwh[:, :2], d.tlwh[:, :2] + d.tlwh[:, 2:]], 1).astype(np.float32)
            for s, tracker in instances.items():
                t1 = time.perf_counter()
                sv_dets = sv.Detections(xyxy=xyxy, confidence=scaled[s][frame - 1], class_id=np.zeros(len(d), int))
                out = tracker.update(sv_dets, image) if uses_frame else tracker.update(sv_dets)
                seconds[s] += time.perf_counter() - t1
                ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], int)
                keep = ids >= 0
                if keep.any():
                    box = np.asarray(out.xyxy, np.float32)[keep]
                    conf = (np.asarray(out.confidence, np.float32)[keep] if out.confidence is not None
                            else np.ones(int(keep.sum()), np.float32))
                    rows[s].append(TrackResults(np.full(int(keep.sum()), frame, np.int64), ids[keep] + 1,
                                                np.concatenate([box[:, :2], box[:, 2:] - box[:, :2]], 1), conf))
            t0 = time.perf_counter()
    return {s: PeerRun(TrackResults.concatenate(rows[s]), read + seconds[s]) for s in scaled}


def _run_deepsort(seq: Sequence, dets: list[Detections], scaled: dict[str, list[np.ndarray]], python: str,
                  cache_dir: Path | None) -> dict[str, PeerRun]:
    """Runs ``python -m mot.studies.peer_deepsort`` on the detections; one result file per scaling."""
    if seq.is_video:
        raise UserError(f"{seq.name}: DeepSORT here reads image folders, not videos")
    frames = np.concatenate([np.full(len(d), f, np.int64) for f, d in enumerate(dets, 1)]) if dets else np.zeros(0)
    tlwh = np.concatenate([d.tlwh for d in dets]).reshape(-1, 4) if dets else np.zeros((0, 4), np.float32)
    names = list(scaled)
    scores = np.stack([np.concatenate(scaled[s]) if dets else np.zeros(0, np.float32) for s in names])
    with tempfile.TemporaryDirectory(prefix="deepsort-") as tmp:
        work = Path(tmp)
        np.savez(work / "input.npz", frames=frames, tlwh=tlwh.astype(np.float32), scores=scores.astype(np.float32))
        cache = None
        if cache_dir is not None:
            key = hashlib.sha1(tlwh.astype(np.float32).tobytes() + frames.tobytes()).hexdigest()[:16]
            cache = Path(cache_dir) / f"deepsort_{seq.name}_{key}.npz"
        job = {"images": [str(seq.frame_path(f)) for f in range(1, seq.info.seq_length + 1)],
               "scalings": names, "cache": str(cache) if cache else None}
        (work / "job.json").write_text(json.dumps(job))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(_REPO_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
            OMP_NUM_THREADS="1")
        try:
            proc = subprocess.run([python, "-m", "mot.studies.peer_deepsort", str(work)], capture_output=True, text=True,
                                  env=env)
        except OSError as exc:
            raise UserError(f"deepsort: cannot run {python} ({exc.strerror})") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
            raise UserError(f"{seq.name}: deepsort failed: {last}")
        timing = json.loads((work / "timing.json").read_text())
        shared = timing["read"] + timing["embed"]
        return {s: PeerRun(read_results(work / f"{s}.txt"), shared + timing["track"][s]) for s in names}


@dataclass
class PeerSweep:
    """Every peer over a data root at every scaling, scored.

    Attributes:
        det_file: the detection file each sequence was read from.
        status: peer -> None (ran) or why it did not (``not installed ...``).
        scores: peer -> scaling -> sequence -> :class:`SequenceScore` (None without ground truth).
        seconds: peer -> scaling -> sequence -> seconds; frames: sequence -> frame count.
        failed: sequence -> error (the detections could not be read; no peer ran it), and
            ``peer_failed``: peer -> sequence -> error for a peer's own failures.
    """

    det_file: str
    scalings: list[str]
    status: dict[str, str | None] = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    peer_failed: dict = field(default_factory=dict)

    def combined(self, peer: str, scaling: str) -> dict | None:
        scored = [s for s in self.scores.get(peer, {}).get(scaling, {}).values() if s is not None]
        return combine(scored) if scored else None

    def best_scaling(self, peer: str) -> str | None:
        """The scaling with the highest combined HOTA (IDF1 + MOTA where HOTA is unavailable)."""
        def key(s):
            m = self.combined(peer, s)
            return -np.inf if m is None else (m["HOTA"] if m["HOTA"] is not None else (m["IDF1"] + m["MOTA"]) / 2)
        ran = [s for s in self.scalings if self.scores.get(peer, {}).get(s)]
        return max(ran, key=key) if ran else None

    def to_json(self) -> dict:
        peers = {}
        for p, status in self.status.items():
            sweep = {}
            for s in self.scalings:
                seqs = {q: {**(sc.metrics if sc else {}), "frames": self.frames[q],
                            "seconds": round(self.seconds[p][s][q], 3)}
                        for q, sc in self.scores.get(p, {}).get(s, {}).items()}
                if seqs:
                    sweep[s] = {"combined": self.combined(p, s), "sequences": seqs}
            peers[p] = {"status": status or "ok", "best_scaling": self.best_scaling(p), "sweep": sweep,
                        "failed": self.peer_failed.get(p, {})}
        return {"det_file": self.det_file, "scalings": self.scalings, "peers": peers, "failed": self.failed,
                "note": "each peer is reported at the scaling with the best combined HOTA on these sequences "
                        "(tuned on the test data)"}


def run_peers(data: str | Path, peers: tuple[str, ...] = PEERS, det_file: str = "det/det.txt",
              scalings: tuple[str, ...] = SCALINGS, seqs: list[str] | None = None, python: str | None = None,
              out_dir: str | Path | None = None, log=None) -> PeerSweep:
    """Runs every available peer on every sequence under ``data`` with every scaling, and scores them.

    A sequence whose detection file is missing is recorded in ``failed`` and the others still run;
    a peer that is not installed is recorded in ``status`` and skipped. With ``out_dir``, result files
    go to ``out_dir/<peer>/<scaling>/<SEQ>.txt`` (and are scored as written, like the pipeline's) and
    DeepSORT's embeddings are cached in ``out_dir/cache``.
    """
    for s in scalings:
        scale_scores(np.zeros(1), s, np.zeros(1))  # rejects an unknown name before any work
    sweep = PeerSweep(det_file, list(scalings))
    for p in peers:
        sweep.status[p] = peer_status(p, python)
    runnable = [p for p in peers if sweep.status[p] is None]
    out = Path(out_dir) if out_dir is not None else None
    for path in discover(data, seqs):
        try:
            seq = open_sequence(path)
            dets = load_detections(seq, det_file)
            gt = read_ground_truth(seq.gt_path) if seq.gt_path is not None else None
        except UserError as exc:
            sweep.failed[path.stem if path.is_file() else path.name] = str(exc)
            continue
        sweep.frames[seq.name] = seq.info.seq_length
        for p in runnable:
            if log:
                log(f"peer {p} on {seq.name}")
            try:
                runs = run_peer_scalings(p, seq, dets, list(scalings), python,
                                         cache_dir=out / "cache" if out else None)
            except UserError as exc:
                sweep.peer_failed.setdefault(p, {})[seq.name] = str(exc)
                continue
            for s, r in runs.items():
                results = r.results
                if out is not None:
                    write_results(out / p / s / f"{seq.name}.txt", results)
                    results = read_results(out / p / s / f"{seq.name}.txt")
                score = score_sequence(gt, results, seq.info.seq_length) if gt is not None else None
                sweep.scores.setdefault(p, {}).setdefault(s, {})[seq.name] = score
                sweep.seconds.setdefault(p, {}).setdefault(s, {})[seq.name] = r.seconds
    return sweep
