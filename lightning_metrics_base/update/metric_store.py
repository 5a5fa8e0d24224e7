"""The container that owns every metric of a module: one collection per stage and dataloader.

It speaks the metric protocol for all of them: `MetricStore.update` feeds a batch (and its loss) to a
stage's dataloader, `MetricStore.compute_epoch` returns that dataloader's epoch values, and
`MetricStore.reset` starts a stage afresh. It also keeps metric state out of checkpoints and above
float32 when the module is cast to a low-precision dtype.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from lightning_metrics_base._internals.torchmetrics import (
    dtype_of,
    members,
    set_dtype,
    set_sync_requested,
    state_defaults,
    unwrapped_compute,
)
from lightning_metrics_base.configuration.heads import Heads, StageMetrics
from lightning_metrics_base.report.errors import MetricUpdateError, compute_error, update_error
from lightning_metrics_base.report.naming import address
from lightning_metrics_base.update.buffering import DEFAULT_BUFFER_BYTES, UpdateBuffer, failing_metric, tensor_bytes
from lightning_metrics_base.update.sync import compute_collection
from lightning_metrics_base.update.trees import map_tensors

_LOW_PRECISION = (torch.float16, torch.bfloat16)

Reduce = Callable[[Tensor], Tensor]
"""Sums a tensor across processes (identity on one process)."""


@dataclass
class EpochValues:
    """What one stage's dataloader computed over an epoch.

    Attributes:
        metrics: ``{metric name: (result, metric)}``; empty when no metric saw a batch.
        losses: ``{"loss": mean, component: mean, ...}``, sample-weighted over every process; empty
            when no loss was recorded.
    """

    metrics: dict[str, tuple[Any, Metric]] = field(default_factory=dict)
    losses: dict[str, Tensor] = field(default_factory=dict)


class MetricStore(nn.Module):
    """Holds one `MetricCollection` per stage and per dataloader, and keeps them safe.

    - Submodules, so the metrics move with the module to a device and are seen by DDP.
    - Out of ``state_dict()``: checkpoints carry weights only and load strictly into a module
      with a different metric set, whatever buffers or submodules the metrics have.
    - Float metric state never drops below float32 when the module is cast to a low-precision
      dtype (``precision="bf16-true"`` calls ``module.to(torch.bfloat16)``), and low-precision
      inputs are upcast before they reach a metric.
    - Dataloader ``i > 0`` gets a fresh clone of the stage's collection on first use.

    Args:
        collections: the `Heads` of each stage (one collection per output; a single-output model has
            one unnamed head); each output's metrics see only that output of the predictions and targets.
        step_values: keep a twin of the train collection that computes each batch's own values.
        buffer_batches: feed eligible metrics the concatenation of up to this many batches in one
            update per compute group (see `UpdateBuffer`); ``1`` updates every batch.
        buffer_bytes: the bound on buffered inputs per stage and dataloader (a multi-output model's
            outputs share it); a flush allocates no copy of them.

    Examples:
        >>> import torch
        >>> from torchmetrics import MetricCollection
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> store = MetricStore({"val": Heads.of(MetricCollection({"mae": MeanAbsoluteError()}))})
        >>> store.get("val", 1) is store.get("val", 0), store.get("train", 0)
        (False, None)
        >>> store.update("val", 0, torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]))
        >>> store.add_loss("val", 0, {"loss": torch.tensor(0.5)}, 2)
        >>> values = store.compute_epoch("val", 0)
        >>> float(values.metrics["mae"][0]), float(values.losses["loss"])
        (1.0, 0.5)
        >>> list(store.state_dict())
        []
    """

    def __init__(
        self,
        collections: Mapping[str, Heads],
        step_values: bool = False,
        buffer_batches: int = 1,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        super().__init__()
        self.buffer_batches, self.buffer_bytes = buffer_batches, buffer_bytes
        self._update_buffers: dict[tuple[str, int, str | None], UpdateBuffer] = {}
        units = dict(collections)
        # ModuleDict keys must not clash with nn.Module attributes such as `train`.
        self.stages = nn.ModuleDict({_stage_key(stage): nn.ModuleList([unit]) for stage, unit in units.items()})
        train = units.get("train")
        self.step_twin = _without_sync(train.fresh()) if step_values and train is not None else None
        self._twin_name_cache: dict[str | None, list[str]] = {}
        self._loss_sums: dict[tuple[str, int], dict[str, Tensor]] = {}
        self._counts: dict[tuple[str, int], int] = {}
        self._pending: set[tuple[str, int]] = set()
        self._load_prefix = ""
        self._resting_mode = self.training  # the mode the store returns to after an evaluation
        self.register_load_state_dict_post_hook(_drop_metric_keys)  # type: ignore[no-untyped-call]

    def has(self, stage: str) -> bool:
        """Tell whether ``stage`` has metrics."""
        return _stage_key(stage) in self.stages

    def get(self, stage: str, dataloader_idx: int = 0) -> StageMetrics | None:
        """The metrics of ``stage`` for ``dataloader_idx`` as users read them (`Heads.public`), or ``None``."""
        heads = self.heads(stage, dataloader_idx)
        return None if heads is None else heads.public()

    def heads(self, stage: str, dataloader_idx: int = 0) -> Heads | None:
        """Return the heads of ``stage`` for ``dataloader_idx`` (a copy is made for a new dataloader), or ``None``."""
        key = _stage_key(stage)
        if key not in self.stages:
            return None
        per_loader: list[Heads] = self.stages[key]  # type: ignore[assignment]
        while len(per_loader) <= dataloader_idx:
            # Made during an evaluation (the sanity check), a copy takes the mode its siblings return
            # to afterwards; Lightning restores only the modes it captured before the evaluation.
            per_loader.append(per_loader[0].fresh().train(self._resting_mode))
        return per_loader[dataloader_idx]

    def read(self, stage: str, dataloader_idx: int = 0) -> StageMetrics | None:
        """What users read of ``stage`` (see `Heads.public`), after feeding the buffered batches: whole state."""
        self.flush(stage, dataloader_idx)
        return self.get(stage, dataloader_idx)

    def heads_per_dataloader(self, stage: str) -> list[Heads]:
        """Every dataloader's metrics of ``stage``, indexed by dataloader (empty if the stage has no metrics)."""
        key = _stage_key(stage)
        return list(self.stages[key]) if key in self.stages else []  # type: ignore[call-overload]

    def metrics(self) -> Iterator[Metric]:
        """Every metric held, in every stage and dataloader."""
        return _all_metrics(self)

    def update(
        self, stage: str, dataloader_idx: int, preds: Any, target: Any, step_values: bool = False
    ) -> dict[str, tuple[Any, Metric]] | None:
        """Feed one batch to the metrics of ``stage`` and dataloader.

        Args:
            stage: the stage.
            dataloader_idx: the dataloader the batch comes from.
            preds: what the metrics receive as predictions (already detached).
            target: what the metrics receive as target.
            step_values: also return this batch's own values (train only, needs ``step_values`` at
                construction).

        Returns:
            ``{metric name: (this batch's result, metric)}`` when ``step_values``, else ``None``.

        Raises:
            MetricUpdateError: a metric rejected the inputs; the message names stage, dataloader and metric.
        """
        heads = self.heads(stage, dataloader_idx)
        if heads is None:
            return None
        self._pending.add((stage, dataloader_idx))
        # The twin takes the batch alone: its result is the batch's own value, whatever the metric
        # (wrappers such as MinMaxMetric lose their state in `forward`, so it is never used), and its
        # state is merged into the epoch's where states add up (one update per batch).
        twins = (
            dict(self.step_twin.heads()) if step_values and self.step_twin is not None and stage == "train" else None
        )
        for output, collection in heads.heads():
            output_preds, output_target = _route(preds, output), _route(target, output)
            on_error = _update_error_factory(stage, dataloader_idx, collection, output)
            buffer = self._buffer(stage, dataloader_idx, output)
            try:
                if twins is None:
                    buffer.add(collection, output_preds, output_target, on_error)
                else:
                    buffer.add_through(collection, twins[output], output_preds, output_target, on_error)
            except MetricUpdateError:
                raise
            except Exception as err:
                raise on_error(output_preds, output_target, err) from err
        if twins is None:
            return None
        values: dict[str, tuple[Any, Metric]] = {}
        for output, twin in twins.items():
            # this process's batch alone: no sync, so each metric computes the plain way
            named = zip(self._twin_names(output, twin), (metric for _, metric in members(twin)), strict=True)
            computed = {name: (_step_value(metric), metric) for name, metric in named}
            values.update({address(output, name): item for name, item in computed.items()})
        return values

    def _twin_names(self, output: str | None, twin: MetricCollection) -> list[str]:
        # the names the collection gives its metrics (prefix and postfix included), read once
        if output not in self._twin_name_cache:
            self._twin_name_cache[output] = [str(name) for name in twin.keys(keep_base=False)]
        return self._twin_name_cache[output]

    def flush(self, stage: str, dataloader_idx: int | None = None) -> None:
        """Feed the buffered batches of ``stage`` (one dataloader, or all) to their metrics now."""
        for (buffer_stage, index, output), buffer in self._update_buffers.items():
            if buffer_stage != stage or dataloader_idx not in (None, index):
                continue  # another stage's buffer: its dataloader index must not make this stage a copy
            heads = self.heads(stage, index)
            if heads is not None:
                collection = dict(heads.heads())[output]
                buffer.flush(collection, _update_error_factory(stage, index, collection, output))

    def _buffer(self, stage: str, dataloader_idx: int, output: str | None) -> UpdateBuffer:
        key = (stage, dataloader_idx, output)
        if key not in self._update_buffers:
            # the bound holds per stage and dataloader: a multi-output model's outputs share it
            heads = self.heads(stage, dataloader_idx)
            share = self.buffer_bytes // max(1, len(heads.heads()) if heads is not None else 1)
            self._update_buffers[key] = UpdateBuffer(self.buffer_batches, share)
        return self._update_buffers[key]

    def add_loss(self, stage: str, dataloader_idx: int, losses: Mapping[str, Tensor], count: int) -> None:
        """Add one batch's loss (and components) with its weight ``count`` to the epoch's sums."""
        key = (stage, dataloader_idx)
        sums = self._loss_sums.setdefault(key, {})
        for name, value in losses.items():
            if name in sums:
                sums[name].add_(value.detach(), alpha=count)  # in float64, the sum's dtype
            else:
                sums[name] = value.detach().to(torch.float64) * count
        self._counts[key] = self._counts.get(key, 0) + count
        self._pending.add(key)

    def pending(self, stage: str) -> list[int]:
        """The dataloaders of ``stage`` that saw a batch since their values were last computed."""
        return sorted(index for pending_stage, index in self._pending if pending_stage == stage)

    def concatenated_bytes(self, stage: str, dataloader_idx: int) -> dict[str, int]:
        """The bytes each metric of ``stage`` and dataloader keeps in states that grow with every sample.

        Such states (lists of tensors, concatenated across processes: AUROC or average precision with
        ``thresholds=None``, retrieval metrics) are gathered whole by every process at compute.

        Examples:
            >>> import torch
            >>> from torchmetrics import MetricCollection
            >>> from torchmetrics.classification import BinaryAUROC
            >>> store = MetricStore({"val": Heads.of(MetricCollection({"auroc": BinaryAUROC()}))}, buffer_batches=1)
            >>> store.update("val", 0, torch.rand(1000), torch.randint(0, 2, (1000,)))
            >>> store.concatenated_bytes("val", 0)
            {'auroc': 12000}
        """
        self.flush(stage, dataloader_idx)
        heads = self.heads(stage, dataloader_idx)
        sizes: dict[str, int] = {}
        for output, collection in heads.heads() if heads is not None else []:
            for name, metric in collection.items(keep_base=False, copy_state=False):
                grown = sum(
                    tensor_bytes(item)
                    for state in state_defaults(metric)
                    if isinstance(getattr(metric, state), list)
                    for item in getattr(metric, state)
                )
                if grown:
                    sizes[address(output, str(name))] = grown
        return sizes

    def compute_epoch(self, stage: str, dataloader_idx: int, reduce: Reduce | None = None) -> EpochValues:
        """Compute the epoch values of ``stage`` and dataloader, over every process.

        The metric state stays as it is until `reset`, so a user's hook may still read or log the
        metric objects; the cached results are what they then get.

        Args:
            stage: the stage.
            dataloader_idx: the dataloader.
            reduce: sums a tensor across processes, for the loss (identity when omitted).

        Returns:
            The metric results and the sample-weighted loss means.

        Raises:
            MetricComputeError: a metric's compute failed; the message names stage, dataloader and metric.
        """
        key = (stage, dataloader_idx)
        self.flush(stage, dataloader_idx)
        heads = self.heads(stage, dataloader_idx)
        self._pending.discard(key)
        values = EpochValues()
        for output, collection in heads.heads() if heads is not None else []:
            if any(metric.update_count for metric in _all_metrics(collection)):
                on_error = functools.partial(compute_error, stage, dataloader_idx, output=output)
                computed = compute_collection(collection, on_error)
                values.metrics.update({address(output, name): item for name, item in computed.items()})
        sums = self._loss_sums.get(key)
        if sums:
            total = next(iter(sums.values()))
            count = torch.tensor(self._counts[key], dtype=torch.float64, device=total.device)
            stacked = torch.stack([*sums.values(), count])
            if reduce is not None:
                stacked = reduce(stacked)
            values.losses = {name: stacked[index] / stacked[-1] for index, name in enumerate(sums)}
        return values

    def reset(self, stage: str) -> None:
        """Drop the state of every collection and the loss sums of ``stage``."""
        for heads in self.heads_per_dataloader(stage):
            for _, collection in heads.heads():
                collection.reset()
        for (buffer_stage, _, _), buffer in self._update_buffers.items():
            if buffer_stage == stage:
                buffer.clear()
        for key in [key for key in self._loss_sums if key[0] == stage]:
            del self._loss_sums[key]
            del self._counts[key]
        self._pending = {key for key in self._pending if key[0] != stage}

    def train(self, mode: bool = True) -> MetricStore:
        """Set the mode like `torch.nn.Module.train`, remembering the mode an evaluation will return to."""
        self._resting_mode = mode or self.training
        return super().train(mode)

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """Return ``destination`` untouched: metric state is never checkpointed with the weights."""
        return OrderedDict() if destination is None else destination

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Remember where we sit so the post hook can drop our keys from the incompatible keys.
        self._load_prefix = prefix

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MetricStore:
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        for metric in self.metrics():
            _keep_full_precision(metric)
        return self


def upcast_low_precision(value: Any) -> Any:
    """Return float16/bfloat16 tensors (also inside any container, see `map_tensors`) as float32; others unchanged.

    Examples:
        >>> import torch
        >>> upcast_low_precision([torch.zeros(1, dtype=torch.bfloat16)])[0].dtype
        torch.float32
    """
    return map_tensors(value, _upcast)


def _upcast(value: Tensor) -> Tensor:
    return value.float() if value.dtype in _LOW_PRECISION else value


def _update_error_factory(stage: str, dataloader_idx: int, collection: MetricCollection, output: str | None) -> Any:
    # what the update path knows of a failure (the inputs, the batch, maybe the metric) made into an error
    def make(
        preds: Any, target: Any, err: Exception, batch: int | None = None, *, shown: Any = None
    ) -> MetricUpdateError:
        metric = address(output, failing_metric(collection, preds, target))
        return update_error(stage, dataloader_idx, metric, preds if shown is None else shown, target, err, batch)

    return make


def _route(value: Any, output: str | None) -> Any:
    return upcast_low_precision(value if output is None else value[output])


def _all_metrics(holder: nn.Module) -> Iterator[Metric]:
    # Every metric under `holder`, the ones inside wrappers included: wrappers do not count their
    # updates, their children do.
    return (module for module in holder.modules() if isinstance(module, Metric))


def _step_value(metric: Metric) -> Any:
    # The per-step copy's result: no sync, no cache and always just updated (see `_without_sync`), so
    # torchmetrics' wrapper around `compute` leaves only its squeeze of one-element tensors to do. The
    # result may share the copy's memory until its next reset; `self.log` copies what it logs.
    return map_tensors(unwrapped_compute(metric), _squeeze_one_element)


def _squeeze_one_element(value: Tensor) -> Tensor:
    return value.squeeze() if value.numel() == 1 else value


def _without_sync(unit: Any) -> Any:
    # the step twin: one process's batch, computed once per step (nothing to sync, nothing to cache)
    for metric in _all_metrics(unit):
        metric.sync_on_compute = False
        metric.compute_with_cache = False
        set_sync_requested(metric, False)
    return unit


def _stage_key(stage: str) -> str:
    return f"{stage}_metrics"


def _drop_metric_keys(store: nn.Module, incompatible_keys: Any) -> None:
    prefix = store._load_prefix
    for keys in (incompatible_keys.missing_keys, incompatible_keys.unexpected_keys):
        keys[:] = [key for key in keys if not key.startswith(prefix)]


def _keep_full_precision(metric: Metric) -> None:
    defaults = state_defaults(metric)
    for name, default in defaults.items():
        defaults[name] = upcast_low_precision(default)
        setattr(metric, name, upcast_low_precision(getattr(metric, name)))
    if dtype_of(metric) in _LOW_PRECISION:
        set_dtype(metric, torch.float32)
