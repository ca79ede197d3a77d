#!/usr/bin/env python
"""Train the SiamMask head on top of the frozen shipped SiamRPN; writes the head's weights with metadata."""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_siammask", description=__doc__)
    parser.add_argument("--sources", nargs="+", required=True,
                        help="'pennfudan' and/or MOT17 sequence folders with MOTS masks (e.g. data/MOT17/MOT17-09)")
    parser.add_argument("--masks", required=True, help="the masks data folder (PennFudanPed/, MOTS/)")
    parser.add_argument("--out", required=True, help="weights file to write")
    parser.add_argument("--siamrpn", default="siamrpn.pt", help="the frozen SiamRPN weights (default: shipped)")
    parser.add_argument("--steps", type=int, help="training steps (default 2500)")
    parser.add_argument("--batch-size", type=int, help="pairs per step (default 32)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default 1)")
    args = parser.parse_args(argv)

    from mot.training import run_training
    from mot.training.siammask import MaskTrainParams, train_mask

    summary = run_training("train_siammask.py", argv, lambda p, command: train_mask(p, args.out, command=command),
                           MaskTrainParams(sources=args.sources, mask_root=args.masks, siamrpn=args.siamrpn),
                           {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed,
                            "threads": args.threads})
    if summary is None:
        return 2
    last = summary["history"][-1]
    print(f"final training window IoU {last['window_iou']} (loss {last['loss']}), "
          f"{summary['seconds']:.0f} s, weights in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
