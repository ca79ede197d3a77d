#!/usr/bin/env python
"""Issue 19's 30-frame target on the footage here most like the issue's held-out sets.

Scores one recipe's saved left-out embeddings (``appearance_loso.py --keep-embeddings``, one folder
per training seed) on KITTI-17 + TUD-Campus (street level) and on MOT17-05 + MOT17-09 with boxes at
least 50% visible, beside the LUV histogram and the raw ImageNet network scored the same way, and
the issue's figures for the histogram and the re-id CNN (mot/studies/reid_target.py). It runs no
network; --data finds the ground truth (for the visibility).

    python scripts/appearance_reid_target.py --data ../data/mot15 ../data/MOT17 \\
        --seeds 0=runs/emb_nhvo 1=runs/emb_nhvo_seed1 2=runs/emb_nhvo_seed2
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
    from mot.studies.reid_target import reid_target_study, reid_target_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="roots holding the scored sequences")
    ap.add_argument("--seeds", nargs="+", required=True, metavar="LABEL=DIR",
                    help="one recipe's --keep-embeddings folder per training seed")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    try:
        result = reid_target_study(labelled_items(args.seeds, "--seeds"), args.data)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(reid_target_text(result))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
