"""Everything that fits a model: the Siamese network, the XGBoost matcher, the SiamRPN refiner.

Never imported by a tracking run (``tests/test_layout.py`` checks it); the thin scripts in
``scripts/`` call into it.
"""

from __future__ import annotations

import shlex
import sys
from typing import Callable


def run_training(script: str, argv, train: Callable, params, given: dict) -> dict | None:
    """The common body of a training script: sets the ``given`` options that are not None on
    ``params``, records the command line in the weights (``train(params, command=...)``), and turns
    a ``UserError`` into one line on stderr. Returns the training summary, or None on a user error."""
    from mot.errors import UserError

    for name, value in given.items():
        if value is not None:
            setattr(params, name, value)
    command = f"python scripts/{script} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        return train(params, command=command)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
