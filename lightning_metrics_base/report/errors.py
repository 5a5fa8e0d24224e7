"""The errors a metric raises at run time, rewritten to say where: stage, dataloader, metric, inputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from lightning_metrics_base.report.naming import address


class MetricUpdateError(RuntimeError):
    """A metric failed to update; the message names the stage, dataloader, metric and input shapes."""


class MetricComputeError(RuntimeError):
    """A metric failed to compute its epoch value; the message names the stage, dataloader and metric."""


def update_error(
    stage: str,
    dataloader_idx: int,
    metric: str,
    preds: Any,
    target: Any,
    err: Exception,
    batch: int | None = None,
) -> MetricUpdateError:
    """Describe a failed update of the metric addressed ``metric`` (``"acc"``, ``"cls/acc"`` with outputs).

    ``batch`` is the failing batch's number in the epoch (a buffered update may fail batches after
    they were logged); ``preds`` is what describes the predictions (their shape and dtype).

    Examples:
        >>> import torch
        >>> error = update_error("val", 0, "acc", torch.zeros(2, 5), torch.zeros(2), ValueError("bad"), 3)
        >>> error.args[0][:78]
        "val metric 'acc' failed to update (dataloader 0) at batch 3 of the epoch, with"
    """
    where = "" if batch is None else f" at batch {batch} of the epoch,"
    return MetricUpdateError(
        f"{stage} metric {metric!r} failed to update (dataloader {dataloader_idx}){where} with preds of"
        f" {describe(preds)} and target of {describe(target)}: {_sentence(err)} {_update_advice(err, preds)}"
    )


def _sentence(err: Exception) -> str:
    # torchmetrics' and torch's messages often end without a full stop; the advice follows as its own sentence
    text = str(err).rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _update_advice(err: Exception, preds: Any) -> str:
    if isinstance(err, TypeError) and "required" in str(err) and "argument" in str(err):
        # a metric whose update takes more than (preds, target), such as a retrieval metric's `indexes`
        return (
            "The module calls `update(preds, target)`: for a metric that needs more arguments, subclass it so"
            " that its `update` reads them from the target (return them with the target from `unpack_batch`"
            " or `metric_inputs`); the docs' hard cases show how."
        )
    if isinstance(preds, (Mapping, tuple)):
        # a model returning several things (a dict, a Hugging Face output, a namedtuple) without `outputs`
        return (
            f"The metrics received the predictions as a {type(preds).__name__}: override"
            " `metric_inputs(self, preds, target)` to return what they read (for example `preds['logits']`"
            " or `preds.logits`), or declare `outputs=` for a model with several outputs."
        )
    return "Check `metric_inputs()` and the metric's arguments (e.g. `num_classes`)."


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


def unsized_dataloader_error(stage: str, dataloader_idx: int) -> ValueError:
    """Say that a dataloader without a length, among several, cannot have its values logged on this Lightning.

    Examples:
        >>> str(unsized_dataloader_error("val", 1))[:52]
        'val dataloader 1 has no length: with several val dat'
    """
    return ValueError(
        f"{stage} dataloader {dataloader_idx} has no length: with several {stage} dataloaders, its values can"
        f" only be logged at the epoch end under suffixed names (`{stage}/loss/dataloader_idx_{dataloader_idx}`),"
        " which Lightning before 2.5.3 refuses. Give its dataset a `__len__`, set"
        f" `limit_{stage}_batches` to a number of batches, or upgrade lightning to 2.5.3 or later."
    )


def large_state_notice(stage: str, name: str, size: int, processes: int) -> str:
    """Say that metric ``name`` keeps ``size`` bytes of samples per process, what gathering it needs, and the remedy.

    Examples:
        >>> large_state_notice("val", "auroc", 300 * 2**20, 2)[:59]
        "val metric 'auroc' keeps 300 MiB of predictions and targets"
    """
    return (
        f"{stage} metric {name!r} keeps {_size(size)} of predictions and targets per process (a"
        " state that grows with every sample, as with `thresholds=None`); computing it gathers every"
        f" process's share, {_size(processes * size)} on each of {processes}."
        " A binned state has a fixed size: pass `thresholds=` (e.g. `thresholds=200`) to the metric."
    )


def _size(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
