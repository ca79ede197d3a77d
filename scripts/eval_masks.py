#!/usr/bin/env python
"""Masks of a tracker run vs filled boxes (mask IoU, MOTS HOTA), the mask branch's cost per frame, video frames."""

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
    frames = sub.add_parser("frames", help="save some frames of a --save-video output as small JPEGs")
    frames.add_argument("--video", required=True)
    frames.add_argument("--frames", type=int, nargs="+", required=True, help="1-based frame numbers")
    frames.add_argument("--out", required=True, help="output path with {frame}, e.g. docs/images/siammask_{frame}.jpg")
    args = parser.parse_args(argv)

    from mot.errors import UserError

    try:
        if args.command == "eval":
            from mot.studies.masks import evaluate_masks
            print(json.dumps(evaluate_masks(args.seq, args.masks, args.run), indent=1))
        elif args.command == "frames":
            from mot.studies.masks import save_video_frames
            for path in save_video_frames(args.video, args.frames, args.out):
                print(f"{path} ({path.stat().st_size // 1024} KB)")
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
