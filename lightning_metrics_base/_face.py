"""Which Lightning namespace a face of the package runs on: ``lightning`` or ``pytorch_lightning``.

Lightning ships one framework under two names, and a Trainer of one refuses a module of the other.
The package's classes are written once; each face (`lightning_metrics_base` for ``lightning``,
`lightning_metrics_base.pytorch_lightning` for ``pytorch_lightning``) builds them on its namespace's
`LightningModule` and `Callback` and hands them its `Face`, through which they reach the few things
that differ: the rank-zero warnings (each namespace counts its own ranks), the namespace's private
modules (through `_internals.lightning`) and its version. A `Face` imports nothing until asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Face:
    """One Lightning namespace: the distribution's import name and the package holding ``LightningModule``.

    Examples:
        >>> LIGHTNING.root, PYTORCH_LIGHTNING.root
        ('lightning.pytorch', 'pytorch_lightning')
    """

    package: str
    root: str

    def module(self, name: str = "") -> ModuleType:
        """The namespace's module ``name`` (``"utilities"``, ``"trainer.connectors..."``; ``""`` the root)."""
        return importlib.import_module(f"{self.root}.{name}" if name else self.root)

    @property
    def version(self) -> str:
        """The installed version of the namespace's distribution."""
        return str(importlib.import_module(self.package).__version__)

    def rank_zero_warn(self, message: str, **kwargs: Any) -> None:
        """Warn on the namespace's rank zero only."""
        warn: Callable[..., None] = self.module("utilities").rank_zero_warn
        warn(message, **kwargs)

    def rank_zero_info(self, message: str) -> None:
        """Inform on the namespace's rank zero only."""
        info: Callable[..., None] = self.module("utilities").rank_zero_info
        info(message)


LIGHTNING = Face("lightning", "lightning.pytorch")
PYTORCH_LIGHTNING = Face("pytorch_lightning", "pytorch_lightning")
