#!/usr/bin/env python
"""Score existing MOTChallenge result files against ground truth."""

import sys

from mot.cli import evaluate_main


def main() -> int:
    return evaluate_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
