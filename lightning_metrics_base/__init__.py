"""Correct torchmetrics handling for PyTorch Lightning, in one base class.

Subclass `MetricAwareModule` instead of `lightning.LightningModule`, declare metrics in a dict, and
every metric is updated, computed over the whole epoch, logged, synced and reset for you.

The exports are imported when first used, so that ``python -m lightning_metrics_base.lint`` starts
without importing torch or Lightning.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_metrics_base.log_check import MetricLogCheck
    from lightning_metrics_base.module import MetricAwareModule
    from lightning_metrics_base.report.errors import MetricComputeError, MetricUpdateError

try:
    __version__ = version("lightning-metrics-base")
except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricLogCheck", "MetricUpdateError"]

_HOMES = {
    "MetricAwareModule": "lightning_metrics_base._lightning_face",
    "MetricComputeError": "lightning_metrics_base.report.errors",
    "MetricUpdateError": "lightning_metrics_base.report.errors",
    "MetricLogCheck": "lightning_metrics_base._lightning_face",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightning_metrics_base' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
