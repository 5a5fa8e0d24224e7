"""The half of `MetricAwareModule` that Lightning calls: its hooks, and the carrying out of the engine's answers.

`MetricAwareModule` is written in two files, the way `LightningModule` inherits its hooks from
`ModelHooks`: ``module.py`` holds what a user calls (the constructor, the steps, `update_metrics`,
`log`, the stage properties) and this file holds `ModuleHooks`, its base, with what Lightning calls
at the edges of runs, epochs and checkpoints. The work is `MetricEngine`'s: each hook hands it the run
(`_TrainerRun`, the `RunView` of the trainer) and carries out what it returns, the records to
``self.log``, the figures to send and the notices to warn. This file alone logs and reads the trainer.

Each hook is an ordinary method marked `@module_work`; `KEPT_HOOKS` names those whose work no
subclass can disable (see `kept_hooks.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from lightning_metrics_base._internals.lightning import epoch_end_step, should_update_logs, takes_suffixed_names
from lightning_metrics_base.engine import NO_RUN, LogRecord, Report, RunView
from lightning_metrics_base.kept_hooks import keep_work, module_work

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule as _Base
    from lightning.pytorch import Trainer

    from lightning_metrics_base._face import Face
    from lightning_metrics_base.engine import MetricEngine
    from lightning_metrics_base.report.figures import FigureSender
    from lightning_metrics_base.report.sync_advice import SilencedSyncAdvice
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


class _TrainerRun:
    """The `RunView` the engine reads, taken from a trainer when asked (each read costs only when made).

    Args:
        trainer: the module's trainer.
        face: the Lightning namespace it runs on.
    """

    __slots__ = ("_face", "_of")

    def __init__(self, trainer: Trainer, face: Face) -> None:
        self._of, self._face = trainer, face

    attached = True

    @property
    def logs_this_step(self) -> bool:
        return should_update_logs(self._of)

    @property
    def world_size(self) -> int:
        return int(self._of.world_size)

    @property
    def sanity_checking(self) -> bool:
        return bool(self._of.sanity_checking)

    @property
    def fitting(self) -> bool:
        return bool(self._of.state.fn == "fit")

    @property
    def global_zero(self) -> bool:
        return bool(self._of.is_global_zero)

    @property
    def takes_suffixed_names(self) -> bool:
        return takes_suffixed_names(self._face)

    def batch_counts(self, stage: str) -> Sequence[float]:
        trainer = self._of
        if stage == "train":
            return (1,)
        if stage == "test":
            return trainer.num_test_batches
        return trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches

    def dataloaders(self, stage: str) -> object:
        return self._of.val_dataloaders if stage == "val" else self._of.test_dataloaders

    def sum_across_processes(self) -> Callable[[Tensor], Tensor] | None:
        if self._of.world_size <= 1:
            return None
        return partial(self._of.strategy.reduce, reduce_op="sum")


class ModuleHooks(_Base):
    """The Lightning hooks of `MetricAwareModule`: each hands the run to the engine and logs what it returns.

    Its attributes are set by `MetricAwareModule`.
    """

    _face: ClassVar[Face]
    """The Lightning namespace of the face class (``lightning`` or ``pytorch_lightning``)."""

    _lightning_log: Callable[..., None]
    """The namespace's `LightningModule.log` (the face class sets it): logging past the module's own `log`."""

    if TYPE_CHECKING:  # set in `MetricAwareModule.__init__`
        _engine: MetricEngine
        """The work: metrics, losses, names, best values; it says what to log."""
        _quiet: SilencedSyncAdvice
        """Lightning's ``sync_dist`` advice, kept from the names the engine has already synced."""
        _figures: FigureSender
        """What draws figures and sends them to the trainer's loggers."""
        _hooks_in_progress: set[str]
        """The kept hooks running now (see `kept_hooks.py`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        keep_work(cls, ModuleHooks, KEPT_HOOKS)

    @module_work
    def setup(self, stage: str) -> None:
        """Called at the beginning of fit, validate, test or predict; a fit gives each notice again."""
        self._engine.start_run(stage)
        if stage == "fit":
            self._figures.forget_notices()

    @module_work
    def teardown(self, stage: str) -> None:
        """Called at the end of fit, validate, test or predict; lets Lightning's sync advice show again."""
        self._quiet.restore()

    @module_work
    def on_train_epoch_start(self) -> None:
        """Called when the train epoch begins; starts its metrics afresh."""
        self._warn(self._engine.start_epoch("train", self._run()))

    @module_work
    def on_validation_epoch_start(self) -> None:
        """Called when validation begins; starts its metrics afresh."""
        self._warn(self._engine.start_epoch("val", self._run()))

    @module_work
    def on_test_epoch_start(self) -> None:
        """Called when the test epoch begins; starts its metrics afresh."""
        self._warn(self._engine.start_epoch("test", self._run()))

    @module_work
    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a validation batch; logs a dataloader's values after its last batch when there are several."""
        self._report(self._engine.end_batch("val", batch_idx, dataloader_idx, self._run()))

    @module_work
    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a test batch; logs a dataloader's values after its last batch when there are several."""
        self._report(self._engine.end_batch("test", batch_idx, dataloader_idx, self._run()))

    @module_work
    def on_train_epoch_end(self) -> None:
        """Called when the train epoch ends; computes and logs its values."""
        self._report(self._engine.end_epoch("train", self._run()))

    @module_work
    def on_validation_epoch_end(self) -> None:
        """Called when validation ends; computes and logs its values."""
        self._report(self._engine.end_epoch("val", self._run()))

    @module_work
    def on_test_epoch_end(self) -> None:
        """Called when the test epoch ends; computes and logs its values."""
        self._report(self._engine.end_epoch("test", self._run()))

    @module_work
    def on_validation_end(self) -> None:
        """Called after Lightning logged validation; frees its state."""
        self._engine.free("val")

    @module_work
    def on_test_end(self) -> None:
        """Called after Lightning logged the test; frees its state."""
        self._engine.free("test")

    @module_work
    def on_train_end(self) -> None:
        """Called when training ends; frees the train state."""
        self._engine.free("train")

    @module_work
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when saving a checkpoint; stores the best values in it."""
        self._engine.best.save_to(checkpoint)

    @module_work
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when loading a checkpoint; restores the best values."""
        self._engine.best.load_from(checkpoint)

    # ------------------------------------------------------------------ what the engine returns, carried out

    def _run(self) -> RunView:
        trainer = self._trainer
        return NO_RUN if trainer is None else _TrainerRun(trainer, self._face)

    def _report(self, report: Report) -> None:
        self._warn(report.notices)
        for figure in report.figures:
            self._send_figure(figure.stage, figure.tag, figure.metric, figure.value)
        self._log_records(report.records)

    def _log_records(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            if record.synced is not None:
                self._quiet.silence(record.synced)
            self._lightning_log(
                record.name,
                record.value,
                on_step=record.on_step,
                on_epoch=record.on_epoch,
                prog_bar=record.prog_bar,
                batch_size=record.batch_size,
                add_dataloader_idx=record.add_dataloader_idx,
            )

    def _warn(self, notices: Iterable[str]) -> None:
        for notice in notices:
            self._face.rank_zero_warn(notice, category=UserWarning)

    def _send_figure(self, stage: str, tag: str, metric: Any, value: Any) -> None:
        trainer = self.trainer
        notices = self._figures.notices(trainer.loggers, tag)
        step = epoch_end_step(trainer, stage)  # the step Lightning logs this epoch's scalars at
        notices += self._figures.send(trainer.loggers, tag, metric, value, step, trainer.current_epoch)
        self._warn(notices)
