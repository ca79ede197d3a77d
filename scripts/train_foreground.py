#!/usr/bin/env python
"""Trains the foreground map (association/foreground.py) and attaches it to Siamese weights; see
mot/training/foreground.py."""

import sys

from mot.training.foreground import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
