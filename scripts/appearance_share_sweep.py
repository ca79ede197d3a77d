#!/usr/bin/env python
"""Diagnosis: each left-out scene's saved embeddings scored at every colour share, and each part alone.

Reads what ``appearance_loso.py --keep-embeddings DIR`` saved; runs no network. What a share would
have scored on the reported scene: for understanding, never for choosing (the share is chosen on
the validation scene by ``appearance_loso.py --hist-share``).

    python scripts/appearance_share_sweep.py --embeddings runs/emb --scenes KITTI-17 MOT17-05

--choose validation repeats appearance_loso.py's choice on each fold's saved validation embeddings
with the --shares grid (one share, and one per gap) and scores the left-out scene with it;
--choose other-folds chooses each scene's share on the other scenes' left-out embeddings, pooled
(the reported scene's scores never take part); --choose crowd that way, per gap, the share of crowded
pairs only (either box overlapping another by IoU above --crowd-iou), the others at the trained one:
    python scripts/appearance_share_sweep.py --embeddings runs/emb --choose other-folds

--recipes LABEL=DIR [...] compares training recipes instead of shares: each DIR is what
``appearance_loso.py --keep-embeddings`` saved for one recipe (every scene left out in turn), and
each scene is scored with the recipe that does best on the other scenes' left-out scores (mean AUC
plus rank-1 over the gaps), so the scene reported never takes part in choosing:
    python scripts/appearance_share_sweep.py --recipes shipped=runs/emb near=runs/emb_near

--seeds LABEL=DIR [...]: one recipe trained with several seeds (``appearance_loso.py --set seed=N``)
against the baselines: each seed's cells, their mean, cells won, rank-1 query by query (McNemar):
    python scripts/appearance_share_sweep.py --seeds 0=runs/emb 1=runs/emb_seed1 2=runs/emb_seed2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.cli import labelled_items
    from mot.studies.appearance_loso import (SCENES, recipe_study, seed_study, seed_study_text, share_study,
                                             share_study_text)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", help="folder written by appearance_loso.py --keep-embeddings")
    ap.add_argument("--recipes", nargs="+", metavar="LABEL=DIR",
                    help="compare recipes: each one's --keep-embeddings folder (chosen on the other folds)")
    ap.add_argument("--seeds", nargs="+", metavar="LABEL=DIR",
                    help="one recipe, several seeds: each seed's --keep-embeddings folder")
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    ap.add_argument("--shares", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--choose", choices=["validation", "other-folds", "crowd"], help="choose the share (default: a sweep)")
    ap.add_argument("--crowd-iou", type=float, default=0.5, help="--choose crowd: IoU above which a box is crowded")
    ap.add_argument("--hist-dim", type=int, default=2048, help="the colour layer's output size (stripes x 512)")
    ap.add_argument("--trained-share", type=float, default=0.5, help="the share the embeddings were saved at")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    mode = args.choose or "sweep"
    if sum(map(bool, (args.embeddings, args.recipes, args.seeds))) != 1:
        ap.error("give one of --embeddings, --recipes or --seeds")
    if (args.recipes or args.seeds) and args.choose:
        ap.error("--choose is for --embeddings")
    try:
        if args.seeds:
            result, mode = seed_study(labelled_items(args.seeds, "--seeds"), args.scenes), "seeds"
        elif args.recipes:
            result, mode = recipe_study(labelled_items(args.recipes, "--recipes"), args.scenes), "recipes"
        else:
            result = share_study(args.embeddings, args.scenes, args.shares, mode, args.hist_dim, args.trained_share,
                                 args.crowd_iou)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(seed_study_text(result) if mode == "seeds" else share_study_text(result, mode))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
