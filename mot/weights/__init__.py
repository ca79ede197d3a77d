"""The trained files shipped with the package, and the one place a weights name is resolved.

A bare file name (``siamese.pt``) names a file shipped here; anything else is a path. Every stage
that loads weights calls :func:`resolve`, so the rule is the same everywhere.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mot.errors import UserError


def shipped(name: str) -> Path:
    """The path of a file shipped in ``mot/weights`` (it may not exist: the loader says so)."""
    return Path(str(resources.files(__name__).joinpath(name)))


def resolve(name: str | Path | None, default: str | None = None) -> Path:
    """A weights file from a config value.

    Args:
        name: a shipped file name, a path, or None for ``default``.
        default: the shipped file used when ``name`` is empty.

    Raises:
        UserError: neither a name nor a default.
    """
    if not name:
        if default is None:
            raise UserError("no weights file named and no default")
        return shipped(default)
    path = Path(name)
    if path.parent == Path(".") and not path.exists():
        return shipped(str(path))
    return path
