#!/usr/bin/env python
"""Counts the generated scenes where a person keeps one identity across a 20-frame occlusion."""

import sys

from mot.studies.recovery import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
