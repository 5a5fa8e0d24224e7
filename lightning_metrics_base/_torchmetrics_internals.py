"""Every private name of torchmetrics the package relies on, behind one small function each.

When a torchmetrics release moves one of them, this is the file to change; ``tests/test_internals.py``
checks each function against the installed torchmetrics (CI runs it at the lowest and latest
versions that ``pyproject.toml`` declares, 1.6.2 and the newest 1.x). No other file of the package
touches a private name of torchmetrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

RUNTIME_ATTRIBUTE_PREFIXES = (
    "_update",
    "_computed",
    "_forward_cache",
    "_is_synced",
    "_cache",
    "_to_sync",
    "_should_unsync",
)
"""Prefixes of the private attributes a `Metric` changes while it runs (its update count, cached results,
sync flags): they say nothing about how it was built."""


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

    What ``MetricCollection._compute_groups_create_state_ref()`` does, setting only what differs: where a
    state was changed in place (a sum added to, a list appended to, a reset in place) the members already
    hold the first member's objects. Relies on ``MetricCollection._groups_checked``, ``_groups``,
    ``_state_is_copy``, ``Metric._defaults`` and ``_update_count``.
    """
    if not collection._groups_checked:
        return
    modules = collection._modules
    for group in collection._groups.values():
        if len(group) < 2:  # nothing shares its state
            continue
        first = modules[group[0]]
        states = [(name, getattr(first, name)) for name in first._defaults]
        states.append(("_update_count", first._update_count))
        for member in (modules[name] for name in group[1:]):
            attributes = member.__dict__
            for name, value in states:
                if attributes.get(name) is not value:
                    _set_plain(member, attributes, name, value)
    collection._state_is_copy = False


def _set_plain(module: Any, attributes: dict[str, Any], name: str, value: Any) -> None:
    # ``setattr`` on a module first looks for a parameter, buffer or submodule of that name (a few
    # microseconds, paid per state and member on every step); a metric state or count is none of those
    # but a plain instance attribute, which ``setattr`` ends up writing to ``__dict__``: written there
    # directly. Anything else (a name not yet an instance attribute) goes through ``setattr``.
    if name in attributes and not isinstance(value, (torch.nn.Parameter, torch.nn.Module)):
        attributes[name] = value
    else:
        setattr(module, name, value)


def members(collection: MetricCollection) -> list[tuple[str, Metric]]:
    """``collection.items(keep_base=True)`` without its side effect (``MetricCollection._modules``).

    ``items()`` and ``values()`` relink (or copy) every compute group's states on each call; the update
    path reads the members many times a step and relinks only after it changed a state.
    """
    return [(str(name), metric) for name, metric in collection._modules.items()]


def reset_in_place(metric: Metric) -> None:
    """``metric.reset()``, writing each tensor state's default into the tensor it holds where they are alike.

    Compute group members hold the same state objects as their group's first member; after this they
    still do, so nothing needs relinking. Sets what ``Metric.reset`` sets (``_update_count``,
    ``_forward_cache``, ``_computed``, ``_cache``, ``_is_synced``; torchmetrics 0.x and 1.x); a state
    whose default differs in shape, dtype or device gets a new tensor, as ``reset`` gives it; lists are
    cleared, as ``reset`` clears them. Results ``compute`` returned earlier are unchanged: ``compute``
    returns copies (torchmetrics 1.x clones every tensor it returns). A metric with a ``reset`` of its
    own (a wrapper resets its child) is reset by it.
    """
    if type(metric).reset is not Metric.reset:
        metric.reset()
        return
    # a module's `setattr` is not free: only what differs is set
    if metric._update_count != 0:
        metric._update_count = 0
    for name in ("_forward_cache", "_computed", "_cache"):
        if getattr(metric, name) is not None:
            setattr(metric, name, None)
    for name, default in metric._defaults.items():
        current = getattr(metric, name)
        if not isinstance(default, Tensor):
            current.clear()
        elif current.shape == default.shape and current.dtype == default.dtype and not current.requires_grad:
            current.copy_(default)
        else:
            setattr(metric, name, default.detach().clone().to(current.device))
    if metric._is_synced:
        metric._is_synced = False


def unwrapped_compute(metric: Metric) -> Any:
    """What ``metric``'s class computes from its state now, without what ``Metric.compute`` wraps around it.

    torchmetrics wraps each instance's ``compute`` when it is built (``Metric._wrap_compute``, torchmetrics
    0.x and 1.x): a warning before any update, the result cache, the sync context, squeezing
    one-element tensors to 0-d and a copy of the result; the class attribute stays the plain method.
    For a metric that never syncs or caches and was just updated (the per-step copy), the rest is the
    squeeze, left to the caller, and a copy: the result may share memory with the state.
    """
    return type(metric).compute(metric)


def invalidate_cached_results(metrics: Any) -> None:
    """Forget the cached ``compute()`` result of each metric (``Metric._computed``), as ``update`` does."""
    for metric in metrics:
        if metric._computed is not None:  # a module's `setattr` is not free: only where there is one
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


def counts_multiclass_curve(metric: Metric) -> bool:
    """Whether ``metric`` is a multiclass binned curve whose ``update`` is torchmetrics' own.

    ``MulticlassPrecisionRecallCurve.update`` (inherited by ``MulticlassAUROC``, ``MulticlassAveragePrecision``,
    ``MulticlassROC``, ...) with a tensor of thresholds and per-class curves: validate, format, add a
    ``(T, C, 2, 2)`` count to ``confmat`` (torchmetrics 1.x). Not with ``average="micro"``, a binary curve
    over every (sample, class) pair.
    """
    from torchmetrics.classification import MulticlassPrecisionRecallCurve

    return (
        type(metric).update is MulticlassPrecisionRecallCurve.update
        and isinstance(getattr(metric, "thresholds", None), Tensor)
        and getattr(metric, "average", None) != "micro"
    )


def multiclass_curve_inputs(metric: Any, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """What a multiclass binned curve's ``update`` counts: its inputs validated and formatted as torchmetrics does.

    Relies on ``_multiclass_precision_recall_curve_tensor_validation`` and
    ``_multiclass_precision_recall_curve_format`` (torchmetrics 1.x): scores ``(N, C)`` (softmax of
    logits, ignored targets dropped) and labels ``(N,)``.
    """
    from torchmetrics.functional.classification.precision_recall_curve import (
        _multiclass_precision_recall_curve_format,
        _multiclass_precision_recall_curve_tensor_validation,
    )

    if metric.validate_args:
        _multiclass_precision_recall_curve_tensor_validation(preds, target, metric.num_classes, metric.ignore_index)
    scores, labels, _ = _multiclass_precision_recall_curve_format(
        preds, target, metric.num_classes, metric.thresholds, metric.ignore_index, metric.average
    )
    return scores, labels
