#!/usr/bin/env python
"""Train the SiamRPN refiner on MOT ground-truth tracks and SOT sequences; writes weights with metadata."""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train_siamrpn", description=__doc__)
    parser.add_argument("--train", nargs="+", required=True, help="sequence folders (MOTChallenge or OTB/VOT) to train on")
    parser.add_argument("--val", nargs="+", required=True, help="whole held-out sequence folders for validation")
    parser.add_argument("--out", required=True, help="weights file to write")
    parser.add_argument("--epochs", type=int, help="epochs (default 8)")
    parser.add_argument("--steps", type=int, help="steps per epoch (default 120)")
    parser.add_argument("--batch-size", type=int, help="pairs per step (default 32)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default 1)")
    args = parser.parse_args(argv)

    from mot.training import run_training
    from mot.training.siamrpn import TrainParams, train

    summary = run_training("train_siamrpn.py", argv, lambda p, command: train(p, args.out, command=command),
                           TrainParams(train=args.train, val=args.val),
                           {"epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": args.batch_size,
                            "seed": args.seed, "threads": args.threads})
    if summary is None:
        return 2
    print(f"best validation IoU {summary['best_val_iou']} (epoch {summary['best_epoch']}), "
          f"{summary['seconds']:.0f} s, weights in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
