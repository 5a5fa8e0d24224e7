"""Every private name of torchmetrics the package relies on, behind one small function each.

When a torchmetrics release moves one of them, this is the file to change; ``tests/test_internals.py``
checks each function against the installed torchmetrics (CI runs it at the lowest and latest
versions that ``pyproject.toml`` declares, 1.6.2 and the newest 1.x). No other file of the package
touches a private name of torchmetrics.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any, Literal

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


# --- Input checks: torchmetrics' argument validation, paid only where the inputs are not plainly good ---------
#
# torchmetrics validates every update's inputs with `torch.unique` over targets (and integer predictions):
# more than the counting itself on segmentation masks. `checked_update` first checks the inputs with cheap
# exact reductions (shapes, dtypes, one `aminmax` against the labels a metric counts); inputs that pass are
# ones torchmetrics' validation accepts, and the update runs with it turned off. Others go through
# torchmetrics' own validation (its error, its message), then through an exact check of the labels a
# multiclass metric counts (torchmetrics' check counts distinct values, and lets a label equal to
# `num_classes` through into a miscount or a reshape error), then the update as torchmetrics runs it.


class InvalidLabels(ValueError):
    """Labels outside the classes a metric counts, which torchmetrics' own checks let through."""


def _labels_within(values: Tensor, high: int, ignore_index: int | None) -> bool:
    # every value in {0, ..., high} or equal to `ignore_index`, by one `aminmax` (two with an ignored value
    # outside that range present)
    if values.numel() == 0 or values.dtype == torch.bool:
        return high >= 1 or values.numel() == 0
    if values.is_floating_point() or values.is_complex():
        return False
    low_high = torch.stack(torch.aminmax(values)).tolist()
    if low_high[0] >= 0 and low_high[1] <= high:
        return True
    if ignore_index is None or 0 <= ignore_index <= high:
        return False
    low_high = torch.stack(torch.aminmax(values.masked_fill(values == ignore_index, 0))).tolist()
    return bool(low_high[0] >= 0 and low_high[1] <= high)


def _multiclass_plainly_good(metric: Any, preds: Tensor, target: Tensor, curve: bool) -> bool:
    classes = metric.num_classes
    if classes is None or target.is_floating_point():
        return False
    samplewise = getattr(metric, "multidim_average", "global") != "global"
    if preds.ndim == target.ndim + 1:
        if not (
            preds.is_floating_point()
            and preds.shape[1] == classes
            and preds.shape[0] == target.shape[0]
            and preds.shape[2:] == target.shape[1:]
            and (preds.ndim >= 3 or not samplewise)
        ):
            return False
    elif (
        curve
        or preds.shape != target.shape
        or preds.is_floating_point()
        or (samplewise and preds.ndim < 2)
        or not _labels_within(preds, classes - 1, None)
    ):
        return False
    return _labels_within(target, classes - 1, metric.ignore_index)


def _binary_plainly_good(metric: Any, preds: Tensor, target: Tensor, curve: bool, labels: int | None) -> bool:
    if preds.shape != target.shape or target.is_floating_point():
        return False
    if labels is not None and (preds.ndim < 2 or preds.shape[1] != labels):
        return False
    if getattr(metric, "multidim_average", "global") != "global" and preds.ndim < (2 if labels is None else 3):
        return False
    if preds.is_floating_point():
        pass
    elif curve or not _labels_within(preds, 1, None):
        return False
    return _labels_within(target, 1, metric.ignore_index)


def _out_of_range_labels(metric: Any, preds: Tensor, target: Tensor) -> str | None:
    # The exact check of a multiclass metric's counted labels: every target (and integer prediction) that
    # is not ignored lies in {0, ..., num_classes - 1}.
    classes, ignore_index = metric.num_classes, metric.ignore_index
    if classes is None:
        return None
    counted = None if ignore_index is None else target != ignore_index
    checked = [("target", target)]
    if preds.shape == target.shape and not preds.is_floating_point():
        checked.append(("preds", preds))
    for name, values in checked:
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            continue
        kept = values if counted is None else values[counted]
        outside = kept[(kept < 0) | (kept >= classes)]
        if outside.numel():
            found = ", ".join(str(value) for value in torch.unique(outside)[:5].tolist())
            ignored = "" if ignore_index is None else f", apart from ignore_index={ignore_index}"
            return (
                f"`{name}` holds the label(s) {found} ({outside.numel()} of them): a metric with"
                f" num_classes={classes} counts only labels 0 to {classes - 1}{ignored}. Check that the labels"
                " start at 0 and that `num_classes` counts every class (a background or void class included),"
                " or pass the value that marks positions to skip as `ignore_index`."
            )
    return None


@functools.cache
def _checks() -> dict[Any, tuple[str, Callable[..., None]]]:
    # {update function: (task, torchmetrics' validation of that update's tensors, called with the metric)};
    # the same functions and arguments as the updates call them (torchmetrics 1.x)
    import importlib

    from torchmetrics import classification as c

    # the modules (the package's names `stat_scores`, ... are its functions)
    ss, cm, pr = (
        importlib.import_module(f"torchmetrics.functional.classification.{name}")
        for name in ("stat_scores", "confusion_matrix", "precision_recall_curve")
    )

    return {
        c.MulticlassStatScores.update: (
            "multiclass",
            lambda m, p, t: ss._multiclass_stat_scores_tensor_validation(
                p, t, m.num_classes, m.multidim_average, m.ignore_index
            ),
        ),
        c.MulticlassConfusionMatrix.update: (
            "multiclass",
            lambda m, p, t: cm._multiclass_confusion_matrix_tensor_validation(p, t, m.num_classes, m.ignore_index),
        ),
        c.MulticlassPrecisionRecallCurve.update: (
            "multiclass curve",
            lambda m, p, t: pr._multiclass_precision_recall_curve_tensor_validation(
                p, t, m.num_classes, m.ignore_index
            ),
        ),
        c.BinaryStatScores.update: (
            "binary",
            lambda m, p, t: ss._binary_stat_scores_tensor_validation(p, t, m.multidim_average, m.ignore_index),
        ),
        c.BinaryConfusionMatrix.update: (
            "binary",
            lambda m, p, t: cm._binary_confusion_matrix_tensor_validation(p, t, m.ignore_index),
        ),
        c.BinaryPrecisionRecallCurve.update: (
            "binary curve",
            lambda m, p, t: pr._binary_precision_recall_curve_tensor_validation(p, t, m.ignore_index),
        ),
        c.MultilabelStatScores.update: (
            "multilabel",
            lambda m, p, t: ss._multilabel_stat_scores_tensor_validation(
                p, t, m.num_labels, m.multidim_average, m.ignore_index
            ),
        ),
        c.MultilabelConfusionMatrix.update: (
            "multilabel",
            lambda m, p, t: cm._multilabel_confusion_matrix_tensor_validation(p, t, m.num_labels, m.ignore_index),
        ),
        c.MultilabelPrecisionRecallCurve.update: (
            "multilabel curve",
            lambda m, p, t: pr._multilabel_precision_recall_curve_tensor_validation(p, t, m.num_labels, m.ignore_index),
        ),
    }


def checks_inputs(metric: Metric) -> bool:
    """Whether `checked_update` checks ``metric``'s inputs itself.

    True for a torchmetrics classification update it knows (stat scores, confusion matrices,
    precision-recall curves and the metrics built on them; binary, multiclass and multilabel) on a metric
    whose ``validate_args`` is on (some torchmetrics classes turn it off themselves: ``BinaryAUROC``).
    """
    return bool(getattr(metric, "validate_args", False)) and type(metric).update in _checks()


def plainly_good(metric: Metric, preds: Tensor, target: Tensor) -> bool:
    """Whether ``(preds, target)`` are plainly good inputs of ``metric``, told by cheap exact reductions.

    Plainly good: torchmetrics' validation accepts them and every counted label is in range, as shapes,
    dtypes and one ``aminmax`` of the labels show.

    ``False`` says only "not plainly": torchmetrics' own validation decides (see `checked_update`).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> plainly_good(MulticlassAccuracy(3), torch.randn(4, 3), torch.tensor([0, 1, 2, 1]))
        True
        >>> plainly_good(MulticlassAccuracy(3), torch.randn(4, 3), torch.tensor([0, 1, 3, 1]))
        False
    """
    task, _ = _checks()[type(metric).update]
    kind, _, curve = task.partition(" ")
    if kind == "multiclass":
        return _multiclass_plainly_good(metric, preds, target, bool(curve))
    labels = getattr(metric, "num_labels", None) if kind == "multilabel" else None
    return _binary_plainly_good(metric, preds, target, bool(curve), labels)


def checked_update(
    metric: Metric,
    preds: Any,
    target: Any,
    update: Callable[[Any, Any], None],
    counts: ConfusionCounts | None = None,
) -> None:
    """``update(preds, target)``, an update of ``metric``, paying torchmetrics' validation only where needed.

    Plainly good inputs (`plainly_good`) are fed with ``metric.validate_args`` off for the update. Others
    are validated by torchmetrics itself (its error and message), and a multiclass metric's counted labels
    checked exactly (`InvalidLabels`), before the update runs as torchmetrics runs it. A metric built with
    ``validate_args=False``, or one whose update is not a known classification update, is updated as is.
    Where ``counts`` (the block's `ConfusionCounts`) serves ``metric`` and the inputs are plainly good,
    the update takes its counts from them.

    Raises:
        InvalidLabels: labels outside ``0 .. num_classes - 1`` that torchmetrics' check lets through.
        Exception: what torchmetrics' validation or the update raises.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> metric = MulticlassAccuracy(3)
        >>> checked_update(metric, torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), metric.update)
        >>> checked_update(metric, torch.randn(4, 3), torch.tensor([0, 1, 3, 1]), metric.update)
        Traceback (most recent call last):
        ...
        lightning_metrics_base._internals.torchmetrics.InvalidLabels: `target` holds the label(s) 3 (1 of them): ...
    """
    if not (isinstance(preds, Tensor) and isinstance(target, Tensor) and checks_inputs(metric)):
        update(preds, target)
        return
    if plainly_good(metric, preds, target):
        attributes = metric.__dict__  # a plain attribute: written where `setattr` would write it, for less
        attributes["validate_args"] = False
        lent = counts.lent_to(metric) if counts is not None and counts.serves(metric) else contextlib.nullcontext()
        try:
            with lent:
                update(preds, target)
        finally:
            attributes["validate_args"] = True
        return
    task, validate = _checks()[type(metric).update]
    problem = _out_of_range_labels(metric, preds, target) if task.startswith("multiclass") else None
    try:
        validate(metric, preds, target)
    except Exception as err:
        if problem is None:
            raise
        raise InvalidLabels(f"{_sentence(err)} {problem}") from err  # torchmetrics' message, and what is wrong
    if problem is not None:
        raise InvalidLabels(problem)
    update(preds, target)


def _sentence(err: Exception) -> str:
    text = str(err).rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


# --- One sort per class for exact curves ---------------------------------------------------------------------

SHARED_CURVE_BYTES = 64 * 2**20
"""The most bytes `shared_curves` holds (the curves and the inputs they were computed from); beyond it,
curves are computed as torchmetrics computes them."""


@contextlib.contextmanager
def shared_curves(max_bytes: int = SHARED_CURVE_BYTES) -> Iterator[None]:
    """While open, each exact curve is sorted once for every metric that computes it from equal inputs.

    Every exact ROC and precision-recall curve of torchmetrics (AUROC, average precision, ROC, PR curve,
    and the metrics at a fixed recall, precision, ...; binary, per class and per label) is computed by
    ``_binary_clf_curve(preds, target, pos_label=...)`` (``torchmetrics.functional.classification``'s
    ``precision_recall_curve`` and ``roc`` modules, torchmetrics 1.x): one sort of the scores. Several
    metrics of one compute group compute the same curves from the same state: AUROC and average
    precision sort every class's scores twice. Here a curve is kept, with its inputs, and handed on
    to a later call whose inputs are equal (``torch.equal``, same dtypes, no sample weights): the same
    function of the same values, so every result is identical to the metric's own compute.
    torchmetrics' readers of a curve build new tensors from it; one that changed a curve in place
    would move its version counter, and that curve would be computed again.

    Examples:
        >>> from torchmetrics.classification import MulticlassAUROC, MulticlassAveragePrecision
        >>> auroc, ap = MulticlassAUROC(3), MulticlassAveragePrecision(3)
        >>> scores, labels = torch.randn(20, 3).softmax(1), torch.arange(20) % 3
        >>> auroc.update(scores, labels); ap.update(scores, labels)
        >>> with shared_curves():
        ...     shared = auroc.compute(), ap.compute()
        >>> torch.equal(shared[0], auroc.compute()) and torch.equal(shared[1], ap.compute())
        True
    """
    import importlib

    modules = [
        importlib.import_module(f"torchmetrics.functional.classification.{name}")
        for name in ("precision_recall_curve", "roc")
    ]
    compute = modules[0]._binary_clf_curve  # the same function in both
    kept: dict[tuple[Any, ...], list[tuple[Tensor, Tensor, tuple[Tensor, ...], list[int] | None]]] = {}
    held = 0

    def curve(preds: Tensor, target: Tensor, sample_weights: Any = None, pos_label: int = 1) -> Any:
        nonlocal held
        if sample_weights is not None or not isinstance(preds, Tensor) or not isinstance(target, Tensor):
            return compute(preds, target, sample_weights, pos_label)
        key = (pos_label, preds.shape, preds.dtype, preds.device, target.shape, target.dtype)
        for seen_preds, seen_target, result, versions in kept.get(key, ()):
            # Handed on as computed, unless its reader changed it in place (its version moved); tensors
            # made under `torch.inference_mode` count no versions: a copy of them is handed on instead.
            if versions is not None and _versions(result) != versions:
                continue
            if torch.equal(seen_preds, preds) and torch.equal(seen_target, target):
                return result if versions is not None else tuple(tensor.clone() for tensor in result)
        result = compute(preds, target, sample_weights, pos_label)
        size = sum(_nbytes(tensor) for tensor in (preds, target, *result))
        if held + size <= max_bytes:
            versions = _versions(result)
            stored = result if versions is not None else tuple(tensor.clone() for tensor in result)
            kept.setdefault(key, []).append((preds, target, stored, versions))
            held += size
        return result

    with _lent([(vars(module), "_binary_clf_curve", curve) for module in modules]):  # looked up per call
        yield


@contextlib.contextmanager
def _lent(places: Sequence[tuple[MutableMapping[str, Any], str, Any]]) -> Iterator[None]:
    """Within, each ``namespace[name]`` of ``places`` holds the value lent; after, what it held before.

    A namespace is a module's globals (``vars(module)``, or a function's ``__globals__``), where a
    torchmetrics function looks the lent name up on every call.

    Examples:
        >>> namespace = {"f": len}
        >>> with _lent([(namespace, "f", abs)]):
        ...     namespace["f"](-2)
        2
        >>> namespace["f"] is len
        True
    """
    held = [(namespace, name, namespace[name]) for namespace, name, _ in places]
    for namespace, name, value in places:
        namespace[name] = value
    try:
        yield
    finally:
        for namespace, name, value in reversed(held):
            namespace[name] = value


def _nbytes(tensor: Tensor) -> int:
    return tensor.element_size() * tensor.nelement()


def _versions(tensors: tuple[Tensor, ...]) -> list[int] | None:
    # each tensor's version counter (``Tensor._version``, torch 1.x and 2.x): an in-place change moves it;
    # `None` for inference tensors, which count none
    if any(tensor.is_inference() for tensor in tensors):
        return None
    return [tensor._version for tensor in tensors]


# --- One count per block for the metrics of one confusion matrix ----------------------------------------------


def _confusion_kind(metric: Metric) -> tuple[Any, ...] | None:
    # What a metric of one confusion matrix counts, as a key: two metrics with equal keys count the same
    # matrix of the same inputs. `None` for any other metric (its own update counts).
    from torchmetrics import classification as c

    update = type(metric).update
    settings: Any = metric
    if getattr(settings, "multidim_average", "global") != "global":
        return None
    if update is c.MulticlassStatScores.update or update is c.MulticlassConfusionMatrix.update:
        if getattr(settings, "top_k", 1) != 1 or getattr(settings, "num_classes", None) is None:
            return None
        return ("multiclass", settings.num_classes, settings.ignore_index)
    if update is c.BinaryStatScores.update or update is c.BinaryConfusionMatrix.update:
        # the two read probabilities apart: stat scores decide on a sigmoid over every prediction, the
        # confusion matrix over those it keeps (the ignored targets' dropped first)
        reading = "stat scores" if update is c.BinaryStatScores.update else "confusion matrix"
        return ("binary", float(settings.threshold), settings.ignore_index, reading)
    if update is c.MultilabelStatScores.update or update is c.MultilabelConfusionMatrix.update:
        return ("multilabel", settings.num_labels, float(settings.threshold), settings.ignore_index)
    return None


def counts_from_confusion(metric: Metric) -> bool:
    """Whether ``metric``'s update counts one confusion matrix (or per-label 2x2 counts), and only that.

    Stat scores (accuracy, precision, recall, F-beta, specificity, stat scores, ...; multiclass with
    ``top_k=1``) with ``multidim_average="global"``, and the confusion matrix family (confusion matrix,
    Jaccard index, Cohen's kappa, MCC), binary, multiclass and multilabel, each with torchmetrics' own
    ``update``: every state they add is an exact function of one ``bincount`` (torchmetrics 1.x).
    """
    return _confusion_kind(metric) is not None


class ConfusionCounts:
    """The confusion counts of one fed block, counted once and lent to every update that would count them.

    While lent (`lent_to`), the counting step of torchmetrics' stat scores and confusion matrix updates
    (``_multiclass_stat_scores_update``, ``_binary_confusion_matrix_update``, ...: looked up in the
    globals of their classes' ``update``) takes its counts from the block's one ``bincount`` per kind
    of count (task, classes or labels, threshold, ``ignore_index``): a multiclass confusion matrix,
    binary 2x2 counts or multilabel 2x2 counts per label, on the block formatted as torchmetrics formats
    it. tp, fp, tn and fn are the matrix's diagonal and margins (their micro sums), computed as
    torchmetrics computes them, so the states come out identical (``torch.equal``, same dtypes). The
    rest of each update (its formatting, its bookkeeping, ``_update_state``) is torchmetrics' own.
    Lent only for plainly good inputs (`checked_update`): labels in range.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
        >>> preds, target = torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1, 1, 2])
        >>> counts, accuracy, jaccard = ConfusionCounts(preds, target), MulticlassAccuracy(3), MulticlassJaccardIndex(3)
        >>> for metric in (accuracy, jaccard):
        ...     with counts.lent_to(metric):
        ...         metric.update(preds, target)
        >>> round(float(accuracy.compute()), 4), round(float(jaccard.compute()), 4), counts.counted
        (0.8333, 0.6667, 1)
    """

    def __init__(self, preds: Tensor, target: Tensor) -> None:
        self.preds, self.target = preds, target
        self._matrices: dict[tuple[Any, ...], Tensor] = {}

    @property
    def counted(self) -> int:
        """How many confusion matrices were counted (one per kind of count asked for)."""
        return len(self._matrices)

    def serves(self, metric: Metric) -> bool:
        """Whether ``metric`` can take its counts from this block: its counts are one of the block's."""
        return self.preds.shape == self.target.shape and counts_from_confusion(metric)

    def key(self, metric: Metric) -> tuple[Any, ...]:
        """The kind of count ``metric`` takes.

        Binary stat scores and confusion matrices share one where their readings of the predictions
        cannot differ (no ``ignore_index``, or no float predictions).
        """
        kind = _confusion_kind(metric)
        assert kind is not None
        if kind[0] == "binary" and (kind[2] is None or not self.preds.is_floating_point()):
            return kind[:3]
        return kind

    def matrix(self, key: tuple[Any, ...]) -> Tensor:
        """The counts of ``key``'s kind, indexed ``[target, prediction]``, ignored targets left out.

        ``(C, C)`` multiclass, ``(2, 2)`` binary, ``(L, 2, 2)`` multilabel.
        """
        if key not in self._matrices:
            self._matrices[key] = _count(key, self.preds, self.target)
        return self._matrices[key]

    @contextlib.contextmanager
    def lent_to(self, metric: Metric) -> Iterator[None]:
        """Within, ``metric``'s own update (of this block) counts nothing: it takes the block's counts."""
        from torchmetrics import classification as c

        key = self.key(metric)
        size = self.preds.numel()

        def multiclass_stat_scores(
            preds: Tensor,
            target: Tensor,
            num_classes: int,
            top_k: int = 1,
            average: str | None = "macro",
            multidim_average: str = "global",
            ignore_index: int | None = None,
        ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            if top_k != 1 or multidim_average != "global" or preds.numel() != size:
                return originals[0](preds, target, num_classes, top_k, average, multidim_average, ignore_index)  # type: ignore[no-any-return]
            matrix = self.matrix(key)
            if average == "micro":
                total, tp = matrix.sum(), matrix.diagonal().sum()
                fp, fn = total - tp, total - tp
                return tp, fp, num_classes * total - (fp + fn + tp), fn
            tp = matrix.diag()
            fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
            return tp, fp, matrix.sum() - (fp + fn + tp), fn

        def two_by_two(preds: Tensor, target: Tensor, multidim_average: str = "global") -> tuple[Tensor, ...]:
            # binary (2, 2) or multilabel (L, 2, 2) counts as stat scores' tp, fp, tn, fn (squeezed as there)
            if multidim_average != "global" or preds.numel() != size:
                original = originals[2] if key[0] == "binary" else originals[4]
                return original(preds, target, multidim_average)  # type: ignore[no-any-return]
            counts = self.matrix(key)
            tp, fp, tn, fn = (counts[..., 1, 1], counts[..., 0, 1], counts[..., 0, 0], counts[..., 1, 0])
            return tp.squeeze(), fp.squeeze(), tn.squeeze(), fn.squeeze()

        def confusion(preds: Tensor, target: Tensor, *args: Any) -> Tensor:
            return self.matrix(key)

        places: list[tuple[Any, str, Callable[..., Any]]] = [
            (c.MulticlassStatScores, "_multiclass_stat_scores_update", multiclass_stat_scores),
            (c.MulticlassConfusionMatrix, "_multiclass_confusion_matrix_update", confusion),
            (c.BinaryStatScores, "_binary_stat_scores_update", two_by_two),
            (c.BinaryConfusionMatrix, "_binary_confusion_matrix_update", confusion),
            (c.MultilabelStatScores, "_multilabel_stat_scores_update", two_by_two),
            (c.MultilabelConfusionMatrix, "_multilabel_confusion_matrix_update", confusion),
        ]
        originals = [cls.update.__globals__[name] for cls, name, _ in places]
        with _lent([(cls.update.__globals__, name, lent) for cls, name, lent in places]):
            yield


def _count(key: tuple[Any, ...], preds: Tensor, target: Tensor) -> Tensor:
    # One `bincount` of a block, formatted as the metrics of `key` format it (torchmetrics 1.x).
    import importlib

    from torchmetrics.utilities.data import _bincount

    task = key[0]
    if task == "multiclass":
        classes, ignore_index = key[1], key[2]
        preds, target = preds.flatten(), target.flatten()
        if ignore_index is not None:
            kept = target != ignore_index
            preds, target = preds[kept], target[kept]
        pairs = target.to(torch.long) * classes + preds.to(torch.long)
        return _bincount(pairs, minlength=classes**2).reshape(classes, classes)
    matrices = importlib.import_module("torchmetrics.functional.classification.confusion_matrix")
    if task == "binary":
        threshold, ignore_index = key[1], key[2]
        if len(key) > 3 and key[3] == "stat scores":
            scores = importlib.import_module("torchmetrics.functional.classification.stat_scores")
            preds, target = scores._binary_stat_scores_format(preds, target, threshold, ignore_index)
            kept = target != -1
            preds, target = preds[kept], target[kept]
        else:
            preds, target = matrices._binary_confusion_matrix_format(preds, target, threshold, ignore_index)
        return _bincount((target * 2 + preds).to(torch.long), minlength=4).reshape(2, 2)
    labels, threshold, ignore_index = key[1], key[2], key[3]
    preds, target = matrices._multilabel_confusion_matrix_format(preds, target, labels, threshold, ignore_index)
    pairs = ((2 * target + preds) + 4 * torch.arange(labels, device=preds.device)).flatten()
    return _bincount(pairs[pairs >= 0], minlength=4 * labels).reshape(labels, 2, 2)


# --- What a metric's update reads, and how it reads float predictions -----------------------------------------


@functools.cache
def settings_read(cls: type) -> frozenset[str] | None:
    """The ``self`` attributes that ``cls.update`` reads, also in the methods it calls; ``None`` if unreadable.

    Read from the source of torchmetrics' (or a subclass's) ``update`` and of the methods it calls on
    ``self`` (``inspect.getsource``), leaving out `Metric`'s own bookkeeping (``add_state``,
    ``_filter_kwargs``, ``reset``), the same for every metric.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> {"num_classes", "top_k", "ignore_index"} <= settings_read(MulticlassAccuracy)
        True
    """
    read: set[str] = set()
    todo, seen = ["update"], set()
    while todo:
        method = todo.pop()
        seen.add(method)
        function = inspect.getattr_static(cls, method, None)
        function = getattr(function, "__func__", function)
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError):
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if callable(inspect.getattr_static(cls, node.attr, None)):
                    if node.attr not in seen and node.attr not in _METRIC_MACHINERY:
                        todo.append(node.attr)
                else:
                    read.add(node.attr)
    return frozenset(read)


# Metric's own bookkeeping, the same for every metric: never a setting that tells two updates apart.
_METRIC_MACHINERY = frozenset({"add_state", "_filter_kwargs", "reset"})

# Multiclass metrics that read float predictions as probabilities only when every value of the call
# lies in [0, 1] (and apply a softmax otherwise); other multiclass metrics take an argmax.
_SOFTMAX_FAMILY = (
    "ROC",
    "AUROC",
    "AveragePrecision",
    "PrecisionRecallCurve",
    "AtFixedRecall",
    "AtFixedPrecision",
    "AtSensitivity",
    "AtSpecificity",
    "LogAUC",
    "CalibrationError",
    "HingeLoss",
    "EER",
)


def probability_reading(metric: Metric) -> Literal["sigmoid", "softmax"] | None:
    """How a torchmetrics classification metric reads float predictions per call: ``"sigmoid"``, ``"softmax"``.

    torchmetrics' binary and multilabel metrics apply a sigmoid where a value of the call lies outside
    [0, 1]; its multiclass curves, calibration error and hinge loss a softmax. Told by the class's
    module (``torchmetrics.classification``) and name, as torchmetrics names its families (1.x);
    ``None`` for any other metric.

    Examples:
        >>> from torchmetrics.classification import BinaryAccuracy, MulticlassAUROC, MulticlassAccuracy
        >>> probability_reading(BinaryAccuracy()), probability_reading(MulticlassAUROC(3))
        ('sigmoid', 'softmax')
        >>> probability_reading(MulticlassAccuracy(3))
    """
    cls = type(metric)
    if not cls.__module__.startswith("torchmetrics.classification"):
        return None
    name = cls.__name__
    if name.startswith(("Binary", "Multilabel")):
        return "sigmoid"
    if name.startswith("Multiclass") and any(part in name for part in _SOFTMAX_FAMILY):
        return "softmax"
    return None
