#!/usr/bin/env python
"""Trains the learned detection confidence (mot/confidence.py); see mot/training/confidence.py."""

import sys

from mot.training.confidence import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
