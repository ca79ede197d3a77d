#!/usr/bin/env python
"""Appearance benchmark: Siamese model vs colour histogram (vs ImageNet embedder when importable).

Example (the numbers in the README):
    python scripts/benchmark_appearance.py --data ../shared/data/mot15 \\
        --seqs TUD-Campus KITTI-17 PETS09-S3-MF1 --out runs/appearance.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.studies.appearance import format_table, run_benchmark
    from mot.errors import UserError
    from mot.io import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of MOTChallenge-layout sequences with gt")
    ap.add_argument("--seqs", nargs="+", required=True, help="held-out sequences (not used in training)")
    ap.add_argument("--weights", help="Siamese weights (default: the shipped file)")
    ap.add_argument("--noflow-weights", help="a LUV-only model trained with --no-flow, for flow on vs off")
    ap.add_argument("--speed-768", nargs=2, metavar=("PREV", "CUR"), help="a 768x576 frame pair for speed")
    ap.add_argument("--speed-1080", nargs=2, metavar=("PREV", "CUR"), help="a 1920x1080 frame pair for speed")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--out", help="write the full results as JSON")
    args = ap.parse_args(argv)
    frames = {k: tuple(v) for k, v in (("768x576", args.speed_768), ("1920x1080", args.speed_1080)) if v}
    try:
        result = run_benchmark(args.data, args.seqs, args.weights, args.noflow_weights, frames, args.threads)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pooled over {', '.join(result['sequences'])} ({args.threads} thread(s)); "
          f"ImageNet embedder: {result['imagenet']}")
    print(format_table(result["pooled"]))
    for name, per in result["sequences"].items():
        print(f"\n{name}\n{format_table(per)}")
    print("\nspeed:", json.dumps(result["speed"], indent=1))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
