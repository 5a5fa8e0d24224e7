"""The errors a metric raises at run time, rewritten to say where: stage, dataloader, metric, inputs."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torchmetrics import MetricCollection

from lightning_metrics_base.naming import address


class MetricUpdateError(RuntimeError):
    """A metric failed to update; the message names the stage, dataloader, metric and input shapes."""


class MetricComputeError(RuntimeError):
    """A metric failed to compute its epoch value; the message names the stage, dataloader and metric."""


def update_error(
    stage: str,
    dataloader_idx: int,
    collection: MetricCollection,
    preds: Any,
    target: Any,
    err: Exception,
    batch: int | None = None,
    *,
    output: str | None = None,
    shown: Any = None,
    culprit: str | None = None,
) -> MetricUpdateError:
    """Find which metric of ``collection`` rejects ``(preds, target)`` and describe the failure.

    The metrics are updated one at a time to find the failing one; the stage's state is lost anyway
    (the module resets it when the next run starts). The metric is named by its address
    (``"cls/acc"`` for the metrics of ``output`` ``cls``); ``batch`` is the failing batch's number in
    the epoch (the data of a buffered update may fail batches after it was logged). ``shown`` stands for
    the predictions as the step gave them, when the metrics received something made from them (class
    indices taken from logits); ``culprit`` names the failing metric where the update path knows it.

    Examples:
        >>> import torch
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> collection = MetricCollection({"acc": MulticlassAccuracy(3)})
        >>> preds, target = torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)
        >>> try:
        ...     collection.update(preds, target)
        ... except Exception as err:
        ...     print(update_error("val", 0, collection, preds, target, err).args[0][:59])
        val metric 'acc' failed to update (dataloader 0) with preds
    """
    failing = "?" if culprit is None else address(output, _full_name(collection, culprit))
    for name, metric in collection.items(keep_base=False, copy_state=False) if culprit is None else []:
        try:
            metric.update(preds, target)
        except Exception:
            failing = address(output, name)
            break
    where = "" if batch is None else f" at batch {batch} of the epoch,"
    return MetricUpdateError(
        f"{stage} metric {failing!r} failed to update (dataloader {dataloader_idx}){where} with preds of"
        f" {describe(preds if shown is None else shown)} and target of {describe(target)}: {err}"
        " Check `metric_inputs()` and the metric's arguments (e.g. `num_classes`)."
    )


def _full_name(collection: MetricCollection, base: str) -> str:
    # a collection's name of its metric `base` (with the collection's prefix and postfix)
    names = dict(zip(collection.keys(keep_base=True), collection.keys(keep_base=False), strict=True))
    return str(names.get(base, base))


def compute_error(
    stage: str, dataloader_idx: int, name: str, err: Exception, *, output: str | None = None
) -> MetricComputeError:
    """Describe a metric whose epoch-end compute failed (named by its address, with ``output``).

    Examples:
        >>> compute_error("val", 1, "auroc", ValueError("no positive sample")).args[0]
        "val metric 'auroc' failed to compute its epoch value (dataloader 1): no positive sample"
    """
    return MetricComputeError(
        f"{stage} metric {address(output, name)!r} failed to compute its epoch value (dataloader {dataloader_idx}):"
        f" {err}"
    )


def describe(value: Any) -> str:
    """A short description of a metric input: a tensor's shape and dtype, or a type name."""
    if isinstance(value, Tensor):
        return f"shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, dict):
        return "a dict of " + ", ".join(f"{key!r}: {describe(item)}" for key, item in value.items())
    return f"type {type(value).__name__}"
