#!/usr/bin/env python
"""How much of people's frame-to-frame motion camera motion compensation explains, and its cost."""

import sys

from mot.studies.camera import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
