#!/usr/bin/env python
"""Copies Siamese weights with inference settings changed in their metadata (the tensors as they are).

Examples:
    # a 16-stripe model (hs16L4, docs/appearance-last-cell.md): 4 pyramid levels and a crowd share
    python scripts/set_appearance_meta.py runs/hs16.pt runs/hs16L4.pt \\
        --hist-levels 4 --crowd-share 1=0.8 10=0.6 30=0.6
    python scripts/set_appearance_meta.py in.pt out.pt --crowd-share off
    # colour alone at one frame, the trained share from two frames on
    python scripts/set_appearance_meta.py in.pt out.pt --hist-share-by-gap 1=1 2=0.5
"""

from __future__ import annotations

import argparse
import json
import sys


def _table(items: list[str] | None, flag: str) -> dict | None:
    """``GAP=SHARE`` items as ``{gap: share}``; ``['off']`` as ``{}``; None as None."""
    from mot.errors import UserError

    if items is None:
        return None
    if items == ["off"]:
        return {}
    table = {}
    for item in items:
        gap, _, share = item.partition("=")
        try:
            table[int(gap)] = float(share)
        except ValueError:
            raise UserError(f"{flag} {item!r}: expected GAP=SHARE, e.g. 10=0.6") from None
    return table


def main(argv: list[str] | None = None) -> int:
    from mot.errors import UserError
    from mot.training.siamese import calibrate_weights

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="Siamese weights file to read")
    ap.add_argument("dst", help="weights file to write (may be src)")
    ap.add_argument("--hist-levels", type=int, help="the colour layer's pyramid levels at inference")
    ap.add_argument("--crowd-share", nargs="+", metavar="GAP=SHARE",
                    help="colour share of crowded pairs by frame gap (association/crowd.py); 'off' removes it")
    ap.add_argument("--hist-share-by-gap", nargs="+", metavar="GAP=SHARE",
                    help="the colour layer's share by frame gap (association/by_gap.py); 'off' removes it")
    args = ap.parse_args(argv)
    try:
        tables = {name: _table(getattr(args, name), "--" + name.replace("_", "-"))
                  for name in ("crowd_share", "hist_share_by_gap")}
        meta = calibrate_weights(args.src, args.dst, args.hist_levels, **tables)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta.get(k) for k in ("hist_stripes", "hist_levels", "hist_share", "crowd_share",
                                                "hist_share_by_gap", "foreground_share")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
