"""Buffered metric updates: up to N batches gathered, then one update of their concatenation per compute group.

Per-step updates are many small calls, each paying torchmetrics' per-call overhead (and, on a GPU,
host-device synchronisations for input checks and ``bincount``). A buffer gathers a collection's
inputs and feeds the concatenation in one ``update`` per compute group, so that metrics sharing a
state still update it once.

Only metrics for which this gives the same result are buffered (`buffers_exactly`): every state is
reduced by sum or concatenation across processes, which is what makes a state additive over samples,
and the metric holds no child metrics. Where torchmetrics decides per call how to read float
predictions (binary and multilabel metrics apply a sigmoid when a value lies outside [0, 1];
multiclass curves, calibration and hinge a softmax), the same decision is made here per batch, on
the device and without a host-device synchronisation, before concatenating.

torchmetrics private APIs relied on (stable through torchmetrics 1.x; exercised by
``tests/test_buffering.py``):

- ``MetricCollection._groups_checked``, ``_enable_compute_groups``, ``_state_is_copy``,
  ``_merge_compute_groups()`` and ``_compute_groups_create_state_ref()`` (and, through `group_names`,
  those of ``sync.py``)
- ``Metric._reductions``, ``Metric._computed``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum

from lightning_metrics_base.sync import group_names, has_children

Normalization = Literal["sigmoid", "softmax"] | None
ErrorFactory = Callable[[Any, Any, Exception], Exception]

DEFAULT_BUFFER_BYTES = 16 * 2**20
"""The default bound on buffered inputs (16 MiB per stage and dataloader)."""

# Multiclass metrics that read float predictions as probabilities only when every value of the call
# lies in [0, 1] (and apply a softmax otherwise); other multiclass metrics take an argmax.
_SOFTMAX_FAMILY = (
    "ROC",
    "AUROC",
    "AveragePrecision",
    "PrecisionRecallCurve",
    "AtFixedRecall",
    "AtFixedPrecision",
    "AtSensitivity",
    "AtSpecificity",
    "LogAUC",
    "CalibrationError",
    "HingeLoss",
    "EER",
)


def buffers_exactly(metric: Metric) -> bool:
    """Tell whether updating ``metric`` with a concatenation of batches gives what batch-by-batch updates give.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> from torchmetrics.regression import PearsonCorrCoef
        >>> from torchmetrics.wrappers import MinMaxMetric
        >>> buffers_exactly(MulticlassAccuracy(3)), buffers_exactly(PearsonCorrCoef())
        (True, False)
        >>> buffers_exactly(MinMaxMetric(MulticlassAccuracy(3)))
        False
    """
    reductions = list(metric._reductions.values())
    if not reductions or has_children(metric):
        return False
    return all(reduce in (dim_zero_sum, dim_zero_cat) for reduce in reductions)


def normalization(metric: Metric) -> Normalization:
    """How ``metric`` reads float predictions that lie outside [0, 1]: ``"sigmoid"``, ``"softmax"`` or ``None``.

    Examples:
        >>> from torchmetrics.classification import BinaryAccuracy, MulticlassAUROC, MulticlassAccuracy
        >>> normalization(BinaryAccuracy()), normalization(MulticlassAUROC(3)), normalization(MulticlassAccuracy(3))
        ('sigmoid', 'softmax', None)
    """
    cls = type(metric)
    if not cls.__module__.startswith("torchmetrics.classification"):
        return None
    name = cls.__name__
    if name.startswith(("Binary", "Multilabel")):
        return "sigmoid"
    if name.startswith("Multiclass") and any(part in name for part in _SOFTMAX_FAMILY):
        return "softmax"
    return None


def normalize(preds: Tensor, kind: Normalization) -> Tensor:
    """Apply ``kind`` to ``preds`` when any value lies outside [0, 1], as torchmetrics does per call; no host sync.

    Examples:
        >>> normalize(torch.tensor([0.2, 0.9]), "sigmoid"), normalize(torch.tensor([0.0, 2.0]), "sigmoid")
        (tensor([0.2000, 0.9000]), tensor([0.5000, 0.8808]))
    """
    if kind is None or not preds.is_floating_point():
        return preds
    outside = ((preds < 0) | (preds > 1)).any()
    converted = preds.sigmoid() if kind == "sigmoid" else preds.softmax(1)
    return torch.where(outside, converted, preds)


class UpdateBuffer:
    """The buffered inputs of one `MetricCollection`, fed to it in one update per compute group.

    Args:
        batches: feed the buffer once it holds this many batches (``1``: no buffering).
        max_bytes: feed it before its inputs would exceed this many bytes; a larger batch is fed directly.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
        >>> collection = MetricCollection({"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3)})
        >>> buffer = UpdateBuffer(batches=4)
        >>> for _ in range(6):
        ...     buffer.add(collection, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
        >>> buffer.flush(collection)
        >>> collection["acc"].update_count  # 4 + 2 batches, two updates shared by the compute group
        2
    """

    def __init__(self, batches: int, max_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.batches = batches
        self.max_bytes = max_bytes
        self._inputs: list[tuple[Tensor, Tensor]] = []
        self._bytes = 0
        self._plan: tuple[list[list[str]], list[list[str]], list[Normalization]] | None = None

    def add(self, collection: MetricCollection, preds: Any, target: Any, on_error: ErrorFactory | None = None) -> None:
        """Feed one batch: the metrics that cannot be buffered now, the others when the buffer is full.

        Raises:
            Exception: what ``on_error`` makes of a failing update (the error itself without it).
        """
        direct, buffered, _ = self._groups(collection)
        if self.batches <= 1 or not buffered:
            collection.update(preds, target)  # torchmetrics' own path, compute groups included
            return
        if direct:
            _update_groups(collection, direct, preds, target)
        size = _nbytes(preds) + _nbytes(target)
        if not self._fits(preds, target) or size > self.max_bytes:
            self.flush(collection, on_error)
            self._feed(collection, [(preds, target)], on_error)
            return
        if self._bytes + size > self.max_bytes:
            self.flush(collection, on_error)
        self._inputs.append((preds, target))
        self._bytes += size
        if len(self._inputs) >= self.batches:
            self.flush(collection, on_error)

    def flush(self, collection: MetricCollection, on_error: ErrorFactory | None = None) -> None:
        """Feed every buffered batch to ``collection`` now."""
        if not self._inputs:
            return
        inputs, self._inputs, self._bytes = self._inputs, [], 0
        self._feed(collection, inputs, on_error)

    def clear(self) -> None:
        """Drop the buffered batches (an interrupted run never leaks them into the next)."""
        self._inputs, self._bytes = [], 0

    def _feed(
        self, collection: MetricCollection, inputs: list[tuple[Tensor, Tensor]], on_error: ErrorFactory | None
    ) -> None:
        _, buffered, kinds = self._groups(collection)
        _feed(collection, buffered, kinds, inputs, on_error)
        if _forming_groups(collection):
            # What torchmetrics does after a collection's first update: every metric has now seen
            # the same samples, so metrics with equal states form a compute group.
            collection._merge_compute_groups()
            collection._state_is_copy = False
            collection._compute_groups_create_state_ref()
            collection._groups_checked = True
            self._plan = None

    def _groups(self, collection: MetricCollection) -> tuple[list[list[str]], list[list[str]], list[Normalization]]:
        # Until the compute groups are formed (by the first feed), every metric is its own group.
        if self._plan is not None:
            return self._plan
        metrics = dict(collection.items(keep_base=True, copy_state=False))
        direct, buffered, kinds = [], [], []
        for group in group_names(collection):
            members = [metrics[name] for name in group]
            kind = normalization(members[0])
            if _buffers_as_a_group(members, kind):
                buffered.append(group)
                kinds.append(kind)
            else:
                direct.append(group)
        plan = (direct, buffered, kinds)
        if not _forming_groups(collection):
            self._plan = plan
        return plan

    def _fits(self, preds: Any, target: Any) -> bool:
        # Only tensors of one dtype, device and trailing shape concatenate.
        if not (isinstance(preds, Tensor) and isinstance(target, Tensor)) or preds.ndim == 0 or target.ndim == 0:
            return False
        if not self._inputs:
            return True
        first_preds, first_target = self._inputs[0]
        return _alike(first_preds, preds) and _alike(first_target, target)


def _forming_groups(collection: MetricCollection) -> bool:
    return bool(collection._enable_compute_groups) and not collection._groups_checked


def _buffers_as_a_group(members: list[Metric], kind: Normalization) -> bool:
    if not all(buffers_exactly(member) and normalization(member) == kind for member in members):
        return False
    # torchmetrics decides on logits after dropping the ignored targets' predictions: not reproduced here
    return kind is None or all(getattr(member, "ignore_index", None) is None for member in members)


def _alike(first: Tensor, other: Tensor) -> bool:
    return first.dtype == other.dtype and first.device == other.device and first.shape[1:] == other.shape[1:]


def _nbytes(value: Any) -> int:
    return value.element_size() * value.nelement() if isinstance(value, Tensor) else 0


def _feed(
    collection: MetricCollection,
    groups: list[list[str]],
    kinds: list[Normalization],
    inputs: list[tuple[Tensor, Tensor]],
    on_error: ErrorFactory | None,
) -> None:
    # One concatenation per normalization kind, one update per group.
    targets = torch.cat([target for _, target in inputs]) if len(inputs) > 1 else inputs[0][1]
    concatenated: dict[Normalization, Tensor] = {}
    try:
        for group, kind in zip(groups, kinds, strict=True):
            if kind not in concatenated:
                parts = [normalize(preds, kind) for preds, _ in inputs]
                concatenated[kind] = torch.cat(parts) if len(parts) > 1 else parts[0]
            _update_groups(collection, [group], concatenated[kind], targets)
    except Exception:
        # Replayed batch by batch, so that the error names the failing batch.
        for preds, target in inputs:
            try:
                for group, kind in zip(groups, kinds, strict=True):
                    _update_groups(collection, [group], normalize(preds, kind), target)
            except Exception as batch_err:
                if on_error is None:
                    raise
                raise on_error(preds, target, batch_err) from batch_err
        raise


def _update_groups(collection: MetricCollection, groups: list[list[str]], preds: Any, target: Any) -> None:
    # What `MetricCollection.update` does, for some groups only: invalidate every cached result,
    # update each group's first member, then point the other members at its state again.
    for metric in collection.values(copy_state=False):
        metric._computed = None
    for group in groups:
        getattr(collection, group[0]).update(preds, target)
    if collection._groups_checked:
        collection._state_is_copy = False
        collection._compute_groups_create_state_ref()
