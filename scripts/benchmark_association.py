#!/usr/bin/env python
"""The learned association's cost per frame (features, matcher, linking) at 10 and 50 people."""

import sys

from mot.studies.association_speed import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
