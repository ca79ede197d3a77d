#!/usr/bin/env python
"""Track MOTChallenge sequences or videos and score them; no arguments runs the embedded demo."""

import sys

from mot.cli import run_main


def main() -> int:
    return run_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
