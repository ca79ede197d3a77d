"""Registries: config names to lazily imported classes, one registry per swappable kind.

A registered class has a ``Params`` dataclass (its config ``params``) and is constructed as
``cls(params, **context)``.
"""

from __future__ import annotations

import dataclasses
import importlib

from mot.config import ComponentConfig, Config, from_dict
from mot.errors import UserError


class Registry:
    """Maps config names to ``"module:Class"`` strings, imported on first use."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str):
        if name not in self._entries:
            raise UserError(f"config: unknown {self.kind} type {name!r} (valid: {', '.join(self.names())})")
        module, _, attr = self._entries[name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def params(self, cfg: ComponentConfig):
        """The component's validated ``Params``."""
        return from_dict(self.get(cfg.type).Params, cfg.params, f"{self.kind}.params")

    def build(self, cfg: ComponentConfig, **context):
        """Constructs the component named by ``cfg.type`` with its validated params."""
        return self.get(cfg.type)(self.params(cfg), **context)


def validate_components(cfg: Config) -> None:
    """Checks every component's type and params before any sequence is run, and fills in the
    defaults of the params not given, so that the saved config is the whole resolved one."""
    from association import ASSOCIATIONS
    from detectors import DETECTORS

    for registry, component in ((DETECTORS, cfg.detector), (ASSOCIATIONS, cfg.association)):
        component.params = dataclasses.asdict(registry.params(component))
