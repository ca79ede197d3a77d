#!/usr/bin/env python
"""Copies Siamese weights with inference settings changed in their metadata (the tensors as they are).

Examples:
    # the shipped model: 4 pyramid levels of its 16 colour stripes, the crowd share chosen on held-out scenes
    python scripts/set_appearance_meta.py mot/weights/siamese.pt mot/weights/siamese.pt \\
        --hist-levels 4 --crowd-share 1=0.8 10=0.6 30=0.6
    python scripts/set_appearance_meta.py in.pt out.pt --crowd-share off
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from mot.errors import UserError
    from mot.training.siamese import calibrate_weights

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="Siamese weights file to read")
    ap.add_argument("dst", help="weights file to write (may be src)")
    ap.add_argument("--hist-levels", type=int, help="the colour layer's pyramid levels at inference")
    ap.add_argument("--crowd-share", nargs="+", metavar="GAP=SHARE",
                    help="colour share of crowded pairs by frame gap (association/crowd.py); 'off' removes it")
    args = ap.parse_args(argv)
    try:
        table = None
        if args.crowd_share == ["off"]:
            table = {}
        elif args.crowd_share:
            table = {}
            for item in args.crowd_share:
                gap, sep, share = item.partition("=")
                try:
                    table[int(gap)] = float(share)
                except ValueError:
                    raise UserError(f"--crowd-share {item!r}: expected GAP=SHARE, e.g. 10=0.6") from None
        meta = calibrate_weights(args.src, args.dst, args.hist_levels, table)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta.get(k) for k in ("hist_stripes", "hist_levels", "hist_share", "crowd_share")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
