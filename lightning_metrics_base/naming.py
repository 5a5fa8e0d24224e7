"""Every name the module logs is made here, and no two sources ever share one.

`Namer` builds the names (stage, metric, element, ``_step``, ``_best``, loss components, dataloader
suffix); `flatten_result` turns one computed result into loggable scalars; `NameRegistry` refuses a
name that two different sources would produce, naming both.

A ``ClasswiseWrapper``'s result keys are read at construction through ``_torchmetrics_internals``
(without them those names are checked at the first epoch end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.wrappers import ClasswiseWrapper

from lightning_metrics_base._torchmetrics_internals import classwise_keys
from lightning_metrics_base.figures import wants_figure

LOSS = "loss"
"""The name of the loss, in ``prog_bar`` and ``track_best`` as in the logged names."""

DATALOADER_SUFFIX = "/dataloader_idx_{}"
"""Lightning's suffix for the values of evaluation dataloader ``i`` when there are several."""


def address(output: str | None, name: str) -> str:
    """How ``prog_bar``, ``track_best`` and epoch values name a metric: ``"acc"``, or ``"cls/acc"`` for output ``cls``.

    Examples:
        >>> address(None, "acc"), address("cls", "acc")
        ('acc', 'cls/acc')
    """
    return name if output is None else f"{output}/{name}"


@dataclass(frozen=True)
class Namer:
    """Makes every logged name from its parts, with one separator.

    A metric is addressed by its name (``"acc"``), or for a multi-output model (``outputs=True``) by
    ``"{output}/{name}"`` (``"cls/acc"``), whose ``/`` becomes the separator in the logged name.

    Examples:
        >>> namer = Namer("/")
        >>> namer.epoch("val", "acc"), namer.step("train/acc"), namer.best("acc"), namer.loss("val", "kl")
        ('val/acc', 'train/acc_step', 'val/acc_best', 'val/loss/kl')
        >>> namer.with_dataloader("val/acc", 1, several=True), namer.with_dataloader("val/acc", 0, several=False)
        ('val/acc/dataloader_idx_1', 'val/acc')
        >>> Namer("_", outputs=True).best("cls/acc")
        'val_cls_acc_best'
    """

    sep: str = "/"
    outputs: bool = False

    def epoch(self, stage: str, name: str) -> str:
        """The epoch value of metric ``name`` (its address) in ``stage``."""
        if self.outputs and "/" in name:
            output, name = name.split("/", 1)
            return f"{stage}{self.sep}{output}{self.sep}{name}"
        return f"{stage}{self.sep}{name}"

    @staticmethod
    def step(epoch_name: str) -> str:
        """The per-step value logged beside the epoch value ``epoch_name`` (e.g. ``train/acc``)."""
        return f"{epoch_name}_step"

    def best(self, name: str) -> str:
        """The best validation value so far of ``name`` (a metric or ``"loss"``)."""
        return f"{self.epoch('val', name)}_best"

    def loss(self, stage: str, component: str | None = None) -> str:
        """The loss of ``stage``, or one of its components."""
        total = self.epoch(stage, LOSS)
        return total if component is None else f"{total}{self.sep}{component}"

    @staticmethod
    def with_dataloader(name: str, dataloader_idx: int, several: bool) -> str:
        """``name`` as Lightning shows it for ``dataloader_idx`` (suffixed only when there are several)."""
        return name + DATALOADER_SUFFIX.format(dataloader_idx) if several else name


@dataclass(frozen=True)
class Destination:
    """Where one dataloader's epoch values go, in the manner of Lightning's ``_Metadata`` for one ``self.log``.

    Attributes:
        stage: the stage.
        dataloader_idx: the dataloader.
        several: the stage has several dataloaders, so Lightning suffixes names (``/dataloader_idx_1``).
        in_step: the values are logged from the dataloader's last batch hook, where Lightning adds the
            suffix itself; at the epoch end the module adds it.

    Examples:
        >>> where = Destination("val", 1, several=True)
        >>> where.shown("val/acc"), where.logged("val/acc"), Destination("val", 1, True, True).logged("val/acc")
        ('val/acc/dataloader_idx_1', 'val/acc/dataloader_idx_1', 'val/acc')
    """

    stage: str
    dataloader_idx: int = 0
    several: bool = False
    in_step: bool = False

    def shown(self, name: str) -> str:
        """``name`` as Lightning shows it (suffixed when the stage has several dataloaders)."""
        return Namer.with_dataloader(name, self.dataloader_idx, self.several)

    def logged(self, name: str) -> str:
        """The name to pass to ``self.log`` for ``name``."""
        return name if self.in_step else self.shown(name)


class NameRegistry:
    """Remembers which source produces each logged name and refuses a second source for it.

    Examples:
        >>> names = NameRegistry()
        >>> names.claim("val/loss", "the loss")
        >>> names.claim("val/loss", "metric 'loss'")
        Traceback (most recent call last):
        ...
        ValueError: The logged name 'val/loss' would be produced by both the loss and metric 'loss'; rename the metric.
    """

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def claim(self, name: str, source: str) -> None:
        """Record that ``source`` produces ``name``.

        Raises:
            ValueError: another source already produces ``name``.
        """
        owner = self._owners.setdefault(name, source)
        if owner != source:
            raise ValueError(
                f"The logged name {name!r} would be produced by both {owner} and {source}; rename the metric."
            )

    def claim_all(self, names: Iterable[str], source: str) -> None:
        """`claim` every name of ``names`` for ``source``."""
        for name in names:
            self.claim(name, source)


class LoggedNames:
    """Who logged each name in a run, the module or the user's own ``self.log``; refuses a name logged by both.

    Lightning keeps one value per name: of two values logged under one name, one would be lost
    without a word.

    Examples:
        >>> names = LoggedNames()
        >>> names.by_module("val/acc", "metric 'acc'")
        >>> names.by_user("val/acc")
        Traceback (most recent call last):
        ...
        ValueError: 'val/acc' is logged by the module (metric 'acc') and by a `self.log` call of your own; one \
of the two values would be lost. Log yours under another name, or drop it: the module logs this one.
    """

    def __init__(self) -> None:
        self._module: dict[str, str] = {}
        self._user: set[str] = set()

    def clear(self) -> None:
        """Forget every name (a new run starts)."""
        self._module.clear()
        self._user.clear()

    def by_module(self, name: str, source: str) -> None:
        """Record that the module logs ``name`` for ``source``.

        Raises:
            ValueError: the user's own ``self.log`` logged ``name`` in this run.
        """
        if name in self._user:
            raise ValueError(self._clash(name, source))
        self._module[name] = source

    def by_user(self, name: str) -> None:
        """Record that the user's own ``self.log`` logs ``name``.

        Raises:
            ValueError: the module logs ``name`` in this run.
        """
        if name in self._module:
            raise ValueError(self._clash(name, self._module[name]))
        self._user.add(name)

    @staticmethod
    def _clash(name: str, source: str) -> str:
        return (
            f"{name!r} is logged by the module ({source}) and by a `self.log` call of your own; one of the two"
            " values would be lost. Log yours under another name, or drop it: the module logs this one."
        )


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
    return [name] if count is None else [f"{name}{sep}{index}" for index in range(count)]


def _per_class_count(metric: Metric) -> int | None:
    # the length of a per-class result, where the constructor arguments say it (`average=None`)
    count = getattr(metric, "num_classes", None) or getattr(metric, "num_labels", None)
    if "average" in vars(metric) and getattr(metric, "average", 0) is None and isinstance(count, int):
        return count
    return None


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
            element_names = labels if labels is not None and len(labels) == value.numel() else range(value.numel())
            for label, element in zip(element_names, value.unbind(), strict=True):
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


def reserve_names(
    namer: Namer, metrics: Mapping[str, Mapping[str, Metric]], track_best: Sequence[str], log_train_step: bool
) -> NameRegistry:
    """Claim every name the constructor arguments reveal: the losses, the best values, each metric's names.

    Args:
        namer: makes the names.
        metrics: ``{stage: {address: metric}}``.
        track_best: the names whose best value is logged.
        log_train_step: whether per-step train values are logged.

    Raises:
        ValueError: two sources would produce one logged name; the message names both.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> names = reserve_names(Namer("/"), {"val": {"loss": MulticlassAccuracy(3)}}, (), False)
        Traceback (most recent call last):
        ...
        ValueError: The logged name 'val/loss' would be produced by both the loss and metric 'loss'; rename the metric.
    """
    registry = NameRegistry()
    for stage in ("train", "val", "test"):
        registry.claim(namer.loss(stage), "the loss")
    registry.claim(namer.step(namer.loss("train")), "the loss")
    for name in track_best:
        registry.claim(namer.best(name), f"track_best of {name!r}")
    for stage, addressed in metrics.items():
        for name, metric in addressed.items():
            produced = expected_names(namer.epoch(stage, name), metric, namer.sep)
            registry.claim_all(produced, f"metric {name!r}")
            if stage == "train" and log_train_step:
                registry.claim_all(map(namer.step, produced), f"metric {name!r}")
    return registry


@dataclass
class NamedValues:
    """One dataloader's epoch values under their logged names.

    Attributes:
        scalars: ``(logged name, 0-d tensor, source)`` to log, named without the dataloader suffix
            (Lightning adds it to values logged during a batch); the source is the metric's address,
            or ``"loss"`` for the loss (its components have their own).
        kept: every value, detached on the CPU, non-scalar ones whole, by name with the dataloader
            suffix (what ``epoch_metrics`` holds).
        figures: ``(name with the dataloader suffix, metric, result)`` for results to draw.
    """

    scalars: list[tuple[str, Tensor, str]] = field(default_factory=list)
    kept: dict[str, Tensor] = field(default_factory=dict)
    figures: list[tuple[str, Metric, Any]] = field(default_factory=list)


def name_epoch_values(
    namer: Namer,
    registry: NameRegistry,
    where: Destination,
    losses: Mapping[str, Tensor],
    metrics: Mapping[str, tuple[Any, Metric]],
) -> NamedValues:
    """Name the epoch values of one stage's dataloader, claiming every name before any is logged.

    Raises:
        ValueError: a name that another source already produces (a dict key equal to a metric's name).

    Examples:
        >>> import torch
        >>> where = Destination("val", 1, several=True)
        >>> named = name_epoch_values(Namer("/"), NameRegistry(), where, {"loss": torch.tensor(0.5)}, {})
        >>> [(name, float(value), source) for name, value, source in named.scalars], list(named.kept)
        ([('val/loss', 0.5, 'loss')], ['val/loss/dataloader_idx_1'])
    """
    named = NamedValues()
    kept: dict[str, Tensor] = {}
    for component, value in losses.items():
        name = namer.loss(where.stage, None if component == LOSS else component)
        registry.claim(name, "the loss" if component == LOSS else f"loss component {component!r}")
        kept[name] = value.float()
        named.scalars.append((name, value.float(), LOSS if component == LOSS else f"{LOSS}/{component}"))
    for metric_name, (result, metric) in metrics.items():
        full_name = namer.epoch(where.stage, metric_name)
        flat, metric_kept = flatten_result(full_name, result, namer.sep, metric_labels(metric))
        registry.claim_all(metric_kept.keys() | flat.keys(), f"metric {metric_name!r}")
        kept.update(metric_kept)
        named.scalars += [(name, scalar, metric_name) for name, scalar in flat.items()]
        if wants_figure(result):
            named.figures.append((where.shown(full_name), metric, result))
    named.kept = {where.shown(k): v.detach().cpu() for k, v in kept.items()}
    return named


def name_step_values(
    namer: Namer, registry: NameRegistry, values: Mapping[str, tuple[Any, Metric]]
) -> list[tuple[str, Tensor, str]]:
    """Name one batch's train values (``train/acc_step``, ``train/per_class/3_step``): ``(name, scalar, metric)``.

    Raises:
        ValueError: a name that another source already produces.

    Examples:
        >>> import torch
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> [name for name, _, _ in name_step_values(Namer("/"), NameRegistry(),
        ...                                          {"acc": (torch.tensor(0.5), MulticlassAccuracy(3))})]
        ['train/acc_step']
    """
    named = []
    for metric_name, (value, metric) in values.items():
        scalars, _ = flatten_result(namer.epoch("train", metric_name), value, namer.sep, metric_labels(metric))
        for scalar_name, scalar in scalars.items():
            registry.claim(namer.step(scalar_name), f"metric {metric_name!r}")
            named.append((namer.step(scalar_name), scalar, metric_name))
    return named
