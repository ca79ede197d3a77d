#!/usr/bin/env python
"""Leave-one-sequence-out study of iou_only vs context vs default association."""

import sys

from mot.studies.loso import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
