"""Every name the module logs is made here, and no two sources ever share one.

`Namer` builds the names (stage, metric, element, ``_step``, ``_best``, loss components, dataloader
suffix); `NameRegistry` refuses a name that two different sources would produce, naming both;
`LoggedNames` refuses a name logged both by the module and by the user's own ``self.log``. What a
result's elements are called is `results.py`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torchmetrics import Metric

from lightning_metrics_base.lightning_semantics import STAGES
from lightning_metrics_base.report.results import expected_names, flatten_result, metric_labels, wants_figure

LOSS = "loss"
"""The name of the loss, in ``prog_bar`` and ``track_best`` as in the logged names."""

DATALOADER_SUFFIX = "/dataloader_idx_{}"
"""Lightning's suffix for the values of evaluation dataloader ``i`` when there are several."""


def owner(source: str) -> str:
    """Describe what produces a value the module logs, for an error message.

    Examples:
        >>> owner("loss"), owner("loss/kl"), owner("acc")
        ('the loss', "loss component 'kl'", "metric 'acc'")
    """
    if source == LOSS or source == "track_best":
        return "the loss" if source == LOSS else "track_best"
    if source.startswith(f"{LOSS}/"):
        return f"loss component {source.split('/', 1)[1]!r}"
    return f"metric {source!r}"


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
    for stage in STAGES:
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
