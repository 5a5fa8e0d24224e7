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
from torchmetrics import MetricCollection

from lightning_metrics_base.best import BestTracker, direction
from lightning_metrics_base.config import (
    STAGES,
    MetricsConfig,
    build_metrics,
    check_log_sep,
    check_loss_fn,
    check_names,
)
from lightning_metrics_base.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.figures import log_figure, takes_figures, wants_figure
from lightning_metrics_base.metric_store import EpochValues, MetricStore
from lightning_metrics_base.naming import LOSS, Namer, NameRegistry, expected_names, flatten_result, metric_labels
from lightning_metrics_base.padding import PaddingWarnings
from lightning_metrics_base.scoped_warnings import ScopedIgnores
from lightning_metrics_base.specs import config_to_specs, holds_metric_objects

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricUpdateError"]

LossFn = Callable[[Any, Any], Any]
_CHECKPOINT_KEY = "lightning_metrics_base"
# Lightning hooks the module does work in. A subclass's override is wrapped so that the base
# class's work runs first, with or without `super()`; that work is idempotent, so `super()` is fine.
_WRAPPED_HOOKS = (
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

    Raises:
        TypeError: a bad ``metrics`` container or value (see `build_metrics`), or a bad option type.
        ValueError: an unknown stage, a bad metric name, a ``prog_bar``/``track_best`` name that is
            not a metric of the module, a ``track_best`` metric without a direction, or two sources
            of one logged name.
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
    ) -> None:
        super().__init__()
        self.loss_fn = check_loss_fn(loss_fn)
        self.log_sep = check_log_sep(log_sep)
        self.log_train_step = bool(log_train_step)
        self.log_figures = bool(log_figures)
        collections = build_metrics(metrics, stages)
        self._metric_store = MetricStore(collections, step_values=self.log_train_step)
        self._namer = Namer(self.log_sep)
        names = {
            stage: {str(key) for key in collection.keys(keep_base=False)} for stage, collection in collections.items()
        }
        self.prog_bar = frozenset(check_names(prog_bar, "prog_bar", {LOSS}.union(*names.values())))
        self.track_best = check_names(track_best, "track_best", {LOSS} | names.get("val", set()))
        val = collections.get("val")
        self._best = BestTracker(
            {name: direction(name, val[name] if val is not None and name != LOSS else None) for name in self.track_best}
        )
        self._names = self._reserve_names(collections)
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
        items = list(target.values()) if isinstance(target, Mapping) else target
        for item in [target] if isinstance(target, Tensor) else items if isinstance(items, (list, tuple)) else []:
            if isinstance(item, Tensor):
                return int(item.shape[0]) if item.ndim else 1
        if isinstance(target, (list, tuple)):
            return len(target)
        raise TypeError(
            f"{type(self).__name__}.count_samples cannot count the samples of a {type(target).__name__} target;"
            " override `count_samples(self, target)` to return the number of samples in the batch."
        )

    # ------------------------------------------------------------------ what the module exposes

    @property
    def train_metrics(self) -> MetricCollection | None:
        """The train `MetricCollection`, or ``None`` when the train stage has no metrics."""
        return self._metric_store.get("train", 0)

    @property
    def val_metrics(self) -> MetricCollection | None:
        """The validation `MetricCollection` of dataloader 0, or ``None``."""
        return self._metric_store.get("val", 0)

    @property
    def test_metrics(self) -> MetricCollection | None:
        """The test `MetricCollection` of dataloader 0, or ``None``."""
        return self._metric_store.get("test", 0)

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
            ValueError: ``stage`` is not a stage.
            MetricUpdateError: a metric rejected the inputs; the message names the stage and metric.
        """
        if stage not in STAGES:
            raise ValueError(f"update_metrics: unknown stage {stage!r}; the stages are {', '.join(STAGES)}.")
        self._update(stage, preds, target, dataloader_idx)

    # ------------------------------------------------------------------ Lightning hooks (wrapped in subclasses)

    def setup(self, stage: str) -> None:
        """Called at the beginning of fit, validate, test or predict."""
        self._figure_notices.clear()

    def teardown(self, stage: str) -> None:
        """Called at the end of fit, validate, test or predict; takes back the module's warning filters."""
        self._quiet.clear()

    def on_train_epoch_start(self) -> None:
        """Called when the train epoch begins; resets the train metrics."""
        self._start_epoch("train")

    def on_validation_epoch_start(self) -> None:
        """Called when the validation epoch begins; resets the validation metrics."""
        self._start_epoch("val")

    def on_test_epoch_start(self) -> None:
        """Called when the test epoch begins; resets the test metrics."""
        self._start_epoch("test")

    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a validation batch; with several dataloaders, logs one's values after its last batch."""
        self._end_batch("val", batch_idx, dataloader_idx)

    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after a test batch; with several dataloaders, logs one's values after its last batch."""
        self._end_batch("test", batch_idx, dataloader_idx)

    def on_train_epoch_end(self) -> None:
        """Called when the train epoch ends; computes and logs the train values."""
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Called when the validation epoch ends; computes and logs the validation values."""
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        """Called when the test epoch ends; computes and logs the test values."""
        self._end_epoch("test")

    def on_validation_end(self) -> None:
        """Called after validation, once Lightning has logged; releases the validation state."""
        self._metric_store.reset("val")

    def on_test_end(self) -> None:
        """Called after testing, once Lightning has logged; releases the test state."""
        self._metric_store.reset("test")

    def on_train_end(self) -> None:
        """Called when training ends; releases the train state."""
        self._metric_store.reset("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when saving a checkpoint; stores the best validation values of ``track_best``."""
        checkpoint[_CHECKPOINT_KEY] = self._best.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when loading a checkpoint; restores the best validation values of ``track_best``."""
        self._best.load_state_dict(checkpoint.get(_CHECKPOINT_KEY, {}))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in _WRAPPED_HOOKS:
            user_hook = cls.__dict__.get(hook)
            if callable(user_hook) and not getattr(user_hook, "_runs_own_work", False):
                setattr(cls, hook, _after_own_work(user_hook, getattr(MetricAwareModule, hook)))

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
        for key in [key for key, value in self.hparams.items() if holds_metric_objects(value)]:
            converted, missed = config_to_specs(self.hparams[key], key)
            self.hparams[key] = converted
            vars(self)["_hparams_initial"][key] = copy.deepcopy(converted)  # what loggers and checkpoints save
            if missed:
                warnings.warn(
                    f"Hyperparameter {key!r}: cannot write {', '.join(missed)} as a spec (its constructor arguments"
                    " cannot be read back), so checkpoints pickle the object and `load_from_checkpoint` cannot"
                    " restore it with `torch.load(weights_only=True)`. Pass it as a spec dict"
                    " ({'class_path': 'package.module.Metric', 'init_args': {...}}) or call"
                    f" `self.save_hyperparameters(ignore=[{key!r}])`.",
                    UserWarning,
                    stacklevel=2,
                )

    # ------------------------------------------------------------------ internals

    def _step(self, stage: str, batch: Any, dataloader_idx: int) -> Tensor:
        inputs, target = self.unpack_batch(batch)
        preds = self(inputs)
        return self._record(stage, self.compute_loss(preds, target), preds, target, dataloader_idx)  # type: ignore[no-any-return]

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _record(self, stage: str, loss: Any, preds: Any, target: Any, dataloader_idx: int) -> Tensor:
        # Runs outside any compiled region: `self.log` cannot be traced.
        losses = _loss_parts(loss)
        count = self.count_samples(target)
        self._metric_store.add_loss(stage, dataloader_idx, losses, count)
        if stage == "train" and (LOSS in self.prog_bar or self._logs_this_step()):
            name = self._namer.step(self._namer.loss("train"))
            self.log(
                name,
                losses[LOSS].detach(),
                on_step=True,
                on_epoch=False,
                prog_bar=LOSS in self.prog_bar,
                batch_size=count,
            )
        self._update(stage, preds, target, dataloader_idx)
        return losses[LOSS]

    def _update(self, stage: str, preds: Any, target: Any, dataloader_idx: int) -> None:
        if not self._metric_store.has(stage):
            return
        preds, target = self.metric_inputs(_detach(preds), _detach(target))
        step_values = stage == "train" and self.log_train_step and self._logs_this_step(prog_bar=True)
        values = self._metric_store.update(stage, dataloader_idx, preds, target, step_values)
        for name, (value, metric) in (values or {}).items():
            scalars, _ = flatten_result(self._namer.epoch("train", name), value, self.log_sep, metric_labels(metric))
            for scalar_name, scalar in scalars.items():
                step_name = self._namer.step(scalar_name)
                self._names.claim(step_name, f"metric {name!r}")
                self.log(step_name, scalar, on_step=True, on_epoch=False, prog_bar=name in self.prog_bar)

    def _logs_this_step(self, prog_bar: bool = False) -> bool:
        # A per-step value costs a `self.log` (and for metrics a compute); do it only when the progress
        # bar shows it or a logger receives it (Lightning sends step values every `log_every_n_steps`).
        if (prog_bar and self.prog_bar - {LOSS}) or self._trainer is None:
            return True
        return bool(getattr(getattr(self._trainer, "_logger_connector", None), "should_update_logs", True))

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
        if len(counts) > 1 and batch_idx + 1 == counts[dataloader_idx] and dataloader_idx in self._pending(stage):
            self._finish(stage, dataloader_idx, several=True, in_step=True)

    def _end_epoch(self, stage: str) -> None:
        several = len(self._batch_counts(stage)) > 1
        for dataloader_idx in self._pending(stage):
            self._finish(stage, dataloader_idx, several, in_step=False)

    def _pending(self, stage: str) -> list[int]:
        return self._metric_store.pending(stage)

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
            scalars += self._best_scalars(values, dataloader_idx, several)
        quiet = torch.distributed.is_available() and torch.distributed.is_initialized()
        for name, value, prog_bar in scalars:
            logged = name if in_step else self._namer.with_dataloader(name, dataloader_idx, several)
            if quiet:
                self._quiet.ignore_sync_advice(self._namer.with_dataloader(name, dataloader_idx, several))
            self.log(logged, value, on_epoch=True, batch_size=1, prog_bar=prog_bar, add_dataloader_idx=in_step)

    def _scalars(self, stage: str, values: EpochValues, dataloader_idx: int, several: bool) -> list[Any]:
        scalars: list[tuple[str, Tensor, bool]] = []
        for component, value in values.losses.items():
            name = self._namer.loss(stage, None if component == LOSS else component)
            self._names.claim(name, "the loss" if component == LOSS else f"loss component {component!r}")
            self.epoch_metrics[self._namer.with_dataloader(name, dataloader_idx, several)] = value.float().cpu()
            scalars.append((name, value.float(), component == LOSS and LOSS in self.prog_bar))
        for metric_name, (result, metric) in values.metrics.items():
            full_name = self._namer.epoch(stage, metric_name)
            flat, kept = flatten_result(full_name, result, self.log_sep, metric_labels(metric))
            self._names.claim_all(kept.keys() | flat.keys(), f"metric {metric_name!r}")
            for name, tensor in kept.items():
                self.epoch_metrics[self._namer.with_dataloader(name, dataloader_idx, several)] = tensor.detach().cpu()
            scalars += [(name, scalar, metric_name in self.prog_bar) for name, scalar in flat.items()]
            if wants_figure(result):
                self._send_figure(self._namer.with_dataloader(full_name, dataloader_idx, several), metric, result)
        return scalars

    def _best_scalars(self, values: EpochValues, dataloader_idx: int, several: bool) -> list[Any]:
        scalars = []
        for name in self.track_best:
            value = values.losses.get(LOSS) if name == LOSS else values.metrics.get(name, (None, None))[0]
            if not isinstance(value, Tensor) or value.ndim != 0:
                continue
            key = self._namer.with_dataloader(self._namer.best(name), dataloader_idx, several)
            best = self._best.update(name, key, float(value))
            if best is not None:
                scalars.append((self._namer.best(name), torch.tensor(best), False))
        return scalars

    def _send_figure(self, tag: str, metric: Any, value: Any) -> None:
        trainer = self._trainer
        if not self.log_figures or trainer is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        takers = [logger for logger in trainer.loggers if takes_figures(logger)]
        for logger in trainer.loggers:
            if logger not in takers and type(logger).__name__ not in self._figure_notices:
                self._figure_notices.add(type(logger).__name__)
                rank_zero_warn(
                    f"{type(logger).__name__} cannot take figures: {tag} and other results of two or more"
                    " dimensions are not sent to it (read them from `epoch_metrics`, or add a TensorBoard"
                    " or MLflow logger).",
                    category=UserWarning,
                )
        if takers:
            # the step Lightning logs epoch-end scalars at
            log_figure(takers, tag, metric, value, trainer.fit_loop.epoch_loop._batches_that_stepped)

    def _reduce(self, tensor: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")

    def _reserve_names(self, collections: Mapping[str, MetricCollection]) -> NameRegistry:
        registry = NameRegistry()
        for stage in STAGES:
            registry.claim(self._namer.loss(stage), "the loss")
        registry.claim(self._namer.step(self._namer.loss("train")), "the loss")
        for name in self.track_best:
            registry.claim(self._namer.best(name), f"track_best of {name!r}")
        for stage, collection in collections.items():
            for name, metric in collection.items(keep_base=False, copy_state=False):
                produced = expected_names(self._namer.epoch(stage, name), metric, self.log_sep)
                registry.claim_all(produced, f"metric {name!r}")
                if stage == "train" and self.log_train_step:
                    registry.claim_all(map(self._namer.step, produced), f"metric {name!r}")
        return registry


def _after_own_work(user_hook: Callable[..., Any], own_work: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(user_hook)
    def hook(self: MetricAwareModule, *args: Any, **kwargs: Any) -> Any:
        own_work(self, *args, **kwargs)
        return user_hook(self, *args, **kwargs)

    hook._runs_own_work = True  # type: ignore[attr-defined]
    return hook


def _loss_parts(loss: Any) -> dict[str, Tensor]:
    if not isinstance(loss, Mapping):
        return {LOSS: loss}
    if LOSS not in loss:
        raise ValueError(
            f"compute_loss returned a dict without 'loss' (keys: {sorted(map(str, loss))}); put the total loss,"
            " the one to minimise, under 'loss' and its components under other keys."
        )
    return {str(key): value for key, value in loss.items()}


def _detach(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, Mapping):
        return {key: _detach(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(item) for item in value) if not hasattr(value, "_fields") else value
    return value
