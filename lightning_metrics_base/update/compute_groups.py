"""Compute groups decided from the metrics' settings, never from their states after one batch.

Metrics of a compute group share one state and only the group's first metric is updated, so two
metrics may share a group only when their updates agree for every input. torchmetrics forms groups
after a collection's first update by comparing states, which merges metrics that differ whenever a
small first batch happens to leave their states equal (``MulticlassAccuracy(top_k=2)`` beside a
top-1 accuracy). Here two metrics share a group when they run the same ``update`` code, every setting
that code reads (``self.num_classes``, ``self.top_k``, ``self.threshold``, ... in ``update`` and in the
methods it calls) has equal values, and their states start equal. Accuracy, precision, recall and F1
of one task with equal settings stay grouped: they share one ``update``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from lightning_metrics_base._internals.torchmetrics import set_compute_groups, settings_read, state_defaults
from lightning_metrics_base.update.sync import has_children


def settings_groups(metrics: Mapping[str, Metric]) -> list[list[str]]:
    """Group the metrics (by name) whose updates agree for every input; every other metric is its own group.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
        >>> settings_groups({"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3),
        ...                  "top2": MulticlassAccuracy(3, top_k=2)})
        [['acc', 'f1'], ['top2']]
    """
    groups: list[list[str]] = []
    for name, metric in metrics.items():
        for group in groups:
            if same_update(metrics[group[0]], metric):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def group_by_settings(collection: MetricCollection) -> MetricCollection:
    """Give ``collection`` the compute groups of `settings_groups` (none if built with ``compute_groups=False``).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> collection = group_by_settings(MetricCollection({"acc": MulticlassAccuracy(3),
        ...                                                  "top2": MulticlassAccuracy(3, top_k=2)}))
        >>> list(collection.compute_groups.values())
        [['acc'], ['top2']]
    """
    set_compute_groups(collection, settings_groups(dict(collection.items(keep_base=True, copy_state=False))))
    return collection


def same_update(first: Metric, other: Metric) -> bool:
    """Tell whether ``first`` and ``other`` change their states alike for every input.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassRecall
        >>> same_update(MulticlassAccuracy(3), MulticlassRecall(3)), same_update(MulticlassAccuracy(3),
        ...                                                                      MulticlassAccuracy(4))
        (True, False)
    """
    update = type(first).update
    if update is not type(other).update or has_children(first) or has_children(other):
        return False
    read = settings_read(type(first))
    if read is None:
        return False
    first_states, other_states = state_defaults(first), state_defaults(other)
    if not first_states or first_states.keys() != other_states.keys():
        return False
    if not all(_equal(first_states[name], other_states[name]) for name in first_states):
        return False
    settings = read - first_states.keys()
    missing = object()
    return all(_equal(getattr(first, name, missing), getattr(other, name, missing)) for name in settings)


def _equal(first: Any, other: Any) -> bool:
    if isinstance(first, Tensor) or isinstance(other, Tensor):
        return (
            isinstance(first, Tensor)
            and isinstance(other, Tensor)
            and first.shape == other.shape
            and first.dtype == other.dtype
            and bool(torch.equal(first.cpu(), other.cpu()))
        )
    if isinstance(first, (list, tuple)) and isinstance(other, (list, tuple)):
        return len(first) == len(other) and all(_equal(a, b) for a, b in zip(first, other, strict=True))
    try:
        return type(first) is type(other) and bool(first == other)
    except Exception:  # an object whose comparison is not a bool: never assume equal
        return False
