#!/usr/bin/env python
"""The learned confidence on scenes it never saw, detection by detection; see mot/studies/confidence.py."""

import sys

from mot.studies.confidence import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
