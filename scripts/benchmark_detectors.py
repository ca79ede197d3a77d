#!/usr/bin/env python
"""Detection quality (precision, recall, AP at IoU 0.5) and ms per frame of detectors and stored det files."""

import sys

from mot.studies.detector_benchmark import main as benchmark_main


def main() -> int:
    return benchmark_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
