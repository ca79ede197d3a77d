"""Per-detector cost: wall-clock milliseconds per ``detect`` call at given image sizes.

The benchmark calls :func:`detector_cost`; ``python scripts/detector_speed.py --config hog``
prints it for a config's detector. Threads: :func:`detector_cost` changes no process setting; the script's ``--threads``
(default 1) sets them once at start-up.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from detectors import DETECTORS
from mot.config import DetectorSection
from mot.errors import UserError

SIZES = ((768, 576), (1920, 1080))


def texture_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic textured (height, width, 3) BGR uint8 image, for when no real frame is given."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 16, 1), max(width // 16, 1), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def detector_cost(name: str, params: dict | None = None, sizes=SIZES, repeats: int = 3,
                  image: np.ndarray | None = None, sequence=None) -> dict[str, float]:
    """Measures a detector's cost per frame.

    Args:
        name: registry name (``hog``, ``dnn`` ...).
        params: its config ``params`` (None: defaults).
        sizes: (width, height) image sizes to time.
        repeats: timed calls per size, after one untimed warm-up call.
        image: (H, W, 3) BGR uint8 frame resized to each size; None uses :func:`texture_image`.
        sequence: the sequence, for detectors that read per-sequence files (``public``, ``gt``).

    Returns:
        ``{"WxH": mean milliseconds per detect call}``, one entry per size.
    """
    det = DETECTORS.build(DetectorSection(name, dict(params or {})), sequence=sequence)
    costs = {}
    for width, height in sizes:
        frame = texture_image(width, height) if image is None else cv2.resize(image, (width, height))
        det.detect(frame, 1)
        start = time.perf_counter()
        for i in range(repeats):
            det.detect(frame, 1 + i)
        costs[f"{width}x{height}"] = 1000 * (time.perf_counter() - start) / repeats
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="detector_speed.py", description="ms per frame of a config's detector")
    parser.add_argument("--config", required=True, help="YAML config whose detector section is timed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--image", help="a real frame to time on (default: a generated texture)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = parser.parse_args(argv)
    from mot import runtime
    runtime.configure(args.threads)
    from mot.config import load_config
    try:
        cfg = load_config(args.config, args.overrides)
        image = None
        if args.image:
            image = cv2.imread(args.image, cv2.IMREAD_COLOR)
            if image is None:
                raise UserError(f"{args.image}: cannot read image")
        costs = detector_cost(cfg.detector.type, cfg.detector.params, repeats=args.repeats, image=image)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for size, ms in costs.items():
        print(f"{cfg.detector.type} {size}: {ms:.1f} ms/frame")
    return 0

