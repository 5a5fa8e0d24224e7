"""Turn a metrics config (objects, collections, specs, per-stage dicts) into one collection per stage.

Every metric object is deep-copied here, so no two stages and no two modules ever share metric
state. The constructor's checks live here too, before any training starts; every error names the
offending key and says what was expected.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchmetrics import Metric, MetricCollection
from torchmetrics.wrappers import MetricTracker

from lightning_metrics_base.configuration.heads import Heads, fresh_copy
from lightning_metrics_base.configuration.specs import instantiate_spec, is_spec, tracker_refusal
from lightning_metrics_base.lightning_semantics import STAGES as LIGHTNING_STAGES
from lightning_metrics_base.report.naming import LOSS, address
from lightning_metrics_base.report.results import expected_names
from lightning_metrics_base.update.compute_groups import group_by_settings

STAGES: tuple[str, ...] = LIGHTNING_STAGES
"""The stages a module can hold metrics for (Lightning's stages that log)."""

MetricsConfig = Mapping[str, Any] | MetricCollection | None
"""What `build_metrics` accepts: a flat dict, a collection, a per-stage dict, or ``None``."""

OutputMetrics = dict[str, MetricCollection]
"""One stage's metrics of a multi-output model as built: output name → that output's collection."""


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
            Keys are strings; a `str` subclass (a `str` Enum member) is taken as its string value.
        stages: the stages a flat dict or a collection applies to.

    Returns:
        A dict from stage to its collection; stages without metrics are absent.

    Raises:
        TypeError: a container or value of the wrong type, or a metric class instead of an instance.
        ValueError: an unknown stage, an empty or dotted metric name, or arguments a metric rejects.
        ImportError: a ``class_path`` or ``_target_`` that cannot be imported.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> built = build_metrics({
        ...     "acc": MulticlassAccuracy(num_classes=3),
        ...     "f1": {"class_path": "MulticlassF1Score", "init_args": {"num_classes": 3}},
        ... })
        >>> sorted(built), sorted(built["val"].keys())
        (['test', 'train', 'val'], ['acc', 'f1'])
        >>> built["train"]["acc"] is built["val"]["acc"]
        False
    """
    stages = check_stages(stages)
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
            stage = plain_key(stage, "metrics")
            _check_stage_key(stage)
            collection = _build_collection(stage_metrics, f"metrics[{stage!r}]")
            if collection is not None:
                built[stage] = collection
        return built
    template = _build_collection(metrics, "metrics")
    if template is None:
        return {}
    return {stage: fresh_copy(template) for stage in stages}


def build_output_metrics(
    metrics: MetricsConfig, outputs: Sequence[str], stages: Sequence[str] = STAGES
) -> dict[str, OutputMetrics]:
    """Build one collection per stage and output for a multi-output model.

    Args:
        metrics: ``{output: {name: Metric or spec}}`` (each stage in ``stages`` gets its own copy) or
            ``{stage: {output: {...}}}``; an output's value may also be a ``MetricCollection``.
        outputs: the model's outputs (see `check_outputs`).
        stages: the stages a per-output dict applies to.

    Returns:
        ``{stage: {output: collection}}``; stages and outputs without metrics are absent.

    Raises:
        ValueError: a key that is neither an output nor (at the top level) a stage, or a mix of both.
        TypeError: a container or value of the wrong type (see `build_metrics`).

    Examples:
        >>> from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy
        >>> built = build_output_metrics({"cls": {"acc": MulticlassAccuracy(3)}, "big": {"acc": BinaryAccuracy()}},
        ...                              outputs=("cls", "big"))
        >>> sorted(built), sorted(built["val"])
        (['test', 'train', 'val'], ['big', 'cls'])
    """
    stages = check_stages(stages)
    metrics = _to_container(metrics)
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping) or isinstance(metrics, MetricCollection):
        raise TypeError(
            f"With `outputs`, expected `metrics` to be a dict keyed by output, but got {type(metrics).__name__}."
        )
    keys = {plain_key(key, "metrics"): value for key, value in metrics.items()}
    for key in keys:
        if key not in outputs and key not in STAGES:
            raise ValueError(
                f"metrics: {key!r} is neither an output {tuple(outputs)} nor a stage {STAGES};"
                " declare metrics as {output: {name: metric}} or {stage: {output: {name: metric}}}."
            )
    if any(key in STAGES for key in keys):
        if not all(key in STAGES for key in keys):
            raise ValueError(f"metrics: mixes stages and outputs ({sorted(keys)}); use one level or the other.")
        per_stage = {stage: _build_heads(value, outputs, f"metrics[{stage!r}]") for stage, value in keys.items()}
        return {stage: heads for stage, heads in per_stage.items() if heads}
    template = _build_heads(keys, outputs, "metrics")
    return {stage: {output: fresh_copy(collection) for output, collection in template.items()} for stage in stages}


@dataclass(frozen=True)
class Options:
    """The constructor's arguments of `MetricAwareModule` after every check (see `build_options`).

    Attributes:
        collections: ``{stage: Heads}``: one collection per output (one unnamed head without ``outputs``).
        addressed: ``{stage: {address: metric}}``, the names ``prog_bar`` and ``track_best`` may use.
        prog_bar: the names shown in the progress bar.
        track_best: the names whose best validation value is logged.
    """

    collections: dict[str, Heads]
    addressed: dict[str, dict[str, Metric]]
    loss_fn: Callable[[Any, Any], Any] | None
    log_sep: str
    outputs: tuple[str, ...] | None
    buffer_batches: int
    prog_bar: frozenset[str]
    track_best: tuple[str, ...]
    log_figures: frozenset[str]


def build_options(
    metrics: MetricsConfig,
    *,
    stages: Sequence[str],
    loss_fn: object,
    log_sep: object,
    outputs: Sequence[str] | None,
    buffer_batches: object,
    prog_bar: Sequence[str],
    track_best: Sequence[str] | None,
    log_figures: bool | Sequence[str] = True,
) -> Options:
    """Check the constructor's arguments and build the metrics, before any training starts.

    Raises:
        TypeError: a bad ``metrics`` container or value, or a bad option type.
        ValueError: a bad option value, a ``prog_bar``/``track_best`` name that is not a metric
            of the module (``track_best`` takes validation metrics and ``"loss"``), or a ``track_best``
            metric whose result is not one number (``average=None``).
        ImportError: a spec whose class cannot be imported.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> options = build_options({"acc": MulticlassAccuracy(3)}, stages=("val",), loss_fn=None, log_sep="_",
        ...                         outputs=None, buffer_batches=1, prog_bar=("acc",), track_best=("loss",))
        >>> list(options.collections), options.prog_bar, options.track_best
        (['val'], frozenset({'acc'}), ('loss',))
    """
    checked_loss_fn, checked_sep = check_loss_fn(loss_fn), check_log_sep(log_sep)
    checked_outputs = check_outputs(outputs)
    built: Mapping[str, Any] = (
        build_metrics(metrics, stages)
        if checked_outputs is None
        else build_output_metrics(metrics, checked_outputs, stages)
    )
    collections = {stage: Heads.of(stage_metrics) for stage, stage_metrics in built.items()}
    checked_batches = check_buffer_batches(buffer_batches)
    addressed = {stage: addressed_metrics(stage_metrics) for stage, stage_metrics in collections.items()}
    return Options(
        collections=collections,
        addressed=addressed,
        loss_fn=checked_loss_fn,
        log_sep=checked_sep,
        outputs=checked_outputs,
        buffer_batches=checked_batches,
        prog_bar=frozenset(check_names(prog_bar, "prog_bar", {LOSS}.union(*addressed.values()))),
        track_best=check_track_best(track_best, addressed.get("val", {})),
        log_figures=check_log_figures(log_figures),
    )


def check_track_best(names: Sequence[str] | None, val_metrics: Mapping[str, Metric]) -> tuple[str, ...]:
    """Return the ``track_best`` names after checking each can give a best value (``None``: none).

    Raises:
        TypeError: not a sequence of names.
        ValueError: a name that is neither ``"loss"`` nor a validation metric, or a metric whose
            constructor arguments say its result is not one number (one value per class).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> check_track_best(["acc"], {"acc": MulticlassAccuracy(3, average=None)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: track_best: 'acc' gives 3 values (acc/0, acc/1, acc/2), not one number; ...
    """
    checked = check_names(() if names is None else names, "track_best", {LOSS, *val_metrics})
    for name in checked:
        if name in val_metrics:
            produced = expected_names(name, val_metrics[name], "/")
            if produced != [name]:
                raise ValueError(
                    f"track_best: {name!r} gives {len(produced)} values ({', '.join(produced)}), not one number;"
                    " track a metric with a scalar result."
                )
    return checked


def check_log_figures(log_figures: bool | Sequence[str]) -> frozenset[str]:
    """Return the stages to draw figures for: ``True`` all, ``False`` none, or the stages given.

    Raises:
        ValueError: a name that is not a stage.

    Examples:
        >>> sorted(check_log_figures(("val", "test"))), check_log_figures(False)
        (['test', 'val'], frozenset())
    """
    if isinstance(log_figures, bool):
        return frozenset(STAGES) if log_figures else frozenset()
    return frozenset(check_stages(log_figures, "log_figures"))


def plain_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hparams`` with OmegaConf containers (from Hydra without ``_convert_``) turned into plain dicts and lists.

    A checkpoint then holds only plain containers, which ``load_from_checkpoint`` can read with
    ``weights_only=True``.

    Examples:
        >>> plain_hparams({"track_best": ("acc",)})
        {'track_best': ('acc',)}
    """
    return {key: _to_container(value) for key, value in hparams.items()}


def addressed_metrics(heads: Heads) -> dict[str, Metric]:
    """One stage's metrics by address: ``"acc"``, or ``"cls/acc"`` for the metrics of output ``cls``.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> list(addressed_metrics(Heads.of({"cls": MetricCollection({"acc": MulticlassAccuracy(3)})})))
        ['cls/acc']
    """
    return {
        address(output, str(name)): metric
        for output, collection in heads.heads()
        for name, metric in collection.items(keep_base=False, copy_state=False)
    }


def check_outputs(outputs: Sequence[str] | None) -> tuple[str, ...] | None:
    """Return the output names after checking them.

    Raises:
        TypeError: not a sequence of names.
        ValueError: an empty, dotted or slashed name, a stage name, or a repeated name.

    Examples:
        >>> check_outputs(["cls", "age"]), check_outputs(None)
        (('cls', 'age'), None)
    """
    if outputs is None:
        return None
    if isinstance(outputs, str) or not isinstance(outputs, Sequence) or not outputs:
        raise TypeError(f"Expected `outputs` to be a non-empty sequence of output names, but got {outputs!r}.")
    checked = tuple(plain_key(output, "outputs") for output in outputs)
    for output in checked:
        if output in STAGES:
            raise ValueError(f"outputs: {output!r} is a stage name; name the output otherwise.")
        if "." in output or "/" in output:
            raise ValueError(f"outputs: {output!r} cannot contain '.' or '/'; use '_' instead.")
    if len(set(checked)) != len(checked):
        raise ValueError(f"outputs: {checked} names an output twice.")
    return checked


def plain_key(key: object, where: str) -> str:
    """Return ``key`` as a plain `str` (a `str` Enum member gives its value).

    Raises:
        ValueError: ``key`` is not a non-empty string.

    Examples:
        >>> import enum
        >>> class Name(str, enum.Enum):
        ...     ACC = "acc"
        >>> plain_key(Name.ACC, "metrics"), type(plain_key(Name.ACC, "metrics")).__name__
        ('acc', 'str')
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: names must be non-empty strings, but got {key!r}.")
    return str.__str__(key)


def check_stages(stages: Sequence[str], option: str = "stages") -> tuple[str, ...]:
    """Return ``stages`` (the value of ``option``) as a tuple of plain stage names.

    Raises:
        TypeError: ``stages`` is not a sequence of names.
        ValueError: a name is not a stage.
    """
    if isinstance(stages, str) or not isinstance(stages, Sequence):
        raise TypeError(f"Expected `{option}` to be a sequence of stage names, but got {stages!r}.")
    checked = tuple(plain_key(stage, option) for stage in stages)
    for stage in checked:
        _check_stage_key(stage, option)
    return checked


def check_names(names: Sequence[str], option: str, known: Collection[str]) -> tuple[str, ...]:
    """Return the names given to ``option`` (``prog_bar``, ``track_best``) after checking each is known.

    Raises:
        TypeError: ``names`` is a single string or not a sequence.
        ValueError: a name that the module does not log.

    Examples:
        >>> check_names(["acc"], "prog_bar", {"acc", "loss"})
        ('acc',)
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(
            f"Expected `{option}` to be a sequence of names such as ({names!r},), but got {names!r}."
            if isinstance(names, str)
            else f"Expected `{option}` to be a sequence of names, but got {names!r}."
        )
    checked = tuple(plain_key(name, option) for name in names)
    for name in checked:
        if name not in known:
            raise ValueError(f"{option}: {name!r} is not a metric of this module; known: {sorted(known)}.")
    return checked


def check_log_sep(log_sep: object) -> str:
    """Return ``log_sep`` after checking it is a non-empty string without ``.``.

    Raises:
        ValueError: an empty separator, a dotted one, or not a string.
    """
    if not isinstance(log_sep, str) or not log_sep or "." in log_sep:
        raise ValueError(f"Expected `log_sep` to be a non-empty string without '.', but got {log_sep!r}.")
    return log_sep


def check_buffer_batches(buffer_batches: object) -> int:
    """Return ``buffer_batches`` after checking it is a positive integer.

    Raises:
        ValueError: not an integer of at least 1.
    """
    if isinstance(buffer_batches, bool) or not isinstance(buffer_batches, int) or buffer_batches < 1:
        raise ValueError(
            "Expected `buffer_batches` to be an integer of at least 1 (1 turns buffering off),"
            f" but got {buffer_batches!r}."
        )
    return buffer_batches


def check_loss_fn(loss_fn: object) -> Callable[[Any, Any], Any] | None:
    """Return ``loss_fn`` after checking it is callable or ``None``.

    Raises:
        TypeError: ``loss_fn`` is neither callable nor ``None``.
    """
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"Expected `loss_fn` to be callable `(preds, target) -> loss`, but got {loss_fn!r}.")
    return loss_fn


def _to_container(value: Any) -> Any:
    # OmegaConf containers (a Hydra config) become plain dicts and lists, which metric constructors
    # check for; omegaconf is only consulted when the caller has already imported it.
    omegaconf = sys.modules.get("omegaconf")
    if omegaconf is not None and isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
        return omegaconf.OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping) and not isinstance(value, MetricCollection):
        return {key: _to_container(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_to_container(item) for item in value)
    return value


def _build_heads(metrics: object, outputs: Sequence[str], key: str) -> OutputMetrics:
    if not isinstance(metrics, Mapping) or isinstance(metrics, MetricCollection):
        raise TypeError(f"{key}: expected a dict keyed by output, but got {type(metrics).__name__}.")
    heads: OutputMetrics = {}
    for output, value in metrics.items():
        output = plain_key(output, key)
        if output not in outputs:
            raise ValueError(f"{key}: {output!r} is not an output {tuple(outputs)}.")
        collection = _build_collection(value, f"{key}[{output!r}]")
        if collection is not None:
            heads[output] = collection
    return heads


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
    built: dict[str, Metric | MetricCollection] = {}
    for name, value in metrics.items():
        name = _check_name(name, key)
        built[name] = _build_metric(value, f"{key}[{name!r}]")
    return group_by_settings(MetricCollection(built))


def _check_name(name: object, key: str) -> str:
    name = plain_key(name, key)
    if "." in name:
        raise ValueError(f"{key}[{name!r}]: metric names cannot contain '.'; use '_' instead.")
    if hasattr(MetricCollection, name):
        raise ValueError(
            f"{key}[{name!r}]: the name clashes with the MetricCollection attribute {name!r}; choose another name."
        )
    return name


def _build_metric(value: object, key: str) -> Metric:
    if isinstance(value, Metric):
        return copy.deepcopy(value)
    if isinstance(value, MetricTracker):
        raise TypeError(tracker_refusal(key))
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
    return group_by_settings(fresh_copy(collection))
