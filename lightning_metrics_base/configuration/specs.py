"""Metric specs: build a `Metric` from a config dict, and write a `Metric` back as one.

Two spec forms are read: LightningCLI / jsonargparse's ``{"class_path": ..., "init_args": {...}}`` and
Hydra's ``{"_target_": ..., **kwargs}``. A class path without a dot is looked up in torchmetrics; a
misspelt one gets the closest torchmetrics class names. `metric_to_spec` goes the other way, so that
metric objects saved as hyperparameters come back from a checkpoint as the same metrics.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.wrappers import MetricTracker

from lightning_metrics_base._internals.torchmetrics import RUNTIME_ATTRIBUTE_PREFIXES, state_defaults

# torchmetrics subpackages searched, in order, for a bare class name such as "MulticlassAccuracy".
_TORCHMETRICS_SUBPACKAGES = (
    "classification",
    "regression",
    "aggregation",
    "wrappers",
    "retrieval",
    "nominal",
    "clustering",
    "segmentation",
    "image",
    "text",
    "audio",
    "detection",
    "shape",
    "multimodal",
    "video",
)
_SPEC_KEYS = ("class_path", "_target_")
# Hydra's own instantiation keys: never constructor arguments.
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
# `Metric.__init__` keyword arguments every metric accepts through `**kwargs`, with their defaults.
_BASE_KWARGS = {
    "compute_on_cpu": False,
    "dist_sync_on_step": False,
    "sync_on_compute": True,
    "compute_with_cache": True,
}
_PLAIN = (bool, int, float, str, type(None))
# The keyword arguments every `Metric.__init__` takes through `**kwargs`.
_METRIC_KWARGS = (*_BASE_KWARGS, "process_group", "dist_sync_fn", "distributed_available_fn")


def is_spec(value: object) -> bool:
    """Tell whether ``value`` is a metric spec (a dict with ``class_path`` or ``_target_``).

    Examples:
        >>> is_spec({"class_path": "MeanSquaredError"}), is_spec({"acc": 1})
        (True, False)
    """
    return isinstance(value, Mapping) and any(key in value for key in _SPEC_KEYS)


def instantiate_spec(spec: Mapping[str, Any], key: str = "metric") -> Metric:
    """Build a metric from a LightningCLI (``class_path``) or Hydra (``_target_``) spec.

    Values of ``init_args`` (or Hydra kwargs) that are specs themselves are built first, so
    wrappers such as ``ClasswiseWrapper`` can be configured in YAML.

    Args:
        spec: ``{"class_path": "pkg.Class", "init_args": {...}}`` or ``{"_target_": "pkg.Class", **kwargs}``.
        key: where the spec sits in the config, quoted in errors.

    Returns:
        A new metric instance.

    Raises:
        TypeError: the target is not a `Metric` subclass, or the arguments do not fit it.
        ValueError: the spec mixes forms or has unknown keys, or the metric rejects an argument value.
        ImportError: the target cannot be imported (a bare name that is not in torchmetrics gets
            the closest torchmetrics class names).

    Examples:
        >>> instantiate_spec({"_target_": "torchmetrics.MeanAbsoluteError"})
        MeanAbsoluteError()
    """
    if "class_path" in spec and "_target_" in spec:
        raise ValueError(f"{key}: a spec has either `class_path` or `_target_`, not both.")
    if "class_path" in spec:
        unknown = set(spec) - {"class_path", "init_args", "dict_kwargs"}
        if unknown:
            raise ValueError(
                f"{key}: unexpected spec keys {sorted(unknown)}; a `class_path` spec takes only"
                " `class_path` and `init_args`."
            )
        path = spec["class_path"]
        kwargs = {**(spec.get("init_args") or {}), **(spec.get("dict_kwargs") or {})}
    else:
        path = spec["_target_"]
        kwargs = {name: value for name, value in spec.items() if name not in _HYDRA_KEYS}
    if not isinstance(path, str) or not path:
        raise TypeError(f"{key}: the class path must be a non-empty string, but got {path!r}.")
    cls = _import_metric_class(path, key)
    kwargs = {name: _build_argument(value, f"{key}.{name}") for name, value in kwargs.items()}
    _check_misspelt_arguments(cls, kwargs, key)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"{key}: cannot build {cls.__name__} with arguments {kwargs!r}: {err}{_hint(cls, kwargs)}"
        ) from err
    except ValueError as err:
        raise ValueError(f"{key}: {cls.__name__} rejected arguments {kwargs!r}: {err}{_hint(cls, kwargs)}") from err


def metric_to_spec(metric: Metric) -> dict[str, Any] | None:
    """Write ``metric`` as a ``class_path`` spec that builds an equal metric, or return ``None``.

    The constructor arguments are read back from the metric's attributes (torchmetrics metrics keep
    them under their own names); nested metrics (wrappers) become nested specs. The spec is only
    returned when building it gives a metric configured exactly like ``metric``.

    Args:
        metric: the metric to describe.

    Returns:
        The spec, or ``None`` when the constructor arguments cannot be recovered.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> metric_to_spec(MulticlassAccuracy(num_classes=3, average="micro"))  # doctest: +NORMALIZE_WHITESPACE
        {'class_path': 'torchmetrics.classification.accuracy.MulticlassAccuracy',
         'init_args': {'num_classes': 3, 'average': 'micro'}}
    """
    cls = type(metric)
    if "<locals>" in cls.__qualname__:
        return None
    init_args: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        found = _stored_argument(metric, name)
        if found is _UNRECOVERABLE:
            if param.default is param.empty:
                return None
            continue
        value = _plain_argument(found)
        if value is _UNRECOVERABLE:
            return None
        if not _same(value, param.default):
            init_args[name] = value
    for name, default in _BASE_KWARGS.items():
        if getattr(metric, name, default) != default:
            init_args[name] = getattr(metric, name)
    spec = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}
    try:
        rebuilt = instantiate_spec(spec)
    except Exception:
        return None
    return spec if _fingerprint(rebuilt) == _fingerprint(metric) else None


_UNRECOVERABLE = object()


def _stored_argument(metric: Metric, name: str) -> Any:
    # torchmetrics keeps a constructor argument as an attribute, a buffer or a child module of the
    # same name, or as a private attribute `_name`.
    for key in (name, f"_{name}"):
        for store in (vars(metric), dict(metric.named_children()), dict(metric.named_buffers(recurse=False))):
            if key in store and key not in state_defaults(metric):
                return store[key]
    return _UNRECOVERABLE


def _plain_argument(value: Any) -> Any:
    if isinstance(value, Metric):
        spec = metric_to_spec(value)
        return _UNRECOVERABLE if spec is None else spec
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.Tensor) and value.ndim <= 1:
        return value.tolist()
    if isinstance(value, (list, tuple)):
        items = [_plain_argument(item) for item in value]
        return _UNRECOVERABLE if any(item is _UNRECOVERABLE for item in items) else items
    return _UNRECOVERABLE


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:
        return False


def _fingerprint(metric: Metric) -> dict[str, Any]:
    # How a metric was configured: its plain attributes, and its child metrics', recursively.
    plain = {
        name: value
        for name, value in vars(metric).items()
        if not name.startswith(RUNTIME_ATTRIBUTE_PREFIXES) and isinstance(value, (*_PLAIN, tuple, list))
    }
    buffers = {name: tensor.tolist() for name, tensor in metric.named_buffers(recurse=False)}
    children = {name: _fingerprint(child) for name, child in metric.named_children() if isinstance(child, Metric)}
    return {"class": type(metric), "plain": plain, "buffers": buffers, "children": children}


def _build_argument(value: Any, key: str) -> Any:
    if is_spec(value):
        return instantiate_spec(value, key)
    if isinstance(value, list):
        return [_build_argument(item, f"{key}[{index}]") for index, item in enumerate(value)]
    return value


def _check_misspelt_arguments(cls: type[Metric], kwargs: Mapping[str, Any], key: str) -> None:
    # An argument that is no parameter of the class, nor a `Metric` keyword, but close to a parameter
    # is a typo: refused here with the same error whatever torchmetrics would have made of it.
    parameters = inspect.signature(cls).parameters
    for name in kwargs:
        if name not in parameters and name not in _METRIC_KWARGS and _hint(cls, {name: None}):
            raise ValueError(f"{key}: {cls.__name__} has no argument {name!r}{_hint(cls, {name: None})}")


def _hint(cls: type[Metric], kwargs: Mapping[str, Any]) -> str:
    known = [name for name in inspect.signature(cls).parameters if name not in ("args", "kwargs")]
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                return f" (did you mean {close[0]!r} instead of {name!r}?)"
    return ""


def tracker_refusal(key: str) -> str:
    """Why ``MetricTracker``, the one torchmetrics wrapper that is not a `Metric`, is refused, and what to do instead.

    Examples:
        >>> tracker_refusal("metrics['acc']")[:52]
        "metrics['acc']: MetricTracker is not supported here:"
    """
    return (
        f"{key}: MetricTracker is not supported here: it keeps a copy of its metric per `increment()`,"
        " which you would call yourself, while the module already computes, logs and resets every metric"
        " each epoch. Pass the metric it wraps instead, and name it in `track_best` for its best value so far."
    )


def _import_metric_class(path: str, key: str) -> type[Metric]:
    if path == MetricTracker.__name__:
        raise TypeError(tracker_refusal(key))
    if "." in path:
        module_name, _, class_name = path.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ImportError(f"{key}: cannot import {path!r}: {err}") from err
    else:
        obj = _torchmetrics_classes().get(path)
        if obj is None:
            close = difflib.get_close_matches(path, list(_torchmetrics_classes()), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ImportError(
                f"{key}: no metric class {path!r} in torchmetrics.{hint}"
                f" Otherwise give the full path, e.g. 'mypackage.metrics.{path}'."
            )
    if isinstance(obj, type) and issubclass(obj, MetricTracker):
        raise TypeError(tracker_refusal(key))
    if not (isinstance(obj, type) and issubclass(obj, Metric)):
        raise TypeError(f"{key}: {path!r} is not a torchmetrics Metric class.")
    return obj


@cache
def _torchmetrics_classes() -> dict[str, type[Metric]]:
    found: dict[str, type[Metric]] = {}
    for module_name in ("torchmetrics", *(f"torchmetrics.{sub}" for sub in _TORCHMETRICS_SUBPACKAGES)):
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a subpackage whose optional dependencies are missing
            continue
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, Metric):
                found.setdefault(name, obj)
    return found


def config_to_specs(value: Any, key: str = "metrics") -> tuple[Any, list[str]]:
    """Replace every `Metric` object inside a metrics config by its spec, so the config saves as plain data.

    Args:
        value: a metrics config (a metric, a collection, or nested dicts of them and of specs).
        key: where ``value`` sits, used to name what cannot be converted.

    Returns:
        ``(converted, unrecoverable)``: the config with specs in place of the objects that could be
        written as specs, and the keys of those that could not (they are kept as objects).

    Examples:
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> config_to_specs({"mae": MeanAbsoluteError()})
        ({'mae': {'class_path': 'torchmetrics.regression.mae.MeanAbsoluteError', 'init_args': {}}}, [])
    """
    if isinstance(value, MetricCollection):
        value = dict(value.items(keep_base=True, copy_state=False))
    if isinstance(value, Metric):
        spec = metric_to_spec(value)
        return (value, [key]) if spec is None else (spec, [])
    if isinstance(value, Mapping) and not is_spec(value):
        converted: dict[Any, Any] = {}
        unrecoverable: list[str] = []
        for name, item in value.items():
            converted[name], missed = config_to_specs(item, f"{key}[{name!r}]")
            unrecoverable += missed
        return converted, unrecoverable
    return value, []


def holds_metric_objects(value: object) -> bool:
    """Tell whether ``value`` is, or is a dict holding, `Metric` objects (rather than plain specs).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> holds_metric_objects({"acc": MulticlassAccuracy(3)}), holds_metric_objects({"acc": {"_target_": "x"}})
        (True, False)
    """
    if isinstance(value, (Metric, MetricCollection)):
        return True
    return isinstance(value, Mapping) and any(holds_metric_objects(item) for item in value.values())


def unrecoverable_message(key: str, missed: list[str]) -> str:
    """The warning for metrics in hyperparameter ``key`` that cannot be written as specs: what to do instead."""
    return (
        f"Hyperparameter {key!r}: cannot write {', '.join(missed)} as a spec (its constructor arguments"
        " cannot be read back), so checkpoints pickle the object and `load_from_checkpoint` cannot"
        " restore it with `torch.load(weights_only=True)`. Pass it as a spec dict"
        " ({'class_path': 'package.module.Metric', 'init_args': {...}}) or call"
        f" `self.save_hyperparameters(ignore=[{key!r}])`."
    )


def hparams_as_specs(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The hyperparameters that hold `Metric` objects, rewritten with specs, and a warning per unconvertible one.

    Examples:
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> converted, warnings = hparams_as_specs({"metrics": {"mae": MeanAbsoluteError()}, "lr": 0.1})
        >>> list(converted), converted["metrics"]["mae"]["class_path"], warnings
        (['metrics'], 'torchmetrics.regression.mae.MeanAbsoluteError', [])
    """
    converted: dict[str, Any] = {}
    messages: list[str] = []
    for key, value in hparams.items():
        if holds_metric_objects(value):
            converted[key], missed = config_to_specs(value, key)
            if missed:
                messages.append(unrecoverable_message(key, missed))
    return converted, messages
