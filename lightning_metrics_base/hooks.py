"""The half of `MetricAwareModule` that Lightning calls: its hooks, and the epoch end they run.

`MetricAwareModule` is written in two files, the way `LightningModule` inherits its hooks from
`ModelHooks`: ``module.py`` holds what a user calls (the constructor, the steps, `update_metrics`,
`log`, the stage properties) and this file holds `ModuleHooks`, its base, with what Lightning calls
at the edges of runs, epochs and checkpoints. Both read the trainer and call ``self.log``; no other
file does.

Each hook is an ordinary method marked `@module_work`; `KEPT_HOOKS` names those whose work no
subclass can disable (see `kept_hooks.py`). The epoch end reads as compute → publish
(`epoch_metrics`, figures, best values) → log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from lightning_metrics_base._internals.lightning import epoch_end_step, takes_suffixed_names
from lightning_metrics_base.kept_hooks import keep_work, module_work
from lightning_metrics_base.report.errors import large_state_notice, unsized_dataloader_error
from lightning_metrics_base.report.naming import Destination, name_epoch_values, owner

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule as _Base

    from lightning_metrics_base._face import Face
    from lightning_metrics_base.report.best import BestTracker
    from lightning_metrics_base.report.figures import FigureSender
    from lightning_metrics_base.report.naming import LoggedNames, Namer, NameRegistry
    from lightning_metrics_base.report.padding import PaddingWarnings
    from lightning_metrics_base.report.sync_advice import SilencedSyncAdvice
    from lightning_metrics_base.update.metric_store import EpochValues, MetricStore
else:
    _Base = object  # written against a `LightningModule`: each face puts its namespace's last in the bases

KEPT_HOOKS: tuple[str, ...] = (
    "setup",
    "teardown",
    "on_train_epoch_start",
    "on_validation_epoch_start",
    "on_test_epoch_start",
    "on_validation_batch_end",
    "on_test_batch_end",
    "on_train_epoch_end",
    "on_validation_epoch_end",
    "on_test_epoch_end",
    "on_validation_end",
    "on_test_end",
    "on_train_end",
    "on_save_checkpoint",
    "on_load_checkpoint",
)
"""The hooks whose work no subclass disables: wherever a subclass's class chain or mixins override one
(with or without ``super()``), the module's work runs first, exactly once per call."""


class ModuleHooks(_Base):
    """The Lightning hooks of `MetricAwareModule` and the epoch end they run; its attributes are set by that class."""

    _face: ClassVar[Face]
    """The Lightning namespace of the face class (``lightning`` or ``pytorch_lightning``)."""

    _lightning_log: Callable[..., None]
    """The namespace's `LightningModule.log` (the face class sets it): logging past the module's own `log`."""

    if TYPE_CHECKING:  # set in `MetricAwareModule.__init__`
        _metric_store: MetricStore
        _namer: Namer
        _names: NameRegistry
        _best: BestTracker
        _logged: LoggedNames
        _padding: PaddingWarnings
        _quiet: SilencedSyncAdvice
        _figures: FigureSender
        _large_states_said: set[str]
        _hooks_in_progress: set[str]
        epoch_metrics: dict[str, Tensor]
        prog_bar: frozenset[str]
        log_figures: frozenset[str]
        large_state_bytes: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        keep_work(cls, ModuleHooks, KEPT_HOOKS)

    @module_work
    def setup(self, stage: str) -> None:
        """Called at the beginning of fit, validate, test or predict; a fit gives each notice again."""
        self._logged.clear()
        if stage == "fit":
            self._figures.forget_notices()
            self._large_states_said.clear()

    @module_work
    def teardown(self, stage: str) -> None:
        """Called at the end of fit, validate, test or predict; lets Lightning's sync advice show again."""
        self._quiet.restore()

    @module_work
    def on_train_epoch_start(self) -> None:
        """Called when the train epoch begins; starts its metrics afresh."""
        self._start_epoch("train")

    @module_work
    def on_validation_epoch_start(self) -> None:
        """Called when validation begins; starts its metrics afresh."""
        self._start_epoch("val")

    @module_work
    def on_test_epoch_start(self) -> None:
        """Called when the test epoch begins; starts its metrics afresh."""
        self._start_epoch("test")

    @module_work
    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a validation batch; logs a dataloader's values after its last batch when there are several."""
        self._end_batch("val", batch_idx, dataloader_idx)

    @module_work
    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a test batch; logs a dataloader's values after its last batch when there are several."""
        self._end_batch("test", batch_idx, dataloader_idx)

    @module_work
    def on_train_epoch_end(self) -> None:
        """Called when the train epoch ends; computes and logs its values."""
        self._end_epoch("train")

    @module_work
    def on_validation_epoch_end(self) -> None:
        """Called when validation ends; computes and logs its values."""
        self._end_epoch("val")

    @module_work
    def on_test_epoch_end(self) -> None:
        """Called when the test epoch ends; computes and logs its values."""
        self._end_epoch("test")

    @module_work
    def on_validation_end(self) -> None:
        """Called after Lightning logged validation; frees its state."""
        self._metric_store.reset("val")

    @module_work
    def on_test_end(self) -> None:
        """Called after Lightning logged the test; frees its state."""
        self._metric_store.reset("test")

    @module_work
    def on_train_end(self) -> None:
        """Called when training ends; frees the train state."""
        self._metric_store.reset("train")

    @module_work
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when saving a checkpoint; stores the best values in it."""
        self._best.save_to(checkpoint)

    @module_work
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when loading a checkpoint; restores the best values."""
        self._best.load_from(checkpoint)

    # ------------------------------------------------------------------ the work

    def _start_epoch(self, stage: str) -> None:
        self._metric_store.reset(stage)
        counts = self._batch_counts(stage)
        if len(counts) > 1 and not takes_suffixed_names(self._face):
            for dataloader_idx, count in enumerate(counts):
                if count == float("inf"):  # no known last batch: logged at the epoch end, suffixed
                    raise unsized_dataloader_error(stage, dataloader_idx)
        if stage != "train" and self._trainer is not None:
            dataloaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
            for message in self._padding.new_warnings(stage, dataloaders):
                self._face.rank_zero_warn(message, category=UserWarning)

    def _end_batch(self, stage: str, batch_idx: int, dataloader_idx: int) -> None:
        # Lightning gives every dataloader the values logged in epoch-end hooks; a dataloader's own
        # values are logged as soon as its last batch is done, while Lightning still attributes them to it.
        counts = self._batch_counts(stage)
        last = len(counts) > 1 and batch_idx + 1 == counts[dataloader_idx]
        if last and dataloader_idx in self._metric_store.pending(stage):
            self._finish(Destination(stage, dataloader_idx, several=True, in_step=True))

    def _end_epoch(self, stage: str) -> None:
        several = len(self._batch_counts(stage)) > 1
        for dataloader_idx in self._metric_store.pending(stage):
            self._finish(Destination(stage, dataloader_idx, several))

    def _batch_counts(self, stage: str) -> list[float]:
        trainer = self._trainer
        if trainer is None or stage == "train":
            return [1]
        if stage == "test":
            return list(trainer.num_test_batches)
        return list(trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches)

    def _finish(self, where: Destination) -> None:
        # compute -> publish (epoch_metrics, figures, best) -> log
        self._notice_large_states(where)
        values = self._metric_store.compute_epoch(where.stage, where.dataloader_idx, self._sum_across_processes())
        scalars = self._publish(where, values)
        quiet = torch.distributed.is_available() and torch.distributed.is_initialized()
        for name, value, source in scalars:
            if quiet:
                self._quiet.silence(where.shown(name))
            self._log(
                name,
                source,
                value,
                logged_as=where.logged(name),
                on_epoch=True,
                batch_size=1,
                prog_bar=source in self.prog_bar,
                add_dataloader_idx=where.in_step,
            )

    def _sum_across_processes(self) -> Callable[[Tensor], Tensor] | None:
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        return partial(trainer.strategy.reduce, reduce_op="sum")

    def _publish(self, where: Destination, values: EpochValues) -> list[tuple[str, Tensor, str]]:
        # Everything but `self.log`: the names, `epoch_metrics`, figures and the best values.
        named = name_epoch_values(self._namer, self._names, where, values.losses, values.metrics)
        self.epoch_metrics.update(named.kept)
        for tag, metric, result in named.figures:
            self._send_figure(where.stage, tag, metric, result)
        scalars = list(named.scalars)
        if where.stage == "val":
            self._best.check(values.losses, values.metrics)
            if self._counts_for_best():
                best = self._best.offer(self._namer, where, values.losses, values.metrics)
                scalars += [(name, value, "track_best") for name, value in best]
        return scalars

    def _counts_for_best(self) -> bool:
        # Only fitting counts: the sanity check and `trainer.validate()` never change a best value
        # (in the manner of `EarlyStopping._should_skip_check`).
        trainer = self._trainer
        return trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking

    def _notice_large_states(self, where: Destination) -> None:
        # once per fit and metric: a state that keeps every sample, and what gathering it will cost
        processes = self._trainer.world_size if self._trainer is not None else 1
        for name, size in self._metric_store.concatenated_bytes(where.stage, where.dataloader_idx).items():
            notice = f"{where.stage}/{name}"
            if size > self.large_state_bytes and notice not in self._large_states_said:
                self._large_states_said.add(notice)
                self._face.rank_zero_warn(large_state_notice(where.stage, name, size, processes), category=UserWarning)

    def _send_figure(self, stage: str, tag: str, metric: Any, value: Any) -> None:
        trainer = self._trainer
        if stage not in self.log_figures or trainer is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        notices = self._figures.notices(trainer.loggers, tag)
        step = epoch_end_step(trainer, stage)  # the step Lightning logs this epoch's scalars at
        notices += self._figures.send(trainer.loggers, tag, metric, value, step, trainer.current_epoch)
        for notice in notices:
            self._face.rank_zero_warn(notice, category=UserWarning)

    def _log(self, name: str, source: str, value: Tensor, logged_as: str | None = None, **kwargs: Any) -> None:
        # The module's own values, under `name` (as a user's `self.log` in a step would name it).
        self._logged.by_module(name, owner(source))
        self._lightning_log(logged_as or name, value, **kwargs)
