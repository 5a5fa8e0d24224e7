"""Correct torchmetrics handling for PyTorch Lightning, in one base class.

Subclass `MetricAwareModule` instead of `lightning.LightningModule`, declare metrics in a dict, and
every metric is updated, computed over the whole epoch, logged, synced and reset for you.
"""

from importlib.metadata import PackageNotFoundError, version

from lightning_metrics_base.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.module import MetricAwareModule

try:
    __version__ = version("lightning-metrics-base")
except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricUpdateError"]
