#!/usr/bin/env python
"""The appearance benchmark on detector boxes beside ground-truth boxes (mot/studies/detection_boxes.py).

Each considered ground-truth box matched to a detection of --det (IoU >= 0.5) is embedded on both
boxes by every --model and by the LUV colour histogram; AUC and rank-1 at 1, 10 and 30 frames per
kind of box, and how far the detections miss. Score a model only on scenes it never saw (a fold
model of appearance_loso.py).

    python scripts/appearance_detboxes.py --seqs ../data/mot15/KITTI-17 --det det/det_yolox.txt \\
        --model nhvo=runs/nhvo/loso_KITTI-17.pt shipped
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.sequence import open_sequence
    from mot.studies.compression_appearance import embedders, siamese_models
    from mot.studies.detection_boxes import detection_boxes_text, score_on_detections

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seqs", nargs="+", required=True, help="sequence folders with gt/gt.txt")
    ap.add_argument("--det", default="det/det_yolox.txt", help="detection file, relative to each sequence")
    ap.add_argument("--model", nargs="*", default=[], metavar="LABEL=WEIGHTS",
                    help="Siamese weights by label; the word shipped is mot/weights/siamese.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results, failed = {}, 0
    try:
        methods = embedders(siamese_models(args.model))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for seq_dir in args.seqs:
        try:
            seq = open_sequence(Path(seq_dir))
            results[seq.name] = score_on_detections(seq, args.det, methods)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    print(detection_boxes_text(results))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
