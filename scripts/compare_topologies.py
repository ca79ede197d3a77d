#!/usr/bin/env python
"""Compares Siamese topologies on one held-out sequence: AUC (random and hard negatives) and rank-1 at
gaps of 1, 10 and 30 frames, and network milliseconds per frame at 10 and 50 people (one thread).

Example (the table in docs/appearance.md; the models trained with --set topology=...):
    python scripts/compare_topologies.py --seq ../data/mot15/KITTI-17 \\
        --weights cost_function=runs/loso_KITTI-17.pt in_network=runs/in_network.pt joint=runs/joint.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.cli import labelled_items
    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.studies.appearance import format_table
    from mot.studies.appearance_loso import compare_topologies

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", required=True, help="a held-out sequence folder with gt")
    ap.add_argument("--weights", required=True, nargs="+", metavar="LABEL=PATH", help="weights of each topology")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
        weights = labelled_items(args.weights, "--weights")
        result = compare_topologies(args.seq, weights)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table({k: v["scores"] for k, v in result.items()}))
    for label, row in result.items():
        print(f"{label}: network ms per frame " + ", ".join(f"{n} people {ms:.1f}" for n, ms in row["network_ms"].items()))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
