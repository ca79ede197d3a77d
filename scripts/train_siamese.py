#!/usr/bin/env python
"""Trains the Siamese appearance network and writes its weights (default: the shipped file).

Example (reproduces mot/weights/siamese.pt):
    python scripts/train_siamese.py --data ../shared/data/mot15 ../shared/data/MOT17-mini \\
        --reid ../shared/data/reid/VIPeR
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from association.siamese import DEFAULT_WEIGHTS
    from mot.training.siamese import TrainParams
    from mot.config import from_dict, parse_override
    from mot.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, nargs="+", help="folders of MOTChallenge-layout sequences with gt")
    ap.add_argument("--reid", nargs="+", help="optional folders of identity-labelled crops (VIPeR, CUHK01, CUHK03)")
    ap.add_argument("--pretrained", help="ImageNet MobileNetV2 state dict for the backbone "
                                         "(sets backbone=mobilenetv2 unless --set backbone=... says otherwise)")
    ap.add_argument("--out", default=str(DEFAULT_WEIGHTS), help="weights file to write")
    ap.add_argument("--cache", help="crop cache folder (default ~/.cache/siamese-mot)")
    ap.add_argument("--train", nargs="+", help="training sequence names")
    ap.add_argument("--val", nargs="+", help="validation sequence names (never trained on)")
    ap.add_argument("--no-flow", action="store_true", help="LUV only (3 channels)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any TrainParams field, e.g. --set max_iters=500 --set loss=contrastive")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        raw = {}
        for text in args.set:
            keys, value = parse_override(text)
            raw[".".join(keys)] = value
        if args.train:
            raw["train"] = args.train
        if args.val:
            raw["val"] = args.val
        if args.no_flow:
            raw["use_flow"] = False
        if args.pretrained:
            raw.setdefault("backbone", "mobilenetv2")
        params = from_dict(TrainParams, raw, "train")
        from mot.training.siamese import train
        summary = train(args.data, args.out, params, reid=args.reid, cache=args.cache,
                        progress=not args.quiet, pretrained=args.pretrained)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in summary.pop("history"):
        print(json.dumps(row))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
