#!/usr/bin/env python
"""Diagnosis: each left-out scene's saved embeddings scored at every colour share, and each part alone.

Reads what ``appearance_loso.py --keep-embeddings DIR`` saved; runs no network. What a share would
have scored on the reported scene: for understanding, never for choosing (the share is chosen on
the validation scene by ``appearance_loso.py --hist-share``).

    python scripts/appearance_share_sweep.py --embeddings runs/emb --scenes KITTI-17 MOT17-05

--choose instead repeats appearance_loso.py's choice on each fold's saved validation embeddings with
the --shares grid (one share, and one per gap) and scores the left-out scene with it, pooled too:
    python scripts/appearance_share_sweep.py --embeddings runs/emb --choose --shares 0.5 0.6 0.7 0.8 0.9 0.95 1

--choose-on-other-folds chooses the share for each scene on the other scenes' left-out embeddings,
pooled (the reported scene's scores never take part):
    python scripts/appearance_share_sweep.py --embeddings runs/emb --choose-on-other-folds
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.studies.appearance import format_table, pooled
    from mot.studies.appearance_loso import SCENES, choose_on_other_folds, choose_saved, share_sweep

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", required=True, help="folder written by appearance_loso.py --keep-embeddings")
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--shares", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    ap.add_argument("--hist-dim", type=int, default=2048, help="the colour layer's output size (stripes x 512)")
    ap.add_argument("--trained-share", type=float, default=0.5, help="the share the embeddings were saved at")
    ap.add_argument("--choose", action="store_true",
                    help="choose the share on each fold's validation embeddings and score the left-out scene")
    ap.add_argument("--choose-on-other-folds", action="store_true",
                    help="choose each scene's share on the other scenes' left-out embeddings, pooled")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    try:
        for s in args.shares:
            if not 0 <= s <= 1:
                raise UserError(f"shares must be in [0, 1], got {s:g}")
        if not 0 < args.trained_share < 1:
            raise UserError(f"--trained-share must be in (0, 1), got {args.trained_share:g}")
        if args.choose and args.choose_on_other_folds:
            raise UserError("--choose and --choose-on-other-folds: pick one")
        if args.choose_on_other_folds:
            if len(args.scenes) < 2:
                raise UserError("--choose-on-other-folds needs at least two scenes")
            result = choose_on_other_folds(args.embeddings, args.scenes, args.hist_dim, args.trained_share,
                                           args.shares)
        elif args.choose:
            result = {scene: choose_saved(args.embeddings, scene, args.hist_dim, args.trained_share, args.shares)
                      for scene in args.scenes}
        else:
            result = {scene: share_sweep(args.embeddings, scene, args.hist_dim, args.trained_share, args.shares)
                      for scene in args.scenes}
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.choose or args.choose_on_other_folds:
        result["pooled"] = pooled([s for r in result.values() for s in r.pop("sequences")])
        print(f"pooled over {', '.join(args.scenes)}\n{format_table(result['pooled'])}")
        for scene in args.scenes:
            r = result[scene]
            print(f"\n{scene}: one share {r['chosen_share']:g}, per gap "
                  f"{' / '.join(f'{s:g}' for s in r['chosen_share_by_gap'].values())}\n{format_table(r['scores'])}")
    else:
        for scene, rows in result.items():
            print(f"\n{scene}\n{format_table(rows)}")
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
