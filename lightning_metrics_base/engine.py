"""The engine: every metric, buffer, loss sum, best value and figure decision of a module, with no Lightning.

`MetricEngine` does the work of `MetricAwareModule` and logs nothing itself. It reads the run through
a `RunView` (which stage's dataloaders have how many batches, whether this step's values reach the
loggers, the number of processes, the sanity check, ...) and returns what is to be logged: `LogRecord`
values with their ``self.log`` options, the `Figure` results to draw, and the notices to warn. The
face (``module.py`` and ``hooks.py``, built on a Lightning namespace) reads the run from its trainer,
feeds the engine, and turns what comes back into ``self.log`` calls, figures and warnings: only the
face logs, by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_metrics_base.configuration.config import Options
from lightning_metrics_base.configuration.heads import StageMetrics
from lightning_metrics_base.report.best import BestTracker
from lightning_metrics_base.report.errors import large_state_notice, unsized_dataloader_error
from lightning_metrics_base.report.naming import (
    LOSS,
    Destination,
    LoggedNames,
    Namer,
    name_epoch_values,
    name_step_values,
    owner,
    reserve_names,
)
from lightning_metrics_base.report.padding import PaddingWarnings
from lightning_metrics_base.update.metric_store import MetricStore


class RunView(Protocol):
    """What the engine may read of the run, and nothing more: a face reads it from its trainer (`NO_RUN` without)."""

    @property
    def attached(self) -> bool:
        """A trainer runs the module (figures and padding warnings need one)."""

    @property
    def logs_this_step(self) -> bool:
        """The loggers receive this step's values (Lightning sends them every ``log_every_n_steps``)."""

    @property
    def world_size(self) -> int:
        """The number of processes."""

    @property
    def sanity_checking(self) -> bool:
        """The sanity check runs now."""

    @property
    def fitting(self) -> bool:
        """The run is a fit (``trainer.fit``), not ``validate`` or ``test``."""

    @property
    def global_zero(self) -> bool:
        """This process is the global rank zero."""

    @property
    def takes_suffixed_names(self) -> bool:
        """``self.log`` takes a name that holds ``/dataloader_idx_`` (Lightning 2.5.3 and later)."""

    def batch_counts(self, stage: str) -> Sequence[float]:
        """The number of batches of each of ``stage``'s dataloaders this epoch (``inf`` for one without a length)."""

    def dataloaders(self, stage: str) -> object:
        """``stage``'s dataloaders (one, or a list of them)."""

    def sum_across_processes(self) -> Callable[[Tensor], Tensor] | None:
        """A function that sums a tensor over every process, or ``None`` on one process."""


class _NoRun:
    """The run of a module that no trainer runs: a step or hook called by hand."""

    attached = False
    logs_this_step = True
    world_size = 1
    sanity_checking = False
    fitting = False
    global_zero = True
    takes_suffixed_names = True

    def batch_counts(self, stage: str) -> Sequence[float]:
        return (1,)

    def dataloaders(self, stage: str) -> object:
        return None

    def sum_across_processes(self) -> Callable[[Tensor], Tensor] | None:
        return None


NO_RUN: RunView = _NoRun()
"""The `RunView` of a module that no trainer runs."""


@dataclass(frozen=True)
class LogRecord:
    """One value to pass to ``self.log``, with its options.

    Attributes:
        name: the name to pass (a dataloader's values logged from its last batch leave the suffix to Lightning).
        value: a 0-d tensor.
        on_step: ``self.log``'s ``on_step``.
        on_epoch: ``self.log``'s ``on_epoch``.
        prog_bar: ``self.log``'s ``prog_bar``.
        batch_size: ``self.log``'s ``batch_size`` (``None``: Lightning's default).
        add_dataloader_idx: ``self.log``'s ``add_dataloader_idx``.
        synced: the name as Lightning shows it, when the value is already summed across processes (so
            Lightning's ``sync_dist=True`` advice about it is wrong), else ``None``.
    """

    name: str
    value: Tensor
    on_step: bool
    on_epoch: bool
    prog_bar: bool
    batch_size: int | None = None
    add_dataloader_idx: bool = True
    synced: str | None = None


@dataclass(frozen=True)
class Figure:
    """A result to draw with its metric's ``plot()`` and send to the loggers that take figures.

    Attributes:
        stage: the stage it was computed in.
        tag: its name, with the dataloader suffix when the stage has several.
        metric: the metric that computed it.
        value: the result.
    """

    stage: str
    tag: str
    metric: Metric
    value: Any


@dataclass(frozen=True)
class Report:
    """What one dataloader's or stage's epoch end gives: values to log, figures to send, notices to warn."""

    records: tuple[LogRecord, ...] = ()
    figures: tuple[Figure, ...] = ()
    notices: tuple[str, ...] = ()


NOTHING = Report()
"""The `Report` of an end that logs nothing."""


class MetricEngine:
    """The work of `MetricAwareModule`: it updates, computes, names and resets the metrics, and says what to log.

    Args:
        options: the constructor's arguments after every check (`build_options`).
        log_train_step: whether per-step train values are logged as ``train/{name}_step``.
        buffer_bytes: the bound on buffered metric inputs per stage and dataloader.
        large_state_bytes: above this size per process, a state that grows with every sample gets a notice.

    Attributes:
        store: the metrics (an `nn.Module` the face registers, so that they move with the module).
        epoch_metrics: full logged name to value of every value computed at the latest epoch end of each stage.

    Examples:
        >>> import torch
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> from lightning_metrics_base.configuration.config import build_options
        >>> options = build_options({"mae": MeanAbsoluteError()}, stages=("val",), loss_fn=None, log_sep="/",
        ...     outputs=None, buffer_batches=1, prog_bar=("loss",), track_best=(), log_figures=False)
        >>> engine = MetricEngine(options, log_train_step=False, buffer_bytes=2**20, large_state_bytes=2**28)
        >>> engine.start_epoch("val", NO_RUN)
        ()
        >>> engine.update("val", 0, torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]), NO_RUN)
        ()
        >>> [(record.name, float(record.value)) for record in engine.end_epoch("val", NO_RUN).records]
        [('val/mae', 1.0)]
    """

    def __init__(self, options: Options, *, log_train_step: bool, buffer_bytes: int, large_state_bytes: int) -> None:
        self.log_train_step = log_train_step
        self.prog_bar, self.log_figures = options.prog_bar, options.log_figures
        self.large_state_bytes = large_state_bytes
        self.store = MetricStore(options.collections, log_train_step, options.buffer_batches, buffer_bytes)
        self.namer = Namer(options.log_sep, outputs=options.outputs is not None)
        self.best = BestTracker.of(options.track_best, options.addressed.get("val", {}))
        self.names = reserve_names(self.namer, options.addressed, options.track_best, log_train_step)
        self.logged = LoggedNames()
        self.epoch_metrics: dict[str, Tensor] = {}
        self._loss_step_name = self.namer.step(self.namer.loss("train"))
        self._metrics_in_prog_bar = bool(self.prog_bar - {LOSS})  # then per-step values go out every step
        self._padding = PaddingWarnings()
        self._large_states_said: set[str] = set()

    # ------------------------------------------------------------------ runs and epochs

    def start_run(self, stage: str) -> None:
        """A fit, validate, test or predict begins: names may change hands, and a fit gives each notice again."""
        self.logged.clear()
        if stage == "fit":
            self._large_states_said.clear()

    def start_epoch(self, stage: str, run: RunView) -> tuple[str, ...]:
        """Start ``stage``'s metrics afresh; return the notices about its dataloaders.

        Raises:
            ValueError: several dataloaders, one without a length, where Lightning refuses the names it needs.
        """
        self.store.reset(stage)
        counts = run.batch_counts(stage)
        if len(counts) > 1 and not run.takes_suffixed_names:
            for dataloader_idx, count in enumerate(counts):
                if count == float("inf"):  # no known last batch: logged at the epoch end, suffixed
                    raise unsized_dataloader_error(stage, dataloader_idx)
        if stage == "train" or not run.attached:
            return ()
        return tuple(self._padding.new_warnings(stage, run.dataloaders(stage)))

    def end_batch(self, stage: str, batch_idx: int, dataloader_idx: int, run: RunView) -> Report:
        """After a batch: with several dataloaders, a dataloader's values once its last batch is done.

        Lightning gives every dataloader the values logged in epoch-end hooks; a dataloader's own values
        are logged as soon as its last batch is done, while Lightning still attributes them to it.
        """
        counts = run.batch_counts(stage)
        if len(counts) > 1 and batch_idx + 1 == counts[dataloader_idx] and dataloader_idx in self.store.pending(stage):
            return self._finish(Destination(stage, dataloader_idx, several=True, in_step=True), run)
        return NOTHING

    def end_epoch(self, stage: str, run: RunView) -> Report:
        """At the epoch end: the values of every dataloader of ``stage`` not finished yet."""
        several = len(run.batch_counts(stage)) > 1
        reports = [self._finish(Destination(stage, idx, several), run) for idx in self.store.pending(stage)]
        return Report(
            tuple(record for report in reports for record in report.records),
            tuple(figure for report in reports for figure in report.figures),
            tuple(notice for report in reports for notice in report.notices),
        )

    def free(self, stage: str) -> None:
        """Free ``stage``'s state once Lightning has logged its values."""
        self.store.reset(stage)

    # ------------------------------------------------------------------ steps

    def has(self, stage: str) -> bool:
        """Whether ``stage`` has metrics."""
        return self.store.has(stage)

    def metrics(self, stage: str) -> StageMetrics | None:
        """``stage``'s metrics of dataloader 0 (a `MetricCollection`, or one per output), or ``None``."""
        return self.store.read(stage)

    def add_loss(
        self, stage: str, dataloader_idx: int, losses: Mapping[str, Tensor], count: int, run: RunView
    ) -> tuple[LogRecord, ...]:
        """Add one batch's loss parts (over ``count`` samples); return the train loss of the step to log."""
        self.store.add_loss(stage, dataloader_idx, losses, count)
        shown = LOSS in self.prog_bar
        if stage != "train" or not (shown or run.logs_this_step):
            return ()
        record = self._record(
            self._loss_step_name, LOSS, losses[LOSS].detach(), on_epoch=False, prog_bar=shown, batch_size=count
        )
        return (record,)

    def update(self, stage: str, dataloader_idx: int, preds: Any, target: Any, run: RunView) -> tuple[LogRecord, ...]:
        """Feed one batch's detached inputs to ``stage``'s metrics; return the per-step train values to log.

        Raises:
            MetricUpdateError: a metric rejected the inputs; the message names the stage and metric.
        """
        step_values = stage == "train" and self.log_train_step and (self._metrics_in_prog_bar or run.logs_this_step)
        values = self.store.update(stage, dataloader_idx, preds, target, step_values)
        if not values:
            return ()
        return tuple(
            self._record(name, source, scalar, on_epoch=False, prog_bar=source in self.prog_bar)
            for name, scalar, source in name_step_values(self.namer, self.names, values)
        )

    def claim_user_name(self, name: str) -> None:
        """Record a name the user's own ``self.log`` logs.

        Raises:
            ValueError: the module logs ``name`` too in this run.
        """
        self.logged.by_user(name)

    # ------------------------------------------------------------------ the epoch end

    def _finish(self, where: Destination, run: RunView) -> Report:
        # compute -> publish (epoch_metrics, figures, best) -> what to log
        notices = self._large_state_notices(where, run.world_size)
        values = self.store.compute_epoch(where.stage, where.dataloader_idx, run.sum_across_processes())
        named = name_epoch_values(self.namer, self.names, where, values.losses, values.metrics)
        self.epoch_metrics.update(named.kept)
        figures: tuple[Figure, ...] = ()
        if where.stage in self.log_figures and run.attached and not run.sanity_checking and run.global_zero:
            figures = tuple(Figure(where.stage, tag, metric, result) for tag, metric, result in named.figures)
        scalars = list(named.scalars)
        if where.stage == "val":
            self.best.check(values.losses, values.metrics)
            # Only fitting counts: the sanity check and `trainer.validate()` never change a best value
            # (in the manner of `EarlyStopping._should_skip_check`).
            if run.fitting and not run.sanity_checking:
                best = self.best.offer(self.namer, where, values.losses, values.metrics)
                scalars += [(name, value, "track_best") for name, value in best]
        synced = torch.distributed.is_available() and torch.distributed.is_initialized()
        records = tuple(
            self._record(
                where.logged(name),
                source,
                value,
                on_epoch=True,
                prog_bar=source in self.prog_bar,
                batch_size=1,
                add_dataloader_idx=where.in_step,
                synced=where.shown(name) if synced else None,
                claimed=name,
            )
            for name, value, source in scalars
        )
        return Report(records, figures, notices)

    def _large_state_notices(self, where: Destination, processes: int) -> tuple[str, ...]:
        # once per fit and metric: a state that keeps every sample, and what gathering it will cost
        notices = []
        for name, size in self.store.concatenated_bytes(where.stage, where.dataloader_idx).items():
            notice = f"{where.stage}/{name}"
            if size > self.large_state_bytes and notice not in self._large_states_said:
                self._large_states_said.add(notice)
                notices.append(large_state_notice(where.stage, name, size, processes))
        return tuple(notices)

    def _record(
        self,
        name: str,
        source: str,
        value: Tensor,
        *,
        on_epoch: bool,
        prog_bar: bool,
        batch_size: int | None = None,
        add_dataloader_idx: bool = True,
        synced: str | None = None,
        claimed: str | None = None,
    ) -> LogRecord:
        # The module's own values, claimed under `claimed` (as a user's `self.log` in a step would name it).
        self.logged.by_module(claimed or name, owner(source))
        return LogRecord(name, value, not on_epoch, on_epoch, prog_bar, batch_size, add_dataloader_idx, synced)
