"""Turn a metrics config (objects, collections, specs, per-stage dicts) into one collection per stage.

Every public metric object is deep-copied here, so no two stages and no two modules ever share
metric state. All validation happens in this module, before any training starts, and every error
names the offending key.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from torchmetrics import Metric, MetricCollection

STAGES: tuple[str, ...] = ("train", "val", "test")
"""The stages a module can hold metrics for."""

MetricsConfig = Mapping[str, Any] | MetricCollection | None
"""What `build_metrics` accepts: a flat dict, a collection, a per-stage dict, or ``None``."""

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


def build_metrics(
    metrics: MetricsConfig,
    stages: Sequence[str] = STAGES,
) -> dict[str, MetricCollection]:
    """Build one independent `MetricCollection` per stage from a metrics config.

    Args:
        metrics: a flat dict ``{name: Metric or spec}`` or a ``MetricCollection`` (each stage in
            ``stages`` gets its own deep copy), a per-stage dict ``{"train": ..., "val": ...,
            "test": ...}`` whose values are flat dicts or collections (a stage left out gets no
            metrics), or ``None`` (no metrics). A spec is ``{"class_path": ..., "init_args": {...}}``
            or ``{"_target_": ..., **kwargs}``; a class path without a dot is looked up in torchmetrics.
        stages: the stages a flat dict or a collection applies to.

    Returns:
        A dict from stage to its collection; stages without metrics are absent.

    Raises:
        TypeError: a container or value of the wrong type, or a metric class instead of an instance.
        ValueError: an unknown stage, an empty or dotted metric name, or arguments a metric rejects.
        ImportError: a ``class_path`` or ``_target_`` that cannot be imported.

    Example:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> built = build_metrics({
        ...     "acc": MulticlassAccuracy(num_classes=3),
        ...     "f1": {"class_path": "MulticlassF1Score", "init_args": {"num_classes": 3}},
        ... })
        >>> sorted(built), sorted(built["val"].keys())
        (['test', 'train', 'val'], ['acc', 'f1'])
        >>> train, val = built["train"], built["val"]
        >>> train["acc"] is val["acc"]
        False
    """
    stages = _check_stages(stages)
    metrics = _to_container(metrics)
    if metrics is None:
        return {}
    if isinstance(metrics, MetricCollection):
        return {stage: _fresh_collection(metrics, "metrics") for stage in stages}
    if not isinstance(metrics, Mapping):
        raise TypeError(
            "Expected `metrics` to be a dict, a torchmetrics.MetricCollection or None,"
            f" but got {type(metrics).__name__}."
        )
    if _is_per_stage(metrics):
        built: dict[str, MetricCollection] = {}
        for stage, stage_metrics in metrics.items():
            _check_stage_key(stage)
            collection = _build_collection(stage_metrics, f"metrics[{stage!r}]")
            if collection is not None:
                built[stage] = collection
        return built
    template = _build_collection(metrics, "metrics")
    if template is None:
        return {}
    return {stage: _fresh_collection(template, "metrics") for stage in stages}


def fresh_copy(collection: MetricCollection) -> MetricCollection:
    """Return an independent deep copy of ``collection`` with its state reset.

    Example:
        >>> import torch
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> used = MetricCollection({"mae": MeanAbsoluteError()})
        >>> used.update(torch.ones(2), torch.zeros(2))
        >>> fresh_copy(used)["mae"].update_called
        False
    """
    copied = copy.deepcopy(collection)
    copied.reset()
    return copied


def holds_metric_objects(value: object) -> bool:
    """Tell whether ``value`` is, or is a dict holding, `Metric` objects (rather than plain specs).

    Example:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> holds_metric_objects({"acc": MulticlassAccuracy(3)}), holds_metric_objects({"acc": {"_target_": "x"}})
        (True, False)
    """
    if isinstance(value, (Metric, MetricCollection)):
        return True
    return isinstance(value, Mapping) and any(holds_metric_objects(item) for item in value.values())


def is_spec(value: object) -> bool:
    """Tell whether ``value`` is a metric spec (a dict with ``class_path`` or ``_target_``).

    Example:
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
        ImportError: the target cannot be imported.

    Example:
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
        kwargs = {name: value for name, value in spec.items() if name != "_target_"}
    if not isinstance(path, str) or not path:
        raise TypeError(f"{key}: the class path must be a non-empty string, but got {path!r}.")
    cls = _import_metric_class(path, key)
    kwargs = {
        name: instantiate_spec(value, f"{key}.{name}") if is_spec(value) else value for name, value in kwargs.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"{key}: cannot build {cls.__name__} with arguments {kwargs!r}: {err}{_hint(cls, kwargs)}"
        ) from err
    except ValueError as err:
        raise ValueError(f"{key}: {cls.__name__} rejected arguments {kwargs!r}: {err}{_hint(cls, kwargs)}") from err


def _to_container(value: Any) -> Any:
    # OmegaConf containers (a Hydra config) become plain dicts and lists, which metric constructors
    # check for; omegaconf is only consulted when the caller has already imported it.
    omegaconf = sys.modules.get("omegaconf")
    if omegaconf is not None and isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
        return omegaconf.OmegaConf.to_container(value, resolve=True)
    return value


def _hint(cls: type[Metric], kwargs: Mapping[str, Any]) -> str:
    known = [name for name in inspect.signature(cls).parameters if name not in ("args", "kwargs")]
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                return f" (did you mean {close[0]!r} instead of {name!r}?)"
    return ""


def _check_stages(stages: Sequence[str]) -> tuple[str, ...]:
    if isinstance(stages, str) or not isinstance(stages, Sequence):
        raise TypeError(f"Expected `stages` to be a sequence of stage names, but got {stages!r}.")
    for stage in stages:
        _check_stage_key(stage, "stages")
    return tuple(stages)


def _check_stage_key(stage: object, where: str = "metrics") -> None:
    if stage not in STAGES:
        raise ValueError(
            f"{where}: unknown stage {stage!r}; the stages are {', '.join(map(repr, STAGES))}."
            " (A flat metrics dict maps names to Metric objects or specs with `class_path`/`_target_`.)"
        )


def _is_per_stage(metrics: Mapping[str, Any]) -> bool:
    # A flat dict holds metrics or specs; a dict whose values are plain dicts or collections is per stage.
    return any(
        isinstance(value, MetricCollection) or (isinstance(value, Mapping) and not is_spec(value))
        for value in metrics.values()
    )


def _build_collection(metrics: object, key: str) -> MetricCollection | None:
    if metrics is None:
        return None
    if isinstance(metrics, MetricCollection):
        return _fresh_collection(metrics, key)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{key}: expected a dict of metrics or a MetricCollection, but got {type(metrics).__name__}.")
    if not metrics:
        return None
    built: dict[str, Metric | MetricCollection] = {
        name: _build_metric(value, _check_name(name, key)) for name, value in metrics.items()
    }
    return MetricCollection(built)


def _check_name(name: object, key: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{key}: metric names must be non-empty strings, but got {name!r}.")
    if "." in name:
        raise ValueError(f"{key}[{name!r}]: metric names cannot contain '.'; use '_' instead.")
    if hasattr(MetricCollection, name):
        raise ValueError(
            f"{key}[{name!r}]: the name clashes with the MetricCollection attribute {name!r}; choose another name."
        )
    return f"{key}[{name!r}]"


def _build_metric(value: object, key: str) -> Metric:
    if isinstance(value, Metric):
        return copy.deepcopy(value)
    if isinstance(value, type) and issubclass(value, Metric):
        raise TypeError(f"{key}: got the class {value.__name__}, not an instance; write {value.__name__}(...).")
    if is_spec(value):
        return instantiate_spec(value, key)  # type: ignore[arg-type]
    raise TypeError(
        f"{key}: expected a torchmetrics Metric or a spec dict with `class_path` or `_target_`,"
        f" but got {type(value).__name__}: {value!r}."
    )


def _fresh_collection(collection: MetricCollection, key: str) -> MetricCollection:
    for name in collection.keys(keep_base=True):
        _check_name(name, key)
    return fresh_copy(collection)


def _import_metric_class(path: str, key: str) -> type[Metric]:
    if "." in path:
        module_name, _, class_name = path.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ImportError(f"{key}: cannot import {path!r}: {err}") from err
    else:
        obj = _find_in_torchmetrics(path, key)
    if not (isinstance(obj, type) and issubclass(obj, Metric)):
        raise TypeError(f"{key}: {path!r} is not a torchmetrics Metric class.")
    return obj


def _find_in_torchmetrics(name: str, key: str) -> object:
    for module_name in ("torchmetrics", *(f"torchmetrics.{sub}" for sub in _TORCHMETRICS_SUBPACKAGES)):
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a subpackage whose optional dependencies are missing
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(
        f"{key}: no metric class {name!r} in torchmetrics; give the full path, e.g. 'mypackage.metrics.{name}'."
    )
