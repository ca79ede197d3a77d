#!/usr/bin/env python
"""Masks of a tracker run vs filled boxes (mask IoU, MOTS HOTA), or the mask branch's cost per frame."""

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eval_masks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="score <SEQ>.masks.txt and the filled boxes of <SEQ>.txt against MOTS")
    ev.add_argument("--seq", required=True, help="the MOT17 sequence folder (gt/gt.txt), e.g. data/MOT17/MOT17-05")
    ev.add_argument("--masks", required=True, help="its MOTS instance PNGs, e.g. data/masks/MOTS/MOT17-05")
    ev.add_argument("--run", required=True, help="the run_mot.py output folder with <SEQ>.txt and <SEQ>.masks.txt")
    cost = sub.add_parser("cost", help="ms per frame of the refiner with and without the mask branch (one thread)")
    cost.add_argument("--image", required=True, help="a frame to search in")
    cost.add_argument("--tracks", type=int, nargs="+", default=[10, 50])
    cost.add_argument("--mask-weights", default="siammask.pt")
    cost.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from mot.errors import UserError

    try:
        if args.command == "eval":
            from mot.studies.masks import evaluate_masks
            print(json.dumps(evaluate_masks(args.seq, args.masks, args.run), indent=1))
        else:
            import cv2
            from mot.studies.masks import refiner_cost
            image = cv2.imread(args.image, cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"{args.image}: not a readable image")
            for row in refiner_cost(image, args.tracks, args.mask_weights, args.repeats):
                print(json.dumps(row))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
