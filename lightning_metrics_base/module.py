"""`MetricAwareModule`: a `LightningModule` whose metrics are updated, logged, synced and reset for you."""

from __future__ import annotations

import functools
import inspect
import re
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from lightning_metrics_base.config import STAGES, MetricsConfig, build_metrics, holds_metric_objects
from lightning_metrics_base.figures import figure_loggers, log_figure, wants_figure
from lightning_metrics_base.metric_store import MetricStore, compute_collection, upcast_low_precision
from lightning_metrics_base.naming import flatten_result
from lightning_metrics_base.padding import padding_warning

LossFn = Callable[[Any, Any], Tensor]

# Lightning hooks the module does work in. Subclass overrides of these are wrapped so the module's
# work runs first, whether or not the override calls `super()`; the work is idempotent, so an
# override that does call `super()` is fine too.
_OWN_WORK: dict[str, Callable[..., None]] = {
    "on_train_epoch_start": lambda module: module._start_epoch("train"),
    "on_validation_epoch_start": lambda module: module._start_epoch("val"),
    "on_test_epoch_start": lambda module: module._start_epoch("test"),
    "on_train_epoch_end": lambda module: module._end_epoch("train"),
    "on_validation_epoch_end": lambda module: module._end_epoch("val"),
    "on_test_epoch_end": lambda module: module._end_epoch("test"),
    "on_save_checkpoint": lambda module, checkpoint: module._save_best(checkpoint),
    "on_load_checkpoint": lambda module, checkpoint: module._load_best(checkpoint),
}
_CHECKPOINT_KEY = "lightning_metrics_base"


class MetricUpdateError(RuntimeError):
    """A metric failed to update; the message names the stage, the metric and the input shapes."""


class MetricAwareModule(LightningModule):
    """A `LightningModule` that updates, computes, logs, syncs and resets its metrics for you.

    A subclass writes ``forward`` and either passes ``loss_fn`` or overrides ``compute_loss``; it may
    override ``unpack_batch`` (how a batch splits into inputs and target) and ``metric_inputs``
    (what the metrics receive, e.g. an argmax). It should not call ``update``, ``compute``,
    ``reset`` or ``self.log`` on the metrics: the module owns them. In return it gets
    ``training_step``, ``validation_step``, ``test_step`` and ``predict_step``; one independent
    metric collection per stage and dataloader; ``{stage}/loss`` and ``{stage}/{metric}`` logged
    once per epoch with values over every sample of the epoch (over all processes under DDP);
    and ``epoch_metrics`` with every computed value, non-scalar ones included. Epoch and
    checkpoint hooks a subclass overrides keep working without ``super()``: the module's own work
    runs first.

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
            metric's own ``plot()`` at epoch end and send them to every logger that accepts figures
            (TensorBoard, loggers with ``log_image``); needs matplotlib, and is skipped without it.

    Raises:
        TypeError: a bad ``metrics`` container or value (see `build_metrics`), or a bad option type.
        ValueError: an unknown stage, a bad metric name, or a ``prog_bar``/``track_best`` name
            that is not a metric of the module.
        ImportError: a spec whose class cannot be imported.

    Example:
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
        ['train/acc', 'train/loss', 'val/acc', 'val/loss']
    """

    def __init__(
        self,
        metrics: MetricsConfig = None,
        *,
        loss_fn: LossFn | None = None,
        stages: Sequence[str] = STAGES,
        log_sep: str = "/",
        prog_bar: Sequence[str] = ("loss",),
        log_train_step: bool = False,
        track_best: Sequence[str] = (),
        log_figures: bool = True,
    ) -> None:
        super().__init__()
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"Expected `loss_fn` to be callable `(preds, target) -> loss`, but got {loss_fn!r}.")
        if not isinstance(log_sep, str) or not log_sep or "." in log_sep:
            raise ValueError(f"Expected `log_sep` to be a non-empty string without '.', but got {log_sep!r}.")
        self._metric_store = MetricStore(build_metrics(metrics, stages))
        self.loss_fn = loss_fn
        self.log_sep = log_sep
        self.log_train_step = bool(log_train_step)
        self.log_figures = bool(log_figures)
        self.prog_bar = frozenset(_check_names(prog_bar, "prog_bar", self._metric_names()))
        self.track_best = tuple(_check_names(track_best, "track_best", self._metric_names("val")))
        self._best_direction = {name: self._higher_is_better(name) for name in self.track_best}
        self._loss_in_prog_bar = "loss" in self.prog_bar
        self._loss_step_in_prog_bar = self.log_train_step and self._loss_in_prog_bar
        self._metric_step_in_prog_bar = self.log_train_step and bool(
            self.prog_bar & (self._metric_names("train") - {"loss"})
        )
        self.best_values: dict[str, float] = {}
        self.epoch_metrics: dict[str, Tensor] = {}
        self._loss_names = {stage: f"{stage}{log_sep}loss" for stage in STAGES}
        self._loss_sums: dict[int, list[Tensor]] = {}
        self._padding_warned: set[tuple[str, int]] = set()
        self._quiet_names: set[str] = set()

    # ------------------------------------------------------------------ hooks a subclass overrides

    def compute_loss(self, preds: Any, target: Any) -> Tensor:
        """Return the loss of a batch; calls ``loss_fn`` by default.

        Raises:
            NotImplementedError: when no ``loss_fn`` was given and the subclass did not override it.
        """
        if self.loss_fn is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no loss: implement `compute_loss(self, preds, target)`"
                " or pass `loss_fn=` to `MetricAwareModule.__init__`."
            )
        return self.loss_fn(preds, target)

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

        ``preds`` and ``target`` go through ``metric_inputs`` first. With ``log_train_step`` the train
        values of this batch are logged as ``train/{name}_step`` on the steps whose values reach the
        loggers (every ``log_every_n_steps``), or on every step for names in ``prog_bar``.
        Epoch-end compute, logging and reset happen on their own.

        Raises:
            MetricUpdateError: a metric rejected the inputs; the message names the stage and metric.
        """
        self._update(stage, preds, target, dataloader_idx, stage == "train" and self._train_values_wanted())

    # ------------------------------------------------------------------ Lightning epoch hooks

    def on_train_epoch_start(self) -> None:
        """Called when the train epoch begins; resets the train metrics."""
        self._start_epoch("train")

    def on_validation_epoch_start(self) -> None:
        """Called when the validation epoch begins; resets the validation metrics."""
        self._start_epoch("val")

    def on_test_epoch_start(self) -> None:
        """Called when the test epoch begins; resets the test metrics."""
        self._start_epoch("test")

    def on_train_epoch_end(self) -> None:
        """Called when the train epoch ends; computes, logs and resets the train metrics."""
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Called when the validation epoch ends; computes, logs and resets the validation metrics."""
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        """Called when the test epoch ends; computes, logs and resets the test metrics."""
        self._end_epoch("test")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook, own_work in _OWN_WORK.items():
            user_hook = cls.__dict__.get(hook)
            if callable(user_hook) and not getattr(user_hook, "_runs_own_work", False):
                setattr(cls, hook, _after_own_work(user_hook, own_work))

    # ------------------------------------------------------------------ internals

    def _step(self, stage: str, batch: Any, dataloader_idx: int) -> Tensor:
        inputs, target = self.unpack_batch(batch)
        preds = self(inputs)
        loss = self.compute_loss(preds, target)
        self._record(stage, loss, preds, target, dataloader_idx)
        return loss

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _record(self, stage: str, loss: Tensor, preds: Any, target: Any, dataloader_idx: int) -> None:
        # Runs outside any compiled region: `self.log` cannot be traced.
        batch_size = _batch_size(target)
        loss = loss.detach()
        self.log(
            self._loss_names[stage],
            loss,
            on_step=False,
            on_epoch=True,
            batch_size=batch_size,
            sync_dist=True,
            prog_bar=self._loss_in_prog_bar,
        )
        step_values = stage == "train" and self._train_values_wanted()
        if step_values or (stage == "train" and self._loss_step_in_prog_bar):
            self.log(
                f"{self._loss_names[stage]}_step",
                loss,
                on_step=True,
                on_epoch=False,
                prog_bar=self._loss_step_in_prog_bar,
            )
        if stage == "val" and "loss" in self.track_best and batch_size is not None:
            sums = self._loss_sums.setdefault(
                dataloader_idx, [torch.zeros((), dtype=torch.float64, device=loss.device)] * 2
            )
            sums[0] = sums[0] + loss.double() * batch_size
            sums[1] = sums[1] + batch_size
        self._update(stage, preds.detach() if isinstance(preds, Tensor) else preds, target, dataloader_idx, step_values)

    def _update(self, stage: str, preds: Any, target: Any, dataloader_idx: int, step_values: bool) -> None:
        collection = self._metric_store.get(stage, dataloader_idx)
        if collection is None:
            return
        preds, target = self.metric_inputs(preds, target)
        # low-precision inputs are upcast so metric state accumulates in float32
        preds, target = upcast_low_precision(preds), upcast_low_precision(target)
        try:
            if step_values:
                # `forward` updates the epoch state and returns this batch's values
                self._log_step_values(collection(preds, target))
            else:
                collection.update(preds, target)
        except Exception as err:
            raise self._update_error(stage, dataloader_idx, collection, preds, target, err) from err

    def _train_values_wanted(self) -> bool:
        # Per-step values cost a metric `forward` and a `self.log` each; compute them only when a
        # logger will receive them (Lightning sends step values every `log_every_n_steps`) or when
        # the progress bar shows them.
        if not self.log_train_step:
            return False
        if self._metric_step_in_prog_bar or self._trainer is None or getattr(self._trainer, "fast_dev_run", False):
            return True
        connector = getattr(self._trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    def _log_step_values(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            step_name = f"train{self.log_sep}{name}_step"
            scalars = {step_name: value} if isinstance(value, Tensor) and value.ndim == 0 else None
            if scalars is None:
                scalars, _ = flatten_result(step_name, value, self.log_sep)
            for full_name, scalar in scalars.items():
                self.log(full_name, scalar, on_step=True, on_epoch=False, prog_bar=name in self.prog_bar)

    def _drop_state(self, stage: str) -> None:
        self._metric_store.reset(stage)
        if stage == "val":
            self._loss_sums.clear()

    def _start_epoch(self, stage: str) -> None:
        self._drop_state(stage)
        if stage != "train" and self._trainer is not None and self._metric_store.has(stage):
            self._warn_if_padded(stage)

    def _warn_if_padded(self, stage: str) -> None:
        dataloaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        if not isinstance(dataloaders, (list, tuple)):
            dataloaders = [dataloaders]
        for dataloader_idx, dataloader in enumerate(dataloaders):
            message = padding_warning(dataloader, stage, dataloader_idx)
            if message is not None and (stage, dataloader_idx) not in self._padding_warned:
                self._padding_warned.add((stage, dataloader_idx))
                rank_zero_warn(message, category=UserWarning)

    def _end_epoch(self, stage: str) -> None:
        if self._trainer is not None and self.trainer.sanity_checking:
            self._drop_state(stage)
            return
        several = self._num_dataloaders(stage) > 1
        for dataloader_idx, collection in enumerate(self._metric_store.collections(stage)):
            if not _was_updated(collection):
                continue
            suffix = f"/dataloader_idx_{dataloader_idx}" if several else ""
            computed = compute_collection(collection)
            collection.reset()
            self._log_epoch_values(stage, computed, suffix)
        if stage == "val" and self.track_best:
            self._update_best(several)

    def _log_epoch_values(self, stage: str, computed: Mapping[str, tuple[Any, Metric]], suffix: str) -> None:
        draw_on = figure_loggers(self.trainer.loggers) if self.log_figures and self.trainer.is_global_zero else []
        for name, (value, metric) in computed.items():
            full_name = f"{stage}{self.log_sep}{name}"
            if draw_on and wants_figure(value):
                log_figure(draw_on, full_name + suffix, metric, value, self.trainer.global_step)
            scalars, kept = flatten_result(full_name, value, self.log_sep, _labels(metric))
            self._silence_sync_advice(scalar_name + suffix for scalar_name in scalars)
            for scalar_name, scalar in scalars.items():
                self.log(
                    scalar_name + suffix,
                    scalar,
                    on_step=False,
                    on_epoch=True,
                    batch_size=1,
                    add_dataloader_idx=False,
                    prog_bar=name in self.prog_bar,
                )
            self.epoch_metrics.update({key + suffix: tensor.detach().cpu() for key, tensor in kept.items()})

    def _silence_sync_advice(self, names: Iterable[str]) -> None:
        # Lightning advises `sync_dist=True` for epoch values logged under DDP; ours are already
        # synced by torchmetrics, and syncing them again would add one collective per value.
        for name in names:
            if name not in self._quiet_names:
                self._quiet_names.add(name)
                warnings.filterwarnings(
                    "ignore",
                    message=rf"It is recommended to use `self\.log\({re.escape(repr(name))}, \.\.\., sync_dist=True\)`",
                )

    def _update_best(self, several: bool) -> None:
        for name in self.track_best:
            for dataloader_idx in range(max(len(self._metric_store.collections("val")), self._num_dataloaders("val"))):
                suffix = f"/dataloader_idx_{dataloader_idx}" if several else ""
                value = self._epoch_value(name, dataloader_idx, suffix)
                if value is None:
                    continue
                best_name = f"val{self.log_sep}{name}_best{suffix}"
                best = self.best_values.get(best_name)
                higher = self._best_direction[name]
                if best is None or (value > best if higher else value < best):
                    self.best_values[best_name] = value
                self._silence_sync_advice([best_name])
                self.log(best_name, self.best_values[best_name], on_epoch=True, add_dataloader_idx=False, batch_size=1)

    def _epoch_value(self, name: str, dataloader_idx: int, suffix: str) -> float | None:
        if name != "loss":
            value = self.epoch_metrics.get(f"val{self.log_sep}{name}{suffix}")
            return None if value is None or value.ndim != 0 else float(value)
        sums = self._loss_sums.pop(dataloader_idx, None)
        if sums is None:
            return None
        total, count = (self.trainer.strategy.reduce(s, reduce_op="sum") for s in sums)
        return float(total / count)

    def _num_dataloaders(self, stage: str) -> int:
        if self._trainer is None or stage == "train":
            return 1
        batches = self.trainer.num_val_batches if stage == "val" else self.trainer.num_test_batches
        return len(batches)

    def _metric_names(self, stage: str | None = None) -> set[str]:
        stages = STAGES if stage is None else (stage,)
        names = {"loss"}
        for name_stage in stages:
            collection = self._metric_store.get(name_stage, 0)
            if collection is not None:
                names.update(str(key) for key in collection.keys(keep_base=False))
        return names

    def _higher_is_better(self, name: str) -> bool:
        if name == "loss":
            return False
        val = self._metric_store.get("val", 0)
        assert val is not None  # _check_names only admits val metric names
        higher = val[name].higher_is_better
        if higher is None:
            raise ValueError(
                f"track_best: metric {name!r} ({type(val[name]).__name__}) does not say whether higher is better;"
                " remove it from `track_best`."
            )
        return bool(higher)

    def _update_error(
        self, stage: str, dataloader_idx: int, collection: MetricCollection, preds: Any, target: Any, err: Exception
    ) -> MetricUpdateError:
        # Find which metric fails by updating them one at a time; their state is lost anyway.
        failing = "?"
        for name, metric in collection.items(keep_base=False, copy_state=False):
            try:
                metric.update(preds, target)
            except Exception:
                failing = name
                break
        return MetricUpdateError(
            f"{stage} metric {failing!r} failed to update (dataloader {dataloader_idx}) with preds of"
            f" {_describe(preds)} and target of {_describe(target)}: {err}"
            " Check `metric_inputs()` and the metric's arguments (e.g. `num_classes`)."
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when saving a checkpoint; stores the best validation values of ``track_best``."""
        self._save_best(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when loading a checkpoint; restores the best validation values of ``track_best``."""
        self._load_best(checkpoint)

    def _save_best(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[_CHECKPOINT_KEY] = {"best_values": dict(self.best_values)}

    def _load_best(self, checkpoint: dict[str, Any]) -> None:
        self.best_values.update(checkpoint.get(_CHECKPOINT_KEY, {}).get("best_values", {}))

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Save ``__init__`` arguments as hyperparameters; warns when they hold `Metric` objects.

        Metric objects in the hyperparameters end up pickled in every checkpoint, and
        ``load_from_checkpoint`` (with ``torch.load``'s default ``weights_only=True``) cannot
        restore them. Pass metrics as spec dicts instead, or ``ignore=["metrics"]``.
        """
        if frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        for key in [key for key, value in self.hparams.items() if holds_metric_objects(value)]:
            warnings.warn(
                f"Hyperparameter {key!r} holds torchmetrics Metric objects: checkpoints then pickle them and"
                " `load_from_checkpoint` cannot restore them with `torch.load(weights_only=True)`."
                " Pass metrics as spec dicts ({'class_path': 'torchmetrics.classification.MulticlassAccuracy',"
                f" 'init_args': {{...}}}}) or call `self.save_hyperparameters(ignore=[{key!r}])`.",
                UserWarning,
                stacklevel=2,
            )


def _after_own_work(user_hook: Callable[..., None], own_work: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(user_hook)
    def hook(self: MetricAwareModule, *args: Any, **kwargs: Any) -> None:
        own_work(self, *args, **kwargs)
        user_hook(self, *args, **kwargs)

    hook._runs_own_work = True  # type: ignore[attr-defined]
    return hook


def _check_names(names: Sequence[str], option: str, known: set[str]) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"Expected `{option}` to be a sequence of names, but got {names!r}.")
    for name in names:
        if name not in known:
            raise ValueError(f"{option}: {name!r} is not a metric of this module; known: {sorted(known)}.")
    return list(names)


def _was_updated(collection: MetricCollection) -> bool:
    return any(metric.update_called for metric in collection.values(copy_state=False))


def _labels(metric: Metric) -> Sequence[str] | None:
    labels = getattr(metric, "labels", None)
    return [str(label) for label in labels] if isinstance(labels, Sequence) and not isinstance(labels, str) else None


def _batch_size(target: Any) -> int | None:
    if isinstance(target, Tensor):
        return int(target.shape[0]) if target.ndim else 1
    return len(target) if isinstance(target, Sized) else None


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"type {type(value).__name__}"
