"""Correct torchmetrics handling for PyTorch Lightning, in one base class.

Subclass `MetricAwareModule` instead of `lightning.LightningModule`, declare metrics in a dict, and
every metric is updated, computed over the whole epoch, logged, synced and reset for you.
"""

from lightning_metrics_base.config import STAGES, build_metrics
from lightning_metrics_base.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.metric_store import MetricStore
from lightning_metrics_base.module import MetricAwareModule
from lightning_metrics_base.naming import flatten_result
from lightning_metrics_base.specs import instantiate_spec, is_spec

__version__ = "0.1.0"

__all__ = [
    "STAGES",
    "MetricAwareModule",
    "MetricComputeError",
    "MetricStore",
    "MetricUpdateError",
    "build_metrics",
    "flatten_result",
    "instantiate_spec",
    "is_spec",
]
