"""The container that owns every metric of a module: one collection per stage and dataloader."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from lightning_metrics_base.config import fresh_copy

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class MetricStore(nn.Module):
    """Holds one `MetricCollection` per stage and per dataloader, and keeps them safe.

    - Submodules, so the metrics move with the module to a device and are seen by DDP.
    - Out of ``state_dict()``: checkpoints carry weights only and load strictly into a module
      with a different metric set, whatever buffers or submodules the metrics have.
    - Float metric state never drops below float32 when the module is cast to a low-precision
      dtype (``precision="bf16-true"`` calls ``module.to(torch.bfloat16)``).
    - Dataloader ``i > 0`` gets a fresh clone of the stage's collection on first use.

    Example:
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> store = MetricStore({"val": MetricCollection({"mae": MeanAbsoluteError()})})
        >>> store.get("val", 1) is store.get("val", 0), store.get("train", 0)
        (False, None)
        >>> list(store.state_dict())
        []
    """

    def __init__(self, collections: Mapping[str, MetricCollection]) -> None:
        super().__init__()
        # ModuleDict keys must not clash with nn.Module attributes such as `train`.
        self.stages = nn.ModuleDict(
            {_stage_key(stage): nn.ModuleList([collection]) for stage, collection in collections.items()}
        )
        self._cache: dict[tuple[str, int], MetricCollection] = {}
        self._load_prefix = ""
        self.register_load_state_dict_post_hook(_drop_metric_keys)  # type: ignore[no-untyped-call]

    def has(self, stage: str) -> bool:
        """Tell whether ``stage`` has metrics."""
        return _stage_key(stage) in self.stages

    def get(self, stage: str, dataloader_idx: int = 0) -> MetricCollection | None:
        """Return the collection of ``stage`` for ``dataloader_idx``, or ``None`` if the stage has no metrics."""
        collection = self._cache.get((stage, dataloader_idx))
        if collection is not None:
            return collection
        key = _stage_key(stage)
        if key not in self.stages:
            return None
        per_loader: nn.ModuleList = self.stages[key]  # type: ignore[assignment]
        while len(per_loader) <= dataloader_idx:
            per_loader.append(fresh_copy(per_loader[0]))  # type: ignore[arg-type]
        collection = per_loader[dataloader_idx]  # type: ignore[assignment]
        self._cache[(stage, dataloader_idx)] = collection  # type: ignore[assignment]
        return collection

    def collections(self, stage: str) -> list[MetricCollection]:
        """Every collection of ``stage``, indexed by dataloader (empty if the stage has no metrics)."""
        key = _stage_key(stage)
        return list(self.stages[key]) if key in self.stages else []  # type: ignore[call-overload]

    def metrics(self) -> Iterator[Metric]:
        """Every metric held, in every stage and dataloader."""
        return (module for module in self.modules() if isinstance(module, Metric))

    def reset(self, stage: str) -> None:
        """Reset every collection of ``stage``."""
        for collection in self.collections(stage):
            collection.reset()

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


def compute_collection(collection: MetricCollection) -> dict[str, tuple[Any, Metric]]:
    """Compute every metric of ``collection``, syncing each compute group's state once.

    Metrics of one compute group (accuracy, precision, recall and F1 of one task) share their
    state; torchmetrics would gather it across processes once per metric. Here the group's first
    metric gathers it, every member computes from the gathered state without syncing again, and
    the local state is restored so accumulation can go on.

    Args:
        collection: the collection to compute.

    Returns:
        ``{name: (result, metric)}`` with the names the collection gives its metrics.

    Example:
        >>> import torch
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassRecall
        >>> collection = MetricCollection({"acc": MulticlassAccuracy(3), "recall": MulticlassRecall(3)})
        >>> collection.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        >>> {name: round(float(value), 4) for name, (value, _) in compute_collection(collection).items()}
        {'acc': 0.8333, 'recall': 0.8333}
    """
    metrics = dict(collection.items(keep_base=True, copy_state=False))
    names = {base: str(full) for base, full in zip(metrics, collection.keys(keep_base=False), strict=True)}
    groups = [list(group) for group in collection.compute_groups.values()] if collection._groups_checked else []
    grouped = {name for group in groups for name in group}
    groups += [[name] for name in metrics if name not in grouped]
    results: dict[str, tuple[Any, Metric]] = {}
    for group in groups:
        synced = _gather_state(metrics[group[0]])
        for name in group:
            results[names[name]] = (_compute_from(metrics[name], synced), metrics[name])
    collection._compute_groups_create_state_ref()
    return {names[name]: results[names[name]] for name in metrics}


def _gather_state(leader: Metric) -> dict[str, Any] | None:
    # The synced state of a group, or None when there is nothing to sync (one process, or a metric
    # built with sync_on_compute=False).
    leader.sync(
        dist_sync_fn=leader.dist_sync_fn,
        process_group=leader.process_group,
        should_sync=leader._to_sync,
        distributed_available=leader.distributed_available_fn,
    )
    if not leader._is_synced:
        return None
    synced = {name: getattr(leader, name) for name in leader._defaults}
    leader.unsync()
    return synced


def _compute_from(metric: Metric, synced: dict[str, Any] | None) -> Any:
    local = {name: getattr(metric, name) for name in synced} if synced is not None else {}
    to_sync = metric._to_sync
    try:
        for name, value in (synced or {}).items():
            setattr(metric, name, value)
        metric._to_sync = False
        return metric.compute()
    finally:
        metric._to_sync = to_sync
        for name, value in local.items():
            setattr(metric, name, value)


def _stage_key(stage: str) -> str:
    return f"{stage}_metrics"


def _drop_metric_keys(store: nn.Module, incompatible_keys: Any) -> None:
    prefix = store._load_prefix
    for keys in (incompatible_keys.missing_keys, incompatible_keys.unexpected_keys):
        keys[:] = [key for key in keys if not key.startswith(prefix)]


def upcast_low_precision(value: Any) -> Any:
    """Return float16/bfloat16 tensors (also inside a list) as float32; anything else unchanged."""
    if isinstance(value, Tensor) and value.dtype in _LOW_PRECISION:
        return value.float()
    if isinstance(value, list):
        return [upcast_low_precision(item) for item in value]
    return value


def _keep_full_precision(metric: Metric) -> None:
    for name, default in metric._defaults.items():
        metric._defaults[name] = upcast_low_precision(default)
        setattr(metric, name, upcast_low_precision(getattr(metric, name)))
    if metric._dtype in _LOW_PRECISION:
        metric._dtype = torch.float32
