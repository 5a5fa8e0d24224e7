"""What one metric's result becomes: scalars to log, values kept whole, and the element names predicted.

The names of a result's elements follow one rule (`element_names`), whether predicted from the
metric's constructor arguments (`expected_names`) or read off the computed result (`flatten_result`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.wrappers import ClasswiseWrapper

from lightning_metrics_base._internals.torchmetrics import classwise_keys


def wants_figure(value: Any) -> bool:
    """Tell whether a result is drawn rather than logged: a tensor of 2+ dimensions, or a curve.

    Examples:
        >>> import torch
        >>> wants_figure(torch.eye(3)), wants_figure(torch.ones(3)), wants_figure((torch.ones(3), torch.ones(3)))
        (True, False, True)
    """
    if isinstance(value, Tensor):
        return value.ndim >= 2
    return isinstance(value, (tuple, list)) and len(value) > 0


def flatten_result(
    name: str,
    value: Any,
    sep: str = "/",
    labels: Sequence[str] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split one metric result into loggable scalars and values kept whole.

    A scalar keeps ``name``; a 1-D tensor gives one scalar per element, named
    ``{name}{sep}{label}`` with ``labels[i]`` when given, else the index; a dict gives one entry
    per key, ``{name}{sep}{key}``, flattened the same way; a tensor of two or more dimensions
    is not a scalar and is returned in the second dict under ``name``; a list or tuple (curves
    such as ROC's ``(fpr, tpr, thresholds)``) is kept element by element, never logged.

    Args:
        name: the full name of the result, e.g. ``"val/acc"``.
        value: what ``Metric.compute()`` returned.
        sep: the separator placed before an element label or a dict key.
        labels: names for the elements of a 1-D result (e.g. class names).

    Returns:
        ``(scalars, kept)``: 0-d tensors to log, and every tensor of the result by name
        (scalars included, so ``kept`` holds the full result).

    Raises:
        TypeError: the result is neither a tensor, a number, a dict nor a sequence of tensors.

    Examples:
        >>> import torch
        >>> scalars, kept = flatten_result("val/per_class", torch.tensor([0.5, 1.0]), labels=["cat", "dog"])
        >>> sorted(scalars)
        ['val/per_class/cat', 'val/per_class/dog']
        >>> kept["val/per_class"].tolist()
        [0.5, 1.0]
        >>> scalars, kept = flatten_result("val/confmat", torch.eye(2))
        >>> scalars, kept["val/confmat"].shape
        ({}, torch.Size([2, 2]))
    """
    scalars: dict[str, Tensor] = {}
    kept: dict[str, Tensor] = {}
    _flatten(name, value, sep, labels, scalars, kept)
    return scalars, kept


def expected_names(name: str, metric: Metric, sep: str) -> list[str]:
    """The scalar names a metric's result will have, where its constructor arguments reveal them.

    A metric with ``average=None`` and ``num_classes`` (or ``num_labels``) gives one name per class;
    ``ClasswiseWrapper`` one per label (or class) with its prefix and postfix; ``MultitaskWrapper`` one
    per task; any other metric its own name. Results whose keys only show at compute time are checked then.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> expected_names("val/acc", MulticlassAccuracy(3, average=None), "/")
        ['val/acc/0', 'val/acc/1', 'val/acc/2']
    """
    task_metrics = getattr(metric, "task_metrics", None)
    if isinstance(task_metrics, (Mapping, torch.nn.ModuleDict)):
        names: list[str] = []
        for task, task_metric in task_metrics.items():
            if isinstance(task_metric, Metric):
                names += expected_names(f"{name}{sep}{task}", task_metric, sep)
            elif isinstance(task_metric, MetricCollection):
                names += [f"{name}{sep}{task}{sep}{key}" for key in task_metric.keys(keep_base=False)]
        return names
    if isinstance(metric, ClasswiseWrapper):
        count = len(metric.labels) if metric.labels is not None else _per_class_count(metric.metric)
        keys = classwise_keys(metric, count) if count is not None else None
        return [name] if keys is None else [f"{name}{sep}{key}" for key in keys]
    count = _per_class_count(metric)
    return [name] if count is None else [f"{name}{sep}{label}" for label in element_names(metric_labels(metric), count)]


def _per_class_count(metric: Metric) -> int | None:
    # the length of a per-class result, where the constructor arguments say it (`average=None`)
    count = getattr(metric, "num_classes", None) or getattr(metric, "num_labels", None)
    if "average" in vars(metric) and getattr(metric, "average", 0) is None and isinstance(count, int):
        return count
    return None


def element_names(labels: Sequence[str] | None, count: int) -> list[str]:
    """The names of the ``count`` elements of a 1-D result: ``labels`` when there are as many, else the indices.

    One rule for the names predicted at construction and those given at the epoch end.

    Examples:
        >>> element_names(["cat", "dog"], 2), element_names(["cat"], 2)
        (['cat', 'dog'], ['0', '1'])
    """
    return (
        [str(label) for label in labels]
        if labels is not None and len(labels) == count
        else list(map(str, range(count)))
    )


def metric_labels(metric: Metric) -> Sequence[str] | None:
    """The element names a metric declares for a 1-D result (``labels``), or ``None``."""
    labels = getattr(metric, "labels", None)
    return [str(label) for label in labels] if isinstance(labels, Sequence) and not isinstance(labels, str) else None


def _flatten(
    name: str,
    value: Any,
    sep: str,
    labels: Sequence[str] | None,
    scalars: dict[str, Tensor],
    kept: dict[str, Tensor],
) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(value)
    if isinstance(value, Tensor):
        kept[name] = value
        if value.ndim == 0:
            scalars[name] = value
        elif value.ndim == 1:
            for label, element in zip(element_names(labels, value.numel()), value.unbind(), strict=True):
                scalars[f"{name}{sep}{label}"] = element
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{name}{sep}{key}", item, sep, None, scalars, kept)
        return
    if isinstance(value, (list, tuple)):
        # Curves such as ROC's (fpr, tpr, thresholds): kept for plots, never logged as scalars.
        for index, item in enumerate(value):
            _flatten(f"{name}{sep}{index}", item, sep, None, {}, kept)
        return
    raise TypeError(f"{name}: cannot log a metric result of type {type(value).__name__}.")
