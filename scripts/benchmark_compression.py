#!/usr/bin/env python
"""Appearance benchmark across compressed copies of one sequence: does compression move the scores?

Scores Siamese models (as the tracker runs them) and the LUV colour histogram on each generation of
a sequence (the first is the reference), with the change from the reference and the embedding
drift. Copies come from scripts/compress_sequence.py.

Example (the numbers in docs/appearance.md, issue 19):
    python scripts/benchmark_compression.py \\
        --gen gen1=../data/mot15/PETS09-S2L1 crf23=/work/h264/crf23/PETS09-S2L1 \\
              crf30=/work/h264/crf30/PETS09-S2L1 \\
        --model shipped fold=runs/loso/loso_PETS09.pt --out runs/compression_appearance.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mot.cli import labelled_items
    from mot.errors import UserError
    from mot.io import atomic_write_text
    from mot.studies.compression_appearance import (
        SHIPPED,
        embedders,
        format_generations,
        score_generations,
        siamese_models,
    )

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen", nargs="+", required=True, metavar="LABEL=SEQ",
                    help="generations of one sequence; the first is the reference")
    ap.add_argument("--model", nargs="*", default=["shipped"], metavar="LABEL=WEIGHTS",
                    help=f"Siamese weights by label; the word shipped is the shipped file (default: {SHIPPED})")
    ap.add_argument("--no-histogram", action="store_true", help="leave out the LUV colour histogram")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)
    try:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
        gens = labelled_items(args.gen, "--gen")
        models = siamese_models(args.model)
        result = score_generations(gens, embedders(models, histogram=not args.no_histogram))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["models"] = models
    print(f"{result['boxes']} ground-truth boxes per generation; reference {next(iter(gens))}\n")
    print(format_generations(result))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
