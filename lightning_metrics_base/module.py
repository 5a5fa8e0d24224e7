"""`MetricAwareModule`: a `LightningModule` whose metrics are updated, logged, synced and reset for you.

This file holds what a user calls: the constructor, the steps, `update_metrics`, `log`, the stage
properties and `save_hyperparameters`. What Lightning calls at the edges of epochs, runs and
checkpoints (the hooks) is the base class `ModuleHooks` in ``hooks.py``. The work itself is the
engine's (`MetricEngine`, ``engine.py``): this file hands it each batch and passes what it returns to
``hooks.py``, which alone logs and reads the trainer (see the Architecture page).
"""

from __future__ import annotations

import copy
import inspect
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from lightning_metrics_base._internals.lightning import HOOK_NAME_ATTRIBUTE, hparams_initial
from lightning_metrics_base.batch import BatchHooks, check_model_outputs, loss_parts
from lightning_metrics_base.configuration.config import STAGES, MetricsConfig, build_options, plain_hparams
from lightning_metrics_base.configuration.heads import StageMetrics
from lightning_metrics_base.configuration.specs import hparams_as_specs
from lightning_metrics_base.engine import MetricEngine
from lightning_metrics_base.hooks import ModuleHooks
from lightning_metrics_base.report.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.report.figures import FigureSender
from lightning_metrics_base.report.naming import LOSS
from lightning_metrics_base.report.sync_advice import SilencedSyncAdvice
from lightning_metrics_base.update.buffering import DEFAULT_BUFFER_BYTES
from lightning_metrics_base.update.trees import detach

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricUpdateError"]

Step = TypeVar("Step", bound=Callable[..., Any])


def _signature_kept(step: Step) -> Step:
    """Store a step's signature on it, so that `inspect.signature` reads it instead of building it.

    Lightning inspects the steps' signatures at every batch, and `training_step`'s at every `self.log`
    in training; a stored one saves about 8 µs a time (12.5 µs → 4 µs per check here). The stored
    signature is the one Python builds; a subclass's own step is untouched.
    """
    step.__signature__ = inspect.signature(step)  # type: ignore[attr-defined]
    return step


_READ_ONLY = frozenset(
    {
        "train_metrics",
        "val_metrics",
        "test_metrics",
        "best_values",
        "log_sep",
        "buffer_batches",
        "track_best",
        "prog_bar",
        "log_figures",
    }
)
_PROPERTIES = (*sorted(_READ_ONLY), "epoch_metrics")  # `epoch_metrics` may be assigned a dict


def _read_only_message(name: str) -> str:
    if name.endswith("_metrics"):
        stage = name.removesuffix("_metrics")
        return (
            f"`{name}` is read-only: MetricAwareModule builds it from its `metrics` argument, and an assigned"
            f" collection would never be updated or logged. Pass the metrics to `super().__init__(metrics=...)`"
            f" (per stage: `metrics={{{stage!r}: {{...}}, ...}}`)."
        )
    return f"`{name}` is read-only: MetricAwareModule sets it (from its constructor arguments, or as it runs)."


class MetricAwareModule(ModuleHooks, BatchHooks):
    """A `LightningModule` that updates, computes, logs, syncs and resets its metrics for you.

    A subclass writes `forward` and passes `loss_fn` or overrides `compute_loss` (and may override
    `unpack_batch`, `metric_inputs`, `count_samples`). It must not override the steps' metric work or
    call `self.log` with a name the module logs. It gets the steps, metrics per stage and dataloader
    logged once per epoch over every sample of every process, and `epoch_metrics`. Epoch and
    checkpoint hooks it overrides (in the class, a parent or a mixin) need no `super()`: the module's
    work runs first, once per call.

    Args:
        metrics: `{name: Metric or spec}` or a `MetricCollection` (copied for each of `stages`),
            per stage `{"val": {...}, ...}`, or `None`; a spec is `{"class_path": ..., "init_args":
            {...}}` or `{"_target_": ..., **kwargs}`, a bare class name is looked up in torchmetrics.
        loss_fn: `(preds, target) -> loss`, used by the default `compute_loss`.
        stages: the stages a flat dict or collection applies to.
        log_sep: separator between stage and name (`"/"` gives `val/acc`).
        prog_bar: metric names (and/or `"loss"`) shown in the progress bar.
        log_train_step: also log per-step train values as `train/{name}_step`.
        track_best: metric names (or `"loss"`) whose best validation value is logged as `val/{name}_best`
            (only while fitting); `None` for none.
        log_figures: draw results of 2+ dimensions with the metric's `plot()` and send them to loggers
            that take figures: `True` for every stage, `False` for none, or the stages, e.g. `("val", "test")`.
        outputs: the output names of a multi-output model; `metrics` is then declared per output and
            names read `val/cls/acc` (see Multi-output models).
        buffer_batches: feed the inputs of up to this many batches in one update where that gives the same
            values (see How logging works); `1` turns buffering off.

    Attributes:
        epoch_metrics: full logged name to value (detached, on the CPU) of every value computed at the
            latest epoch end of each stage, non-scalar ones included (`epoch_metrics["val/confmat"]`).

    Raises:
        TypeError: a bad `metrics` container or value, or a bad option type.
        ValueError: an unknown stage, a bad metric name, a `prog_bar`/`track_best` name that is
            not a metric of the module, a `track_best` metric without a direction or with several
            values, two sources of one logged name, or a metrics key that is neither an output nor a stage.
        ImportError: a spec whose class cannot be imported.

    Examples:
        >>> import torch, torch.nn.functional as F
        >>> from lightning import Trainer
        >>> from lightning_metrics_base import MetricAwareModule
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

    # what TorchScript must skip besides Lightning's own (each face adds its LightningModule's list)
    UNUSED_BY_TORCHSCRIPT: ClassVar[tuple[str, ...]] = tuple(_PROPERTIES)
    __jit_ignored_attributes__: ClassVar = ["_engine", "_metric_store", "_quiet", "_figures", "_hooks_in_progress"]

    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    """The bound on buffered metric inputs per stage and dataloader (16 MiB; a flush allocates no copy of
    them); a subclass may change it."""

    large_state_bytes: int = 256 * 2**20
    """Above this size per process (256 MiB), a metric state that grows with every sample gets a notice."""

    def __init__(
        self,
        metrics: MetricsConfig = None,
        *,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        stages: Sequence[str] = STAGES,
        log_sep: str = "/",
        prog_bar: Sequence[str] = (LOSS,),
        log_train_step: bool = False,
        track_best: Sequence[str] | None = (),
        log_figures: bool | Sequence[str] = True,
        outputs: Sequence[str] | None = None,
        buffer_batches: int = 16,
    ) -> None:
        super().__init__()
        self._hooks_in_progress: set[str] = set()
        opts = build_options(
            metrics,
            stages=stages,
            loss_fn=loss_fn,
            log_sep=log_sep,
            outputs=outputs,
            buffer_batches=buffer_batches,
            prog_bar=prog_bar,
            track_best=track_best,
            log_figures=log_figures,
        )
        self.loss_fn, self.outputs, self.log_train_step = opts.loss_fn, opts.outputs, bool(log_train_step)
        self._log_sep, self._buffer_batches, self._track_best = opts.log_sep, opts.buffer_batches, opts.track_best
        engine = MetricEngine(
            opts,
            log_train_step=self.log_train_step,
            buffer_bytes=self.buffer_bytes,
            large_state_bytes=self.large_state_bytes,
        )
        self._engine = engine
        self._metric_store = engine.store  # a submodule: the metrics move with the module and DDP sees them
        self._quiet, self._figures = SilencedSyncAdvice(self._face), FigureSender()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == HOOK_NAME_ATTRIBUTE:
            # Lightning sets it around every hook it calls, some 60 times a step; a plain attribute, so
            # `nn.Module.__setattr__`'s checks (about 1.3 µs a call) are skipped, as Lightning's own
            # result metrics skip them. Where it is written is where `nn.Module` would write it.
            self.__dict__[name] = value
            return
        # `nn.Module.__setattr__` stores a module under any name, past a read-only property: a collection
        # assigned to `self.val_metrics` would be kept and never used. Refused with what to do instead.
        if name in _READ_ONLY:
            raise AttributeError(_read_only_message(name))
        super().__setattr__(name, value)

    @property
    def log_sep(self) -> str:
        """The separator between stage and name (read-only: names are reserved at construction)."""
        return self._log_sep

    @property
    def buffer_batches(self) -> int:
        """How many batches are fed to the metrics in one update (read-only)."""
        return self._buffer_batches

    @property
    def track_best(self) -> tuple[str, ...]:
        """The names whose best validation value is logged (read-only)."""
        return self._track_best

    @property
    def prog_bar(self) -> frozenset[str]:
        """The names shown in the progress bar (read-only)."""
        return self._engine.prog_bar

    @property
    def log_figures(self) -> frozenset[str]:
        """The stages whose results of 2+ dimensions are drawn and sent to the loggers (read-only)."""
        return self._engine.log_figures

    @property
    def train_metrics(self) -> StageMetrics | None:
        """The train `MetricCollection` (with ``outputs``: a `ModuleDict` of one per output), or ``None``."""
        return self._engine.metrics("train")

    @property
    def val_metrics(self) -> StageMetrics | None:
        """The validation metrics of dataloader 0, like ``train_metrics``."""
        return self._engine.metrics("val")

    @property
    def test_metrics(self) -> StageMetrics | None:
        """The test metrics of dataloader 0, like ``train_metrics``."""
        return self._engine.metrics("test")

    @property
    def best_values(self) -> dict[str, float]:
        """The best validation values so far of ``track_best``, by logged name (``val/acc_best``)."""
        return self._engine.best.values

    @property
    def epoch_metrics(self) -> dict[str, Tensor]:
        """Full logged name to value (detached, on the CPU) of every value of each stage's latest epoch end.

        Non-scalar ones included (``epoch_metrics["val/confmat"]``). The module updates the dict in place;
        a dict assigned here is the one it updates from then on.
        """
        return self._engine.epoch_metrics

    @epoch_metrics.setter
    def epoch_metrics(self, values: dict[str, Tensor]) -> None:
        self._engine.epoch_metrics = values

    @_signature_kept
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Unpack the batch, run ``forward`` and ``compute_loss``, update and log; return the loss."""
        return self._step("train", batch, 0)

    @_signature_kept
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Like ``training_step``, for validation; each dataloader has its own metrics."""
        return self._step("val", batch, dataloader_idx)

    @_signature_kept
    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Like ``training_step``, for testing; each dataloader has its own metrics."""
        return self._step("test", batch, dataloader_idx)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """Return ``forward`` of the inputs.

        A tensor batch is the input; a one-element tuple or list holds it (a ``TensorDataset`` of inputs
        alone gives those); anything else goes through ``unpack_batch``, and its inputs are used.
        """
        if isinstance(batch, Tensor):
            inputs = batch
        elif isinstance(batch, (tuple, list)) and len(batch) == 1:
            inputs = batch[0]
        else:
            inputs = self.unpack_batch(batch)[0]
        return self(inputs)

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def update_metrics(self, stage: str, preds: Any, target: Any, dataloader_idx: int = 0) -> None:
        """Feed a batch to the metrics of ``stage`` (and dataloader); call it from a step you write yourself.

        ``preds`` and ``target`` are detached, before ``metric_inputs`` and after it; with ``log_train_step``
        this batch's train values are logged as ``train/{name}_step``. The rest happens on its own.

        Raises:
            ValueError: ``stage`` is not a stage; with ``outputs``, an output missing from ``preds`` or ``target``.
            MetricUpdateError: a metric rejected the inputs; the message names the stage and metric.
        """
        if stage not in STAGES:
            raise ValueError(f"update_metrics: unknown stage {stage!r}; the stages are {', '.join(STAGES)}.")
        check_model_outputs(preds, target, self.outputs)
        self._update(stage, preds, target, dataloader_idx)

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """`LightningModule.log`, refusing a name that the module logs itself in this run.

        Raises:
            ValueError: the module logs ``name`` too (a metric's value, the loss, a best value): of two
                values under one name, one would be lost without a word.
        """
        self._engine.claim_user_name(name)
        super().log(name, value, *args, **kwargs)

    # ------------------------------------------------------------------ the rest of the public API

    def save_hyperparameters(self, *args: Any, frame: types.FrameType | None = None, **kwargs: Any) -> None:
        """Save ``__init__`` arguments as hyperparameters, with `Metric` objects written as ``class_path`` specs.

        So ``load_from_checkpoint`` restores the same metric set; a metric whose constructor arguments
        cannot be read back stays an object, with a warning that says what to do instead.
        """
        if frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        super().save_hyperparameters(*args, frame=frame, **kwargs)
        plain = plain_hparams(self.hparams)  # Hydra's containers without `_convert_` become plain ones
        converted, messages = hparams_as_specs(plain)
        plain.update(converted)
        self.hparams.update(plain)
        hparams_initial(self).update(copy.deepcopy(plain))  # what loggers receive
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=2)

    # ------------------------------------------------------------------ internals

    def _step(self, stage: str, batch: Any, dataloader_idx: int) -> Tensor:
        inputs, target = self.unpack_batch(batch)
        preds = self(inputs)
        check_model_outputs(preds, target, self.outputs)
        return self._record(stage, self.compute_loss(preds, target), preds, target, dataloader_idx)  # type: ignore[no-any-return]

    @torch.compiler.disable  # type: ignore[untyped-decorator]
    def _record(self, stage: str, loss: Any, preds: Any, target: Any, dataloader_idx: int) -> Tensor:
        # Runs outside any compiled region: `self.log` cannot be traced.
        losses = loss_parts(loss)
        count = self.count_samples(target)
        self._log_records(self._engine.add_loss(stage, dataloader_idx, losses, count, self._run()))
        self._update(stage, preds, target, dataloader_idx)
        return losses[LOSS]

    def _update(self, stage: str, preds: Any, target: Any, dataloader_idx: int) -> None:
        if not self._engine.has(stage):
            return
        preds, target = self.metric_inputs(detach(preds), detach(target))
        # again: `metric_inputs` may read tensors out of an object that `detach` cannot copy (any class)
        preds, target = detach(preds), detach(target)
        check_model_outputs(preds, target, self.outputs, by="metric_inputs")
        self._log_records(self._engine.update(stage, dataloader_idx, preds, target, self._run()))
