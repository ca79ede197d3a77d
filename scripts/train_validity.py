#!/usr/bin/env python
"""Trains the track-validity model (mot/validity.py); see mot/training/validity.py."""

import sys

from mot.training.validity import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
