#!/usr/bin/env python
"""Our configs and the peer trackers on the same detections: accuracy, speed, a Markdown report.

    python scripts/benchmark.py --data ../shared/data/mot15 --out runs/bench --peer-python ../venv-deepsort/bin/python
"""

import sys

from mot.studies.benchmark import main as benchmark_main


def main() -> int:
    return benchmark_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
