#!/usr/bin/env python
"""A config's detector cost in ms per frame at 768x576 and 1920x1080 (one thread)."""

import sys

from mot.studies.detector_speed import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
