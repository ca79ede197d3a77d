#!/usr/bin/env python
"""Make an H.264-compressed copy of a MOTChallenge sequence, decoded back to lossless PNG frames.

The copy is a MOTChallenge sequence (seqinfo.ini with imExt=.png, img1/, gt/ and det/ linked to the
source, or copied with --copy), plus the encoded video (h264.mp4) and a record (compression.json)
with the PSNR against the source. Needs an ffmpeg with libx264: --ffmpeg PATH, or
`pip install imageio-ffmpeg` (its static binary is found automatically), or ffmpeg on the PATH.

Example (the numbers in docs/appearance.md, issue 19):
    python scripts/compress_sequence.py --seq ../data/mot15/PETS09-S2L1 \\
        --out ../h264/crf23/PETS09-S2L1 --crf 23 --preset medium --threads 0
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from mot.errors import UserError
    from mot.studies.compression import PRESETS, CompressionParams, compress_sequence

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", required=True, help="source sequence folder (seqinfo.ini, img1/, gt/, det/)")
    ap.add_argument("--out", required=True, help="new sequence folder (name it like the source; not inside it)")
    ap.add_argument("--crf", type=int, default=23, help="x264 constant rate factor, 0-51 (default 23)")
    ap.add_argument("--preset", default="medium", choices=PRESETS, help="x264 preset (default medium)")
    ap.add_argument("--png-compression", type=int, default=1, help="PNG zlib level 0-9 (default 1; lossless)")
    ap.add_argument("--copy", action="store_true", help="copy gt/ and det/ instead of linking them")
    ap.add_argument("--threads", type=int, default=1, help="ffmpeg threads (default 1; 0: ffmpeg chooses, all cores)")
    ap.add_argument("--ffmpeg", help="ffmpeg executable (default: imageio-ffmpeg's, else ffmpeg on the PATH)")
    ap.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = ap.parse_args(argv)
    try:
        params = CompressionParams(crf=args.crf, preset=args.preset, png_compression=args.png_compression,
                                   link=not args.copy, threads=args.threads)
        result = compress_sequence(args.seq, args.out, params, ffmpeg=args.ffmpeg, force=args.force)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
