"""Binned curve states counted in one pass over the inputs, whatever the number of thresholds.

torchmetrics' multiclass binned curves (``MulticlassPrecisionRecallCurve`` and the metrics built on it:
AUROC, average precision, ROC, ... with ``thresholds=`` given) keep, for every threshold and class, the
confusion counts of ``score >= threshold``. torchmetrics counts them with one pass over the inputs per
threshold once an update's inputs are large (``numel x classes > 1e6``), or with a tensor of inputs x
thresholds on small ones. Here each score is placed among the sorted thresholds once
(``searchsorted``), the places are counted per class and target (one ``bincount``; on a GPU a sort,
which needs no host-device synchronisation), and a cumulative sum over the places gives every
threshold's counts: the same integers, in work that hardly grows with the number of thresholds, a
binary search per score (measured on a CPU, 50 thresholds: about 7x less update time for a batch of
256 with 100 classes, 30x for 131,072 pixels with 21 classes).

Validation and input formatting (softmax of logits, ``ignore_index``) stay torchmetrics' own; only the
counting differs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_metrics_base._internals.torchmetrics import (
    count_update,
    invalidate_cached_results,
    multiclass_curve_inputs,
)

CHUNK_ELEMENTS = 2**19
"""Scores counted at once by `update_curve` (2 MiB of float32): a buffered block is counted in chunks."""


def threshold_counts(scores: Tensor, positive: Tensor, thresholds: Tensor) -> Tensor:
    """The confusion counts of ``scores >= threshold`` against ``positive``, per threshold and column.

    Args:
        scores: ``(N, C)`` floats; NaN is at or above no threshold.
        positive: ``(N, C)`` booleans, the target of each score.
        thresholds: ``(T,)``, in any order.

    Returns:
        ``(T, C, 2, 2)`` int64 indexed ``[threshold, column, target, prediction]``, as torchmetrics'
        binned curve state: ``[t, c, 1, 1]`` counts the positives of column ``c`` scored at or above
        threshold ``t``.

    Examples:
        >>> counts = threshold_counts(torch.tensor([[0.2], [0.7], [0.9]]), torch.tensor([[False], [True], [True]]),
        ...                           torch.tensor([0.0, 0.5, 1.0]))
        >>> counts[:, 0].tolist()  # [[tn, fp], [fn, tp]] at 0.0, 0.5 and 1.0
        [[[0, 1], [0, 2]], [[1, 0], [0, 2]], [[1, 0], [2, 0]]]
    """
    columns, places = scores.shape[1], thresholds.numel() + 1
    dtype = torch.promote_types(scores.dtype, thresholds.dtype)  # the comparison torchmetrics makes
    ordered, order = thresholds.to(dtype).sort()
    # how many thresholds lie at or below each score: it is predicted positive at exactly those
    place = torch.searchsorted(ordered, scores.to(dtype).contiguous(), right=True, out_int32=True)
    place.masked_fill_(scores.isnan(), 0)
    # one key per (column, place, target); int32 (half the memory of int64) while the keys fit in it
    index_dtype = torch.int32 if columns * places * 2 < 2**31 else torch.int64
    keys = (place.to(index_dtype) + torch.arange(columns, device=scores.device, dtype=index_dtype) * places) * 2
    keys += positive
    counts = count_keys(keys.flatten(), columns * places * 2).view(columns, places, 2)
    at_or_above = counts.flip(1).cumsum(1).flip(1)  # [c, j, target]: scores placed at j or higher
    predicted = at_or_above[:, 1:]  # at or above sorted threshold j: placed above j
    totals = at_or_above[:, :1]
    negatives = torch.stack([totals[..., 0] - predicted[..., 0], predicted[..., 0]], dim=-1)  # tn, fp
    positives = torch.stack([totals[..., 1] - predicted[..., 1], predicted[..., 1]], dim=-1)  # fn, tp
    by_sorted = torch.stack([negatives, positives], dim=-2).transpose(0, 1)  # (T, C, 2, 2)
    return torch.empty_like(by_sorted).index_copy_(0, order, by_sorted)


def count_keys(keys: Tensor, size: int) -> Tensor:
    """How often each of ``0 .. size - 1`` occurs in the 1-D integer tensor ``keys`` (int64).

    ``torch.bincount`` on the CPU. Elsewhere it would size its output from the largest key, a
    host-device synchronisation per update; the keys are sorted instead and each value's first
    position found (`counts_by_sorting`), which needs none.

    Examples:
        >>> count_keys(torch.tensor([3, 0, 3, 1]), 5).tolist()
        [1, 1, 0, 2, 0]
    """
    if keys.device.type == "cpu":
        return torch.bincount(keys, minlength=size)
    return counts_by_sorting(keys, size)


def counts_by_sorting(keys: Tensor, size: int) -> Tensor:
    """`count_keys` without ``bincount``: sorted keys, and where each value of ``0 .. size`` would go among them.

    Examples:
        >>> counts_by_sorting(torch.tensor([3, 0, 3, 1], dtype=torch.int32), 5).tolist()
        [1, 1, 0, 2, 0]
    """
    ordered = keys.sort().values
    starts = torch.searchsorted(ordered, torch.arange(size + 1, device=keys.device, dtype=keys.dtype))
    return starts.diff()


def update_curve(metric: Metric, preds: Any, target: Any) -> None:
    """``metric.update(preds, target)``, the counts taken by `threshold_counts`.

    For a multiclass binned curve with torchmetrics' own ``update``
    (`_internals.torchmetrics.counts_multiclass_curve`).

    Examples:
        >>> from torchmetrics.classification import MulticlassAveragePrecision
        >>> fast, plain = MulticlassAveragePrecision(3, thresholds=5), MulticlassAveragePrecision(3, thresholds=5)
        >>> preds, target = torch.tensor([[2.0, 0.1, -1.0], [0.3, 0.2, 0.9]]), torch.tensor([0, 1])
        >>> update_curve(fast, preds, target); plain.update(preds, target)
        >>> torch.equal(fast.confmat, plain.confmat), fast.update_count
        (True, 1)
    """
    curve: Any = metric  # a MulticlassPrecisionRecallCurve: `thresholds`, `confmat`
    # A buffered block is counted in chunks of rows: the count's temporaries (a contiguous copy of the
    # scores, the places and the keys) stay near `CHUNK_ELEMENTS`, whatever the block's size.
    chunks = [(preds, target)]
    if isinstance(preds, Tensor) and isinstance(target, Tensor) and preds.ndim > 0 and len(preds) > 1:
        rows = max(1, CHUNK_ELEMENTS // max(1, preds[0].numel()))
        chunks = [(preds[start : start + rows], target[start : start + rows]) for start in range(0, len(preds), rows)]
    state = None
    for chunk_preds, chunk_target in chunks:
        scores, labels = multiclass_curve_inputs(curve, chunk_preds, chunk_target)
        classes = torch.arange(scores.shape[1], device=scores.device)
        counts = threshold_counts(scores, labels.unsqueeze(1) == classes, curve.thresholds)
        state = counts if state is None else state.add_(counts)
    invalidate_cached_results([metric])
    curve.confmat += state
    count_update(metric)
