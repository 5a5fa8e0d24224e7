"""`MetricAwareModule`: a `LightningModule` whose metrics are updated, logged, synced and reset for you.

This is the only file that talks to Lightning: it calls ``self.log``, reads ``self.trainer`` and runs
the user's hooks. Every other file takes values and returns values.
"""

from __future__ import annotations

import copy
import functools
import inspect
import types
import warnings
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.nn import ModuleDict
from torchmetrics import MetricCollection

from lightning_metrics_base.batch import check_model_outputs, detach, loss_parts, samples_in
from lightning_metrics_base.best import BestTracker, direction
from lightning_metrics_base.buffering import DEFAULT_BUFFER_BYTES
from lightning_metrics_base.config import (
    STAGES,
    MetricsConfig,
    addressed_metrics,
    build_metrics,
    build_output_metrics,
    check_buffer_batches,
    check_log_sep,
    check_loss_fn,
    check_names,
    check_outputs,
)
from lightning_metrics_base.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.figures import figure_notices, log_figure
from lightning_metrics_base.metric_store import EpochValues, MetricStore
from lightning_metrics_base.naming import (
    LOSS,
    Namer,
    name_epoch_values,
    name_step_values,
    reserve_names,
)
from lightning_metrics_base.padding import PaddingWarnings
from lightning_metrics_base.scoped_warnings import ScopedIgnores
from lightning_metrics_base.specs import hparams_as_specs

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricUpdateError"]

LossFn = Callable[[Any, Any], Any]
StageMetrics = MetricCollection | ModuleDict
_CHECKPOINT_KEY = "lightning_metrics_base"


class MetricAwareModule(LightningModule):
    """A `LightningModule` that updates, computes, logs, syncs and resets its metrics for you.

    A subclass writes ``forward`` and either passes ``loss_fn`` or overrides ``compute_loss``; it may
    override ``unpack_batch`` (how a batch splits into inputs and target), ``metric_inputs`` (what
    the metrics receive, e.g. an argmax) and ``count_samples`` (a batch's weight in the epoch loss).
    It must not call ``update``, ``compute`` or ``reset`` on the metrics: the module owns them.

    In return it gets ``training_step``, ``validation_step``, ``test_step`` and ``predict_step``;
    one independent metric collection per stage and dataloader; ``{stage}/loss`` and
    ``{stage}/{metric}`` logged once per epoch with values over every sample of the epoch (over all
    processes under DDP), ``train/loss_step`` every step; and ``epoch_metrics`` with every computed
    value, non-scalar ones included. Epoch and checkpoint hooks a subclass overrides keep working
    without ``super()``: the module's own work runs first, so an overridden epoch-end hook already
    finds this epoch's values in ``epoch_metrics`` and the metric objects still hold the epoch's state.

    Args:
        metrics: a flat dict ``{name: Metric or spec}`` or a ``MetricCollection`` (each stage in
            ``stages`` gets its own deep copy), a per-stage dict ``{"train": ..., "val": ...,
            "test": ...}``, or ``None``. Specs: ``{"class_path": ..., "init_args": {...}}`` or
            ``{"_target_": ..., **kwargs}``; a bare class name is looked up in torchmetrics.
        loss_fn: ``(preds, target) -> loss``, used by the default ``compute_loss``.
        stages: the stages a flat dict or collection applies to.
        log_sep: separator between stage and name (``"/"`` gives ``val/acc``).
        prog_bar: metric names (and/or ``"loss"``) shown in the progress bar.
        log_train_step: also log per-step train values as ``train/{name}_step``.
        track_best: metric names (or ``"loss"``) whose best validation value so far is logged
            as ``val/{name}_best``.
        log_figures: draw results of two or more dimensions (confusion matrices, curves) with the
            metric's own ``plot()`` and send them to every logger that takes figures (TensorBoard,
            MLflow, loggers with ``log_image``); needs matplotlib.
        outputs: the names of a multi-output model's outputs: ``forward`` returns a dict holding them,
            the target is a dict holding them, and ``metrics`` is declared per output
            (``{"cls": {...}, "age": {...}}``, or per stage ``{"val": {"cls": {...}}}``). Names become
            ``val/cls/acc``; ``prog_bar`` and ``track_best`` address a metric as ``"cls/acc"``.
        buffer_batches: gather the metric inputs of up to this many batches and feed them in one
            update per compute group, for the metrics where that gives the same result (every state
            summed or concatenated, no child metrics); at most ``buffer_bytes`` (16 MiB) per stage and
            dataloader. ``1`` turns buffering off. Whatever reads the metrics (``{stage}_metrics``,
            epoch end, your hooks) sees their whole state.

    Raises:
        TypeError: a bad ``metrics`` container or value (see `build_metrics`), or a bad option type.
        ValueError: an unknown stage, a bad metric name, a ``prog_bar``/``track_best`` name that is
            not a metric of the module, a ``track_best`` metric without a direction, two sources of
            one logged name, or a metrics key that is neither an output nor a stage.
        ImportError: a spec whose class cannot be imported.

    Examples:
        >>> import torch, torch.nn.functional as F
        >>> from lightning import Trainer
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> class Classifier(MetricAwareModule):
        ...     def __init__(self):
        ...         super().__init__({"acc": MulticlassAccuracy(num_classes=3)}, loss_fn=F.cross_entropy)
        ...         self.net = torch.nn.Linear(4, 3)
        ...     def forward(self, x):
        ...         return self.net(x)
        ...     def configure_optimizers(self):
        ...         return torch.optim.SGD(self.parameters(), lr=0.1)
        >>> data = DataLoader(TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,))), batch_size=8)
        >>> trainer = Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
        ...                   enable_model_summary=False, enable_checkpointing=False)
        >>> trainer.fit(Classifier(), data, data)
        >>> sorted(trainer.callback_metrics)
        ['train/acc', 'train/loss', 'train/loss_step', 'val/acc', 'val/loss']
    """

    __jit_unused_properties__ = [  # noqa: RUF012 (Lightning declares it as a plain list)
        *LightningModule.__jit_unused_properties__,
        "train_metrics",
        "val_metrics",
        "test_metrics",
        "best_values",
    ]
    __jit_ignored_attributes__: ClassVar[list[str]] = [
        "_metric_store",
        "_best",
        "_names",
        "_padding",
        "_quiet",
        "epoch_metrics",
    ]

    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    """The bound on buffered metric inputs per stage and dataloader (16 MiB); a subclass may change it."""

    def __init__(
        self,
        metrics: MetricsConfig = None,
        *,
        loss_fn: LossFn | None = None,
        stages: Sequence[str] = STAGES,
        log_sep: str = "/",
        prog_bar: Sequence[str] = (LOSS,),
        log_train_step: bool = False,
        track_best: Sequence[str] = (),
        log_figures: bool = True,
        outputs: Sequence[str] | None = None,
        buffer_batches: int = 16,
    ) -> None:
        super().__init__()
        self.loss_fn = check_loss_fn(loss_fn)
        self.log_sep = check_log_sep(log_sep)
        self.log_train_step = bool(log_train_step)
        self.log_figures = bool(log_figures)
        self.outputs = check_outputs(outputs)
        collections: Mapping[str, Any] = (
            build_metrics(metrics, stages)
            if self.outputs is None
            else build_output_metrics(metrics, self.outputs, stages)
        )
        self.buffer_batches = check_buffer_batches(buffer_batches)
        self._metric_store = MetricStore(collections, self.log_train_step, self.buffer_batches, self.buffer_bytes)
        self._namer = Namer(self.log_sep, outputs=self.outputs is not None)
        addressed = {stage: addressed_metrics(stage_metrics) for stage, stage_metrics in collections.items()}
        self.prog_bar = frozenset(check_names(prog_bar, "prog_bar", {LOSS}.union(*addressed.values())))
        self._metrics_in_prog_bar = bool(self.prog_bar - {LOSS})  # then per-step values go out every step
        self.track_best = check_names(track_best, "track_best", {LOSS, *addressed.get("val", {})})
        self._best = BestTracker({name: direction(name, addressed["val"].get(name)) for name in self.track_best})
        self._names = reserve_names(self._namer, addressed, self.track_best, self.log_train_step)
        self.epoch_metrics: dict[str, Tensor] = {}
        self._padding = PaddingWarnings()
        self._quiet = ScopedIgnores()
        self._figure_notices: set[str] = set()

    # ------------------------------------------------------------------ hooks a subclass overrides

    def compute_loss(self, preds: Any, target: Any) -> Tensor | Mapping[str, Tensor]:
        """Return the loss of a batch, or ``{"loss": total, **components}``; calls ``loss_fn`` by default.

        Raises:
            NotImplementedError: when no ``loss_fn`` was given and the subclass did not override it.
        """
        if self.loss_fn is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no loss: implement `compute_loss(self, preds, target)`"
                " or pass `loss_fn=` to `MetricAwareModule.__init__`."
            )
        return self.loss_fn(preds, target)  # type: ignore[no-any-return]

    def unpack_batch(self, batch: Any) -> tuple[Any, Any]:
        """Split a batch into ``(inputs, target)``; by default a 2-element tuple or list.

        Raises:
            TypeError: the batch is not a pair; override ``unpack_batch`` for other batch layouts.
        """
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return batch[0], batch[1]
        kind = f"{type(batch).__name__} of length {len(batch)}" if isinstance(batch, Sized) else type(batch).__name__
        raise TypeError(
            f"{type(self).__name__}.unpack_batch expects an `(inputs, target)` pair, but got a {kind}."
            " Override `unpack_batch(self, batch)` to return `(inputs, target)` for your batches."
        )

    def metric_inputs(self, preds: Any, target: Any) -> tuple[Any, Any]:
        """Return what the metrics receive for a batch; identity by default (override for argmax, sigmoid...)."""
        return preds, target

    def count_samples(self, target: Any) -> int:
        """Return the number of samples in a batch: its weight in the epoch loss.

        The leading dimension of the target tensor, or of the first tensor directly inside a dict,
        tuple or list target; a list or tuple holding no tensor counts its items.

        Raises:
            TypeError: the target holds no tensor to count; override ``count_samples``.
        """
        return samples_in(target, type(self).__name__)

    # ------------------------------------------------------------------ what the module exposes

    @property
    def train_metrics(self) -> StageMetrics | None:
        """The train `MetricCollection` (with ``outputs``: a `ModuleDict` of one per output), or ``None``."""
        return self._stage_metrics("train")

    @property
    def val_metrics(self) -> StageMetrics | None:
        """The validation metrics of dataloader 0, like ``train_metrics``."""
        return self._stage_metrics("val")

    @property
    def test_metrics(self) -> StageMetrics | None:
        """The test metrics of dataloader 0, like ``train_metrics``."""
        return self._stage_metrics("test")

    @property
    def best_values(self) -> dict[str, float]:
        """The best validation values so far of ``track_best``, by logged name (``val/acc_best``)."""
        return self._best.values

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Unpack the batch, run ``forward`` and ``compute_loss``, update and log; return the loss."""
        return self._step("train", batch, 0)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Like ``training_step``, for validation; each dataloader has its own metrics."""
        return self._step("val", batch, dataloader_idx)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Like ``training_step``, for testing; each dataloader has its own metrics."""
        return self._step("test", batch, dataloader_idx)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """Return ``forward`` of the inputs: a tensor batch is the input, a pair is unpacked."""
        inputs = batch if isinstance(batch, Tensor) else self.unpack_batch(batch)[0]
        return self(inputs)

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def update_metrics(self, stage: str, preds: Any, target: Any, dataloader_idx: int = 0) -> None:
        """Feed a batch to the metrics of ``stage`` (and dataloader); call it from a step you write yourself.

        ``preds`` and ``target`` are detached and go through ``metric_inputs`` first. With
        ``log_train_step`` the train values of this batch are logged as ``train/{name}_step``.
        Epoch-end compute, logging and reset happen on their own.

        Raises:
            ValueError: ``stage`` is not a stage; with ``outputs``, an output missing from ``preds`` or ``target``.
            MetricUpdateError: a metric rejected the inputs; the message names the stage and metric.
        """
        if stage not in STAGES:
            raise ValueError(f"update_metrics: unknown stage {stage!r}; the stages are {', '.join(STAGES)}.")
        if self.outputs is not None:
            check_model_outputs(preds, target, self.outputs)
        self._update(stage, preds, target, dataloader_idx)

    # ------------------------------------------------------------------ Lightning hooks (see `_HOOK_WORK`)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in _HOOK_WORK:
            user_hook = cls.__dict__.get(hook)
            if callable(user_hook) and not getattr(user_hook, "_runs_own_work", False):
                setattr(cls, hook, _after_own_work(user_hook, _HOOK_WORK[hook][0]))

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Save ``__init__`` arguments as hyperparameters, with `Metric` objects written as specs.

        Metric objects (passed directly, or built by Hydra or LightningCLI) are saved as
        ``class_path`` specs, so ``load_from_checkpoint`` restores the same metric set. A metric
        whose constructor arguments cannot be read back is kept as an object, with a warning that
        says what to do instead.
        """
        if frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        converted, messages = hparams_as_specs(self.hparams)
        self.hparams.update(converted)
        vars(self)["_hparams_initial"].update(copy.deepcopy(converted))  # what loggers and checkpoints save
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=2)

    # ------------------------------------------------------------------ internals

    def _stage_metrics(self, stage: str) -> StageMetrics | None:
        self._metric_store.flush(stage, 0)  # whole state, whenever it is read
        return self._metric_store.get(stage, 0)  # type: ignore[no-any-return]

    def _step(self, stage: str, batch: Any, dataloader_idx: int) -> Tensor:
        inputs, target = self.unpack_batch(batch)
        preds = self(inputs)
        if self.outputs is not None:
            check_model_outputs(preds, target, self.outputs)
        return self._record(stage, self.compute_loss(preds, target), preds, target, dataloader_idx)  # type: ignore[no-any-return]

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _record(self, stage: str, loss: Any, preds: Any, target: Any, dataloader_idx: int) -> Tensor:
        # Runs outside any compiled region: `self.log` cannot be traced.
        losses = loss_parts(loss)
        count = self.count_samples(target)
        self._metric_store.add_loss(stage, dataloader_idx, losses, count)
        if stage == "train" and (LOSS in self.prog_bar or self._logs_this_step()):
            name, bar = self._namer.step(self._namer.loss("train")), LOSS in self.prog_bar
            self.log(name, losses[LOSS].detach(), on_step=True, on_epoch=False, prog_bar=bar, batch_size=count)
        self._update(stage, preds, target, dataloader_idx)
        return losses[LOSS]

    def _update(self, stage: str, preds: Any, target: Any, dataloader_idx: int) -> None:
        if not self._metric_store.has(stage):
            return
        preds, target = self.metric_inputs(detach(preds), detach(target))
        step_values = stage == "train" and self.log_train_step and self._logs_this_step(prog_bar=True)
        values = self._metric_store.update(stage, dataloader_idx, preds, target, step_values)
        for name, scalar, source in name_step_values(self._namer, self._names, values or {}):
            self.log(name, scalar, on_step=True, on_epoch=False, prog_bar=source in self.prog_bar)

    def _logs_this_step(self, prog_bar: bool = False) -> bool:
        # A per-step value costs a `self.log` (and for metrics a compute); do it only when the progress
        # bar shows it or a logger receives it (Lightning sends step values every `log_every_n_steps`).
        if (prog_bar and self._metrics_in_prog_bar) or self._trainer is None:
            return True
        return bool(getattr(getattr(self._trainer, "_logger_connector", None), "should_update_logs", True))

    def _save_best(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[_CHECKPOINT_KEY] = self._best.state_dict()

    def _load_best(self, checkpoint: dict[str, Any]) -> None:
        self._best.load_state_dict(checkpoint.get(_CHECKPOINT_KEY, {}))

    def _start_epoch(self, stage: str) -> None:
        self._metric_store.reset(stage)
        if stage != "train" and self._trainer is not None:
            dataloaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
            loaders = dataloaders if isinstance(dataloaders, (list, tuple)) else [dataloaders]
            for message in self._padding.new_warnings(stage, loaders):
                rank_zero_warn(message, category=UserWarning)

    def _end_batch(self, stage: str, batch_idx: int, dataloader_idx: int) -> None:
        # Lightning gives every dataloader the values logged in epoch-end hooks; a dataloader's own
        # values are logged as soon as its last batch is done, while Lightning still attributes them to it.
        counts = self._batch_counts(stage)
        if (
            len(counts) > 1
            and batch_idx + 1 == counts[dataloader_idx]
            and dataloader_idx in self._metric_store.pending(stage)
        ):
            self._finish(stage, dataloader_idx, several=True, in_step=True)

    def _end_epoch(self, stage: str) -> None:
        several = len(self._batch_counts(stage)) > 1
        for dataloader_idx in self._metric_store.pending(stage):
            self._finish(stage, dataloader_idx, several, in_step=False)

    def _batch_counts(self, stage: str) -> list[float]:
        trainer = self._trainer
        if trainer is None or stage == "train":
            return [1]
        if stage == "test":
            return list(trainer.num_test_batches)
        return list(trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches)

    def _finish(self, stage: str, dataloader_idx: int, several: bool, in_step: bool) -> None:
        reduce = self._reduce if self._trainer is not None and self.trainer.world_size > 1 else None
        values = self._metric_store.compute_epoch(stage, dataloader_idx, reduce)
        scalars = self._scalars(stage, values, dataloader_idx, several)
        if stage == "val" and self._trainer is not None and not self.trainer.sanity_checking:
            best = self._best.offer(self._namer, values.losses, values.metrics, dataloader_idx, several)
            scalars += [(name, value, False) for name, value in best]
        quiet = torch.distributed.is_available() and torch.distributed.is_initialized()
        for name, value, prog_bar in scalars:
            logged = name if in_step else self._namer.with_dataloader(name, dataloader_idx, several)
            if quiet:
                self._quiet.ignore_sync_advice(self._namer.with_dataloader(name, dataloader_idx, several))
            self.log(logged, value, on_epoch=True, batch_size=1, prog_bar=prog_bar, add_dataloader_idx=in_step)

    def _scalars(self, stage: str, values: EpochValues, dataloader_idx: int, several: bool) -> list[Any]:
        named = name_epoch_values(self._namer, self._names, stage, values.losses, values.metrics)
        for name, tensor in named.kept.items():
            self.epoch_metrics[self._namer.with_dataloader(name, dataloader_idx, several)] = tensor.detach().cpu()
        for tag, metric, result in named.figures:
            self._send_figure(self._namer.with_dataloader(tag, dataloader_idx, several), metric, result)
        return [(name, value, source in self.prog_bar) for name, value, source in named.scalars]

    def _send_figure(self, tag: str, metric: Any, value: Any) -> None:
        trainer = self._trainer
        if not self.log_figures or trainer is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        for notice in figure_notices(trainer.loggers, tag, self._figure_notices):
            rank_zero_warn(notice, category=UserWarning)
        # at the step Lightning logs epoch-end scalars at
        log_figure(trainer.loggers, tag, metric, value, trainer.fit_loop.epoch_loop._batches_that_stepped)

    def _reduce(self, tensor: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")


def _after_own_work(user_hook: Callable[..., Any], own_work: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(user_hook)
    def hook(self: MetricAwareModule, *args: Any, **kwargs: Any) -> Any:
        own_work(self, *args, **kwargs)
        return user_hook(self, *args, **kwargs)

    hook._runs_own_work = True  # type: ignore[attr-defined]
    return hook


# The Lightning hooks the module works in: what it does there, and the hook's docstring. The base
# class's hooks are made from this table, and a subclass's override of one is wrapped so that this
# work runs first, with or without `super()` (the work is idempotent, so `super()` is fine too).
_HOOK_WORK: dict[str, tuple[Callable[..., None], str]] = {
    "setup": (lambda m, stage: m._figure_notices.clear(), "Called at the beginning of fit, validate, test or predict."),
    "teardown": (lambda m, stage: m._quiet.clear(), "Called at the end; takes back the module's warning filters."),
    "on_train_epoch_start": (lambda m: m._start_epoch("train"), "Called when the train epoch begins; resets it."),
    "on_validation_epoch_start": (lambda m: m._start_epoch("val"), "Called when validation begins; resets it."),
    "on_test_epoch_start": (lambda m: m._start_epoch("test"), "Called when the test epoch begins; resets it."),
    "on_validation_batch_end": (
        lambda m, outputs, batch, batch_idx, dataloader_idx=0: m._end_batch("val", batch_idx, dataloader_idx),
        "Called after a validation batch; logs a dataloader's values after its last batch when there are several.",
    ),
    "on_test_batch_end": (
        lambda m, outputs, batch, batch_idx, dataloader_idx=0: m._end_batch("test", batch_idx, dataloader_idx),
        "Called after a test batch; logs a dataloader's values after its last batch when there are several.",
    ),
    "on_train_epoch_end": (lambda m: m._end_epoch("train"), "Called when the train epoch ends; logs its values."),
    "on_validation_epoch_end": (lambda m: m._end_epoch("val"), "Called when validation ends; logs its values."),
    "on_test_epoch_end": (lambda m: m._end_epoch("test"), "Called when the test epoch ends; logs its values."),
    "on_validation_end": (
        lambda m: m._metric_store.reset("val"),
        "Called after Lightning logged validation; frees it.",
    ),
    "on_test_end": (lambda m: m._metric_store.reset("test"), "Called after Lightning logged the test; frees it."),
    "on_train_end": (lambda m: m._metric_store.reset("train"), "Called when training ends; frees the train state."),
    "on_save_checkpoint": (lambda m, checkpoint: m._save_best(checkpoint), "Stores the best values in a checkpoint."),
    "on_load_checkpoint": (lambda m, checkpoint: m._load_best(checkpoint), "Restores the best values of a checkpoint."),
}


def _base_hook(name: str, work: Callable[..., None], doc: str) -> Callable[..., None]:
    def hook(self: MetricAwareModule, *args: Any, **kwargs: Any) -> None:
        work(self, *args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = doc
    hook._runs_own_work = True  # type: ignore[attr-defined]
    return hook


for _name, (_work, _doc) in _HOOK_WORK.items():
    setattr(MetricAwareModule, _name, _base_hook(_name, _work, _doc))
