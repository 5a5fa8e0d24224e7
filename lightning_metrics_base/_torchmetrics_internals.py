"""Every private name of torchmetrics the package relies on, behind one small function each.

When a torchmetrics release moves one of them, this is the file to change; ``tests/test_internals.py``
checks each function against the installed torchmetrics (CI runs it at the lowest and latest
versions that ``pyproject.toml`` declares, 1.6.2 and the newest 1.x). No other file of the package
touches a private name of torchmetrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchmetrics import Metric, MetricCollection


def state_defaults(metric: Metric) -> dict[str, Any]:
    """``{state name: default value}`` of ``metric``'s states (``Metric._defaults``, torchmetrics 0.x and 1.x)."""
    return metric._defaults


def set_compute_groups(collection: MetricCollection, groups: list[list[str]]) -> None:
    """Give ``collection`` these compute groups now, as if passed as ``compute_groups=groups`` at construction.

    A collection built with ``compute_groups=False`` keeps none. Relies on
    ``MetricCollection._enable_compute_groups``, ``_init_compute_groups()`` (which marks the groups
    checked: torchmetrics then never merges groups from states), ``_state_is_copy`` and
    ``_compute_groups_create_state_ref()`` (torchmetrics 0.11 and later).
    """
    if collection._enable_compute_groups is False:
        return
    collection._enable_compute_groups = groups
    collection._init_compute_groups()
    collection._state_is_copy = False
    collection._compute_groups_create_state_ref()


def compute_groups(collection: MetricCollection) -> list[list[str]]:
    """The compute groups of ``collection`` by metric name (``keep_base`` names); every metric is in one.

    Before torchmetrics has checked the groups (a collection of its own, before its first update),
    every metric is its own group. Relies on ``MetricCollection._groups`` and ``_groups_checked``.
    """
    groups = [list(map(str, group)) for group in collection._groups.values()] if collection._groups_checked else []
    grouped = {name for group in groups for name in group}
    return groups + [[str(name)] for name in collection.keys(keep_base=True) if name not in grouped]


def relink_group_states(collection: MetricCollection) -> None:
    """Point every member of each compute group at its first member's state again (after that one's update).

    Relies on ``MetricCollection._groups_checked``, ``_state_is_copy`` and ``_compute_groups_create_state_ref()``.
    """
    if collection._groups_checked:
        collection._state_is_copy = False
        collection._compute_groups_create_state_ref()


def invalidate_cached_results(metrics: Any) -> None:
    """Forget the cached ``compute()`` result of each metric (``Metric._computed``), as ``update`` does."""
    for metric in metrics:
        metric._computed = None


def state_reductions(metric: Metric) -> list[Callable[..., Any] | str | None]:
    """How each state of ``metric`` is reduced across processes (``Metric._reductions``, torchmetrics 0.x/1.x)."""
    return list(metric._reductions.values())


def reductions_by_state(metric: Metric) -> dict[str, Callable[..., Any] | str | None]:
    """``{state name: reduction}`` of ``metric`` (``Metric._reductions``, torchmetrics 0.x and 1.x)."""
    return dict(metric._reductions)


def count_update(metric: Metric) -> None:
    """Count one more update of ``metric``, as its ``update`` does (``Metric._update_count``, 0.x and 1.x).

    For a state changed without ``update`` (merged in); ``compute`` warns while the count is zero.
    """
    metric._update_count += 1


def sync_requested(metric: Metric) -> bool:
    """Whether ``metric`` syncs its state at compute (``Metric._to_sync``, torchmetrics 0.x and 1.x)."""
    return bool(metric._to_sync)


def set_sync_requested(metric: Metric, value: bool) -> None:
    """Turn ``metric``'s sync at compute on or off (``Metric._to_sync``)."""
    metric._to_sync = value


def is_synced(metric: Metric) -> bool:
    """Whether ``metric`` holds the gathered state now (``Metric._is_synced``, torchmetrics 0.x and 1.x)."""
    return bool(metric._is_synced)


def set_dtype(metric: Metric, dtype: Any) -> None:
    """Set the dtype ``metric`` casts new float states to (``Metric._dtype``, torchmetrics 0.x and 1.x)."""
    metric._dtype = dtype


def dtype_of(metric: Metric) -> Any:
    """The dtype ``metric`` casts new float states to (``Metric._dtype``)."""
    return metric._dtype


def classwise_keys(wrapper: Any, count: int) -> list[str] | None:
    """The keys a ``ClasswiseWrapper`` gives a per-class result of ``count`` elements, or ``None`` if unknown.

    Relies on ``ClasswiseWrapper._convert_output`` (torchmetrics 1.0 and later).
    """
    import torch

    convert = getattr(wrapper, "_convert_output", None)
    return [str(key) for key in convert(torch.zeros(count))] if callable(convert) else None


def takes_class_indices(metric: Metric) -> bool:
    """Whether ``metric``'s update turns predictions into class indices, and only that, before it counts.

    True for multiclass stat scores (accuracy, precision, recall, F1, ...) with ``top_k=1`` and for the
    multiclass confusion matrix family (Jaccard index, Cohen's kappa, MCC) that keep their class's
    ``update``: torchmetrics' ``_multiclass_stat_scores_format`` and ``_multiclass_confusion_matrix_format``
    take ``preds.argmax(dim=1)`` when ``preds`` has one more dimension than ``target`` (torchmetrics 1.0
    and later), so feeding those indices gives the same state.
    """
    from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassStatScores

    update = type(metric).update
    if update is MulticlassStatScores.update:
        return getattr(metric, "top_k", 1) == 1
    return update is MulticlassConfusionMatrix.update
