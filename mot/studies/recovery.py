"""Re-identification after an occlusion, on generated scenes.

Person 1 of a generated sequence is hidden for 20 frames (``GAP``) and waits in place meanwhile, so
the constant-velocity prediction has moved on when they reappear: only appearance can bring the
identity back. ``tests/test_recovery.py`` checks one such scene; this probe runs a config on many
(one per generator seed) and counts the scenes where the person keeps one identity across the gap,
so a matcher or an embedding can be compared on the behaviour rather than on one scene::

    python scripts/recovery_probe.py --seeds 0-13
    python scripts/recovery_probe.py --seeds 0-13 --set association.params.matcher=runs/m.json

A scene counts only when the person was tracked under one identity before the gap (otherwise the
question is not asked); the others are listed and left out of the count.

In the generated scene nobody is drawn in front of the hidden person. Real occlusions have an
occluder, who stands about where the hidden person was last seen when they come back. ``--occluder``
draws one (``SyntheticSpec.occluder``): another person comes towards person 1, stands just in front
of them through the gap, then walks back the way it came.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from mot.geometry import iou_matrix_tlwh
from mot.io import read_ground_truth, read_results
from mot.synthetic import SyntheticSpec, generate_sequence

#: frames (first, last) during which person 1 is hidden
GAP = (41, 60)
PERSON = 1


def occluded_scene(root: str | Path, seed: int, occluder: bool = False) -> Path:
    """Writes the scene of generator ``seed`` (100 frames, 4 people, no misses or false alarms,
    person 1 hidden during ``GAP``, by another person with ``occluder``) under ``root`` and returns
    its folder."""
    name = f"SYN-OCC{'P' if occluder else ''}-{seed}"
    return generate_sequence(root, SyntheticSpec(name=name, num_frames=100, num_people=4, seed=seed, miss_rate=0.0,
                                                 false_alarms=0.0, occluded_gap=GAP, occluder=occluder))


def track_ids_of_person(seq: Path, result_file: Path, person: int = PERSON, gap: tuple[int, int] = GAP) -> tuple[set, set]:
    """The tracker ids that covered ``person`` (IoU >= 0.5, Hungarian per frame) before and after the
    gap (frames inside it, where an occluder may leave part of the person in view, do not count)."""
    gt = read_ground_truth(seq / "gt" / "gt.txt")
    res = read_results(result_file)
    before, after = set(), set()
    for frame in np.unique(gt.frames):
        g = gt.frames == frame
        r = res.frames == frame
        if not r.any() or gap[0] <= frame <= gap[1]:
            continue
        iou = iou_matrix_tlwh(gt.tlwh[g], res.tlwh[r])
        rows, cols = linear_sum_assignment(-iou)
        for i, j in zip(rows, cols):
            if gt.ids[g][i] == person and iou[i, j] >= 0.5:
                (before if frame < gap[0] else after).add(int(res.ids[r][j]))
    return before, after


def probe(cfg, seeds, workdir: str | Path, occluder: bool = False) -> list[dict]:
    """Runs ``cfg`` on the scene of each seed (with ``occluder``, hidden by someone); per seed: the
    ids before and after the gap, whether the scene counts (one id before) and whether the identity
    was kept (that id alone after).

    Raises:
        UserError: the tracker failed on a scene (its one-line error, e.g. a matcher file not found).
    """
    from mot.errors import UserError
    from mot.pipeline import run

    rows = []
    for seed in seeds:
        seq = occluded_scene(Path(workdir) / "data", seed, occluder)
        out = Path(workdir) / "out" / seq.name
        report = run(seq, cfg, out)
        if report.failed:   # the config's fault (a generated scene is well formed): stop, in one line
            raise UserError(report.failed[0].error)
        before, after = track_ids_of_person(seq, out / f"{seq.name}.txt")
        counts = len(before) == 1
        rows.append({"seed": seed, "scene": seq.name, "before": sorted(before), "after": sorted(after), "counts": counts,
                     "kept": counts and after == before})
    return rows


def _seeds(text: str) -> list[int]:
    """``0-13`` or ``0,3,5`` (or both, comma-separated) -> a list of seeds."""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return seeds


def main(argv=None) -> int:
    """``python scripts/recovery_probe.py [--config FILE] [--set KEY=VALUE] --seeds 0-13``: counts the
    generated scenes where a person keeps one identity across a 20-frame occlusion."""
    import argparse
    import json

    from mot.config import load_config
    from mot.errors import UserError
    from mot.io import atomic_write_text

    parser = argparse.ArgumentParser(prog="recovery_probe.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="tracker config (default: the built-in default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="0-13", help="generator seeds: 0-13, or 0,3,5 (default 0-13)")
    parser.add_argument("--out", help="write the per-seed rows here as JSON")
    parser.add_argument("--occluder", action="store_true", help="another person hides person 1 (see above)")
    args = parser.parse_args(argv)
    try:
        seeds = _seeds(args.seeds)
    except ValueError:
        seeds = []
    if not seeds:
        print(f"error: --seeds {args.seeds!r}: expected seeds like 0-13 or 0,3,5", file=sys.stderr)
        return 2
    if args.out and not Path(args.out).resolve().parent.is_dir():
        print(f"error: --out {args.out}: its folder does not exist", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, args.overrides)
        with tempfile.TemporaryDirectory() as work:
            rows = probe(cfg, seeds, work, args.occluder)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in rows:
        verdict = ("kept" if r["kept"] else "lost" if r["counts"] else
                   "not counted (split before the gap)" if r["before"] else "not counted (not tracked before the gap)")
        print(f"seed {r['seed']:3d}: ids before {r['before']} after {r['after']}: {verdict}")
    counted = [r for r in rows if r["counts"]]
    print(f"kept one identity in {sum(r['kept'] for r in counted)} of {len(counted)} scenes "
          f"({len(rows) - len(counted)} not counted)")
    if args.out:
        atomic_write_text(args.out, json.dumps(rows, indent=1))
    return 0
