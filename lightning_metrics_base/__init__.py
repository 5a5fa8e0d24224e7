"""Correct torchmetrics handling for PyTorch Lightning, in one base class.

Subclass `MetricAwareModule` instead of `lightning.LightningModule`, declare metrics in a dict, and
every metric is updated, computed over the whole epoch, logged, synced and reset for you.
"""

from lightning_metrics_base.config import STAGES, build_metrics, instantiate_spec, is_spec
from lightning_metrics_base.metric_store import MetricStore
from lightning_metrics_base.module import MetricAwareModule, MetricUpdateError
from lightning_metrics_base.naming import flatten_result

__version__ = "0.1.0"

__all__ = [
    "STAGES",
    "MetricAwareModule",
    "MetricStore",
    "MetricUpdateError",
    "build_metrics",
    "flatten_result",
    "instantiate_spec",
    "is_spec",
]
