#!/usr/bin/env python
"""Leave-one-sequence-out study of the SiamRPN refiner (off vs on, one model trained per left-out sequence)."""

import sys

from mot.studies.refiner_loso import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
