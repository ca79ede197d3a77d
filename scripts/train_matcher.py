#!/usr/bin/env python
"""Train the XGBoost pair matcher on annotated sequences."""

import sys

from mot.training.matcher_cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
