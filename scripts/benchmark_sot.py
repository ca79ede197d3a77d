#!/usr/bin/env python
"""Single-object check: OTB success AUC of the SiamRPN refiner beside OpenCV's TrackerMIL."""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark_sot", description=__doc__)
    parser.add_argument("--data", nargs="+",
                        help="OTB/VOT sequence folders and MOTChallenge sequence folders (people from their ground truth)")
    parser.add_argument("--weights", help="SiamRPN weights (default: the shipped mot/weights/siamrpn.pt)")
    parser.add_argument("--max-people", type=int, default=8, help="MOT sequences: the longest N identities")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--cost-image", help="instead: time the batched refiner on this frame with 1, 10, 50 tracks")
    args = parser.parse_args(argv)
    if not args.data and not args.cost_image:
        parser.error("give --data or --cost-image")

    from mot.errors import UserError
    from mot.studies.sot import SotParams, benchmark, refiner_cost

    if args.cost_image:
        import cv2
        image = cv2.imread(args.cost_image, cv2.IMREAD_COLOR)
        if image is None:
            print(f"error: {args.cost_image}: unreadable image", file=sys.stderr)
            return 2
        device = "cpu" if args.device == "auto" else args.device
        try:
            rows = refiner_cost(image, args.weights, device=device)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("| tracks | wall ms/frame | CPU ms/frame | wall ms/track | CPU ms/track | device |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['tracks']} | {r['wall_ms']} | {r['cpu_ms']} | {r['wall_ms_per_track']} | "
                  f"{r['cpu_ms_per_track']} | {r['device']} |")
        return 0
    try:
        report = benchmark(args.data, args.weights, SotParams(max_people=args.max_people), args.device)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
