"""Compute a `MetricCollection` with one gather across processes per compute group.

Metrics of one compute group (accuracy, precision, recall and F1 of one task) share their state;
torchmetrics' own ``compute`` gathers that state once per metric. Here the group's first metric
gathers it, every member computes from the gathered state without syncing again, and the local
state is restored so accumulation can go on.

A metric with child metrics (torchmetrics' wrappers) delegates its compute to its children, which
sync themselves; such a metric, and any group holding one, is computed the plain way so that no
state is ever gathered twice.

The torchmetrics internals this relies on are behind ``_internals/torchmetrics.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchmetrics import Metric, MetricCollection

from lightning_metrics_base._internals.torchmetrics import (
    compute_groups,
    is_synced,
    relink_group_states,
    set_sync_requested,
    shared_curves,
    state_defaults,
    sync_requested,
)

ComputeErrorFactory = Callable[[str, Exception], Exception]


def compute_collection(
    collection: MetricCollection, on_error: ComputeErrorFactory | None = None
) -> dict[str, tuple[Any, Metric]]:
    """Compute every metric of ``collection``, syncing each compute group's state once.

    Args:
        collection: the collection to compute.
        on_error: builds the exception raised when a metric's compute fails, from the metric's
            name and the error; by default the error propagates unchanged.

    Returns:
        ``{name: (result, metric)}`` with the names the collection gives its metrics.

    Examples:
        >>> import torch
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassRecall
        >>> collection = MetricCollection({"acc": MulticlassAccuracy(3), "recall": MulticlassRecall(3)})
        >>> collection.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        >>> {name: round(float(value), 4) for name, (value, _) in compute_collection(collection).items()}
        {'acc': 0.8333, 'recall': 0.8333}
    """
    metrics = dict(collection.items(keep_base=True, copy_state=False))
    names = {base: str(full) for base, full in zip(metrics, collection.keys(keep_base=False), strict=True)}
    results: dict[str, tuple[Any, Metric]] = {}
    try:
        with shared_curves():  # the metrics of a group that compute the same exact curves sort once
            for group in compute_groups(collection):
                leader = metrics[group[0]]
                synced = _gather_state(leader) if all(_is_leaf(metrics[name]) for name in group) else None
                for name in group:
                    try:
                        value = _compute_from(metrics[name], synced) if synced is not None else metrics[name].compute()
                    except Exception as err:
                        if on_error is None:
                            raise
                        raise on_error(names[name], err) from err
                    results[names[name]] = (value, metrics[name])
    finally:
        relink_group_states(collection)
    return {names[name]: results[names[name]] for name in metrics}


def has_children(metric: Metric) -> bool:
    """Tell whether ``metric`` holds other metrics (torchmetrics' wrappers do).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> from torchmetrics.wrappers import ClasswiseWrapper
        >>> has_children(MulticlassAccuracy(3)), has_children(ClasswiseWrapper(MulticlassAccuracy(3, average=None)))
        (False, True)
    """
    return any(isinstance(module, Metric) for module in metric.modules() if module is not metric)


def _is_leaf(metric: Metric) -> bool:
    return not has_children(metric)


def _gather_state(leader: Metric) -> dict[str, Any] | None:
    # The synced state of a group, or None when there is nothing to sync (one process, or a metric
    # built with sync_on_compute=False): then every member computes the plain way.
    leader.sync(
        dist_sync_fn=leader.dist_sync_fn,
        process_group=leader.process_group,
        should_sync=sync_requested(leader),
        distributed_available=leader.distributed_available_fn,
    )
    if not is_synced(leader):
        return None
    synced = {name: getattr(leader, name) for name in state_defaults(leader)}
    leader.unsync()
    return synced


def _compute_from(metric: Metric, synced: dict[str, Any]) -> Any:
    local = {name: getattr(metric, name) for name in synced}
    to_sync = sync_requested(metric)
    try:
        for name, value in synced.items():
            setattr(metric, name, value)
        set_sync_requested(metric, False)
        return metric.compute()
    finally:
        set_sync_requested(metric, to_sync)
        for name, value in local.items():
            setattr(metric, name, value)
