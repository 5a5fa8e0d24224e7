"""Buffered metric updates: up to N batches gathered, then one update of their concatenation per compute group.

Per-step updates are many small calls, each paying torchmetrics' per-call overhead (and, on a GPU,
host-device synchronisations for input checks and ``bincount``). A buffer gathers a collection's
inputs and feeds the concatenation in one ``update`` per compute group, so that metrics sharing a
state still update it once. Batches are written one after another into a block made for them on
the first one (`_Block`): the flush feeds views of it, so the buffer's bytes are all it takes.

Only metrics for which this gives the same result are buffered (`buffers_exactly`): every state is
reduced by sum or concatenation across processes, which is what makes a state additive over samples,
and the metric holds no child metrics. Where torchmetrics decides per call how to read float
predictions (binary and multilabel metrics apply a sigmoid when a value lies outside [0, 1];
multiclass curves, calibration and hinge a softmax), the same decision is made here per batch, on
the device and without a host-device synchronisation, before concatenating.

Compute groups are the collection's own, decided from the metrics' settings when the collection
was built (see `compute_groups`), so the first feed already updates each group once.

Buffering never delays the first error: the first batch after each `UpdateBuffer.clear` (each epoch's
first batch) is fed directly, so a metric that cannot take a stage's data fails on its first batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum

from lightning_metrics_base._internals.torchmetrics import (
    ConfusionCounts,
    checked_update,
    compute_groups,
    count_update,
    counts_from_confusion,
    counts_multiclass_curve,
    invalidate_cached_results,
    members,
    probability_reading,
    reductions_by_state,
    relink_group_states,
    reset_in_place,
    state_reductions,
    takes_class_indices,
)
from lightning_metrics_base.update.curve_counts import update_curve
from lightning_metrics_base.update.sync import has_children

Normalization = Literal["sigmoid", "softmax", "labels"] | None
"""How a metric reads float predictions: sigmoid or softmax where a value lies outside [0, 1], or the
class indices (``argmax`` over dimension 1) that multiclass stat scores and confusion matrices take."""
ErrorFactory = Callable[..., Exception]
"""Builds the error raised for a failing update from ``(preds, target, error, batch, shown=...)``."""

DEFAULT_BUFFER_BYTES = 16 * 2**20
"""The default bound on buffered inputs (16 MiB per stage and dataloader); a flush allocates no copy of them."""


def buffers_exactly(metric: Metric) -> bool:
    """Tell whether updating ``metric`` with a concatenation of batches gives what batch-by-batch updates give.

    Every state is reduced by sum or concatenation across processes (what makes it additive over
    samples: two updates' states merge by adding or extending, as across processes), and the metric
    holds no child metrics. Others (Pearson's running moments, wrappers) are updated every step.
    Integer states come out identical; float sums equal up to rounding.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> from torchmetrics.regression import PearsonCorrCoef
        >>> from torchmetrics.wrappers import MinMaxMetric
        >>> buffers_exactly(MulticlassAccuracy(3)), buffers_exactly(PearsonCorrCoef())
        (True, False)
        >>> buffers_exactly(MinMaxMetric(MulticlassAccuracy(3)))
        False
    """
    reductions = state_reductions(metric)
    if not reductions or has_children(metric):
        return False
    return all(reduce in (dim_zero_sum, dim_zero_cat) for reduce in reductions)


def gains_from_buffering(metric: Metric) -> bool:
    """Tell whether one update of many batches is cheaper than one update per batch for ``metric``.

    Not for binned curves (AUROC, average precision, ... with ``thresholds=`` given) that torchmetrics
    counts: its multiclass and multilabel binned update loops over thresholds on large inputs, which
    is slower per sample than batch by batch (measured: 3x on 16 batches of 256 x 100 classes). A
    multiclass binned curve counted in one pass here (`curve_counts`) costs the same per sample
    whatever the call, so one call per block saves the per-call work.

    Examples:
        >>> from torchmetrics.classification import MulticlassAUROC, MultilabelAUROC
        >>> gains_from_buffering(MulticlassAUROC(3)), gains_from_buffering(MultilabelAUROC(3, thresholds=20))
        (True, False)
        >>> gains_from_buffering(MulticlassAUROC(3, thresholds=20))
        True
    """
    return not isinstance(getattr(metric, "thresholds", None), Tensor) or counts_multiclass_curve(metric)


def normalization(metric: Metric) -> Normalization:
    """How ``metric`` reads float predictions: ``"sigmoid"``, ``"softmax"``, ``"labels"`` or ``None``.

    Examples:
        >>> from torchmetrics.classification import BinaryAccuracy, MulticlassAUROC, MulticlassAccuracy
        >>> normalization(BinaryAccuracy()), normalization(MulticlassAUROC(3)), normalization(MulticlassAccuracy(3))
        ('sigmoid', 'softmax', 'labels')
        >>> normalization(MulticlassAccuracy(3, top_k=2))
    """
    if takes_class_indices(metric):
        return "labels"
    return probability_reading(metric)


def normalize(preds: Tensor, kind: Normalization, target: Tensor | None = None) -> Tensor:
    """Read ``preds`` as the metric of ``kind`` would, per call and without a host sync.

    Sigmoid or softmax where any value lies outside [0, 1]; for ``"labels"``, the class indices
    (``argmax`` over dimension 1) when ``preds`` has one more dimension than ``target``.

    Examples:
        >>> normalize(torch.tensor([0.2, 0.9]), "sigmoid"), normalize(torch.tensor([0.0, 2.0]), "sigmoid")
        (tensor([0.2000, 0.9000]), tensor([0.5000, 0.8808]))
        >>> normalize(torch.tensor([[0.1, 2.0], [3.0, 0.5]]), "labels", torch.tensor([1, 1]))
        tensor([1, 0])
    """
    if kind == "labels":
        # only logits: torchmetrics refuses integer predictions with a class dimension
        taken = target is not None and preds.is_floating_point() and preds.ndim == target.ndim + 1
        return class_indices(preds) if taken else preds
    if kind is None or not preds.is_floating_point():
        return preds
    outside = ((preds < 0) | (preds > 1)).any()
    converted = preds.sigmoid() if kind == "sigmoid" else preds.softmax(1)
    return torch.where(outside, converted, preds)


def class_indices(preds: Tensor) -> Tensor:
    """``preds.argmax(dim=1)``, the class indices torchmetrics takes from logits: the first maximal index.

    NaN counts as the maximum (the first NaN's index), as in ``argmax``; ties give the first index. On
    the CPU, logits with dimensions after the classes (``(N, C, H, W)``: each class a plane) are read
    plane by plane, contiguously: a running maximum over the planes, then the first plane that holds it
    (6x faster than ``argmax`` and 3x faster than ``max``, which reduce across the strided class
    dimension: 4.2 ms against 27.5 ms for ``(8, 21, 128, 128)``, one thread, torch 2.13).
    ``(N, C)`` logits, whose classes are contiguous, and other devices use ``argmax``.

    Examples:
        >>> class_indices(torch.tensor([[0.1, 2.0, 2.0], [float("nan"), 0.0, 1.0]]))
        tensor([1, 0])
        >>> class_indices(torch.tensor([[[1.0, 5.0]], [[3.0, float("nan")]], [[3.0, 0.0]]]).movedim(0, 1))
        tensor([[1, 1]])
    """
    if preds.device.type != "cpu" or preds.ndim < 3 or preds.shape[1] < 2 or preds.numel() == 0:
        return preds.argmax(dim=1)
    planes = preds.unbind(1)
    top = planes[0].clone()
    for plane in planes[1:]:
        torch.maximum(top, plane, out=top)  # NaN, where any, is kept
    # The first plane equal to the maximum: once one is, `found` stays set, and summing it over the planes
    # but the last counts the planes from that one on, in a narrow integer type (the fewest bytes written).
    found = torch.zeros(top.shape, dtype=torch.bool)
    equal = torch.empty_like(found)
    after_first = torch.zeros(top.shape, dtype=torch.uint8 if len(planes) <= 255 else torch.int32)
    for plane in planes[:-1]:
        torch.eq(plane, top, out=equal)
        found |= equal
        after_first += found
    indices = len(planes) - 1 - after_first.long()
    not_a_number = top.isnan()
    if not_a_number.any():  # no plane equals NaN: the first NaN's index, where the maximum is NaN
        first_nan = preds.isnan().to(torch.uint8).argmax(dim=1)
        indices = torch.where(not_a_number, first_nan, indices)
    return indices


class UpdateBuffer:
    """The buffered inputs of one `MetricCollection`, fed to it in one update per compute group.

    Args:
        batches: feed the buffer once it holds this many batches (``1``: no buffering).
        max_bytes: the bound on the bytes the buffer holds (the batches are written into one block as
            they come, so a flush feeds views of it and allocates no concatenation); a batch larger
            than half of it is fed directly (two would not fit: nothing to gain).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
        >>> collection = MetricCollection({"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3)})
        >>> buffer = UpdateBuffer(batches=4)
        >>> for _ in range(6):
        ...     buffer.add(collection, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
        >>> buffer.flush(collection)
        >>> collection["acc"].update_count  # the first batch, then 4 + 1 batches: three updates for the group
        3
    """

    def __init__(self, batches: int, max_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.batches = batches
        self.max_bytes = max_bytes
        self._block: _Block | None = None
        self._seen = 0  # batches added since the last `clear`
        self._plan: tuple[list[list[str]], list[list[str]], list[Normalization]] | None = None
        self._merge: tuple[list[list[str]], list[list[str]]] | None = None
        self._twin_groups: list[list[str]] | None = None

    def __len__(self) -> int:
        """The number of batches buffered now."""
        return 0 if self._block is None else len(self._block.written)

    @property
    def nbytes(self) -> int:
        """The bytes the buffer holds now (at most ``max_bytes``; a flush allocates no copy of them)."""
        return 0 if self._block is None else self._block.nbytes

    def add(self, collection: MetricCollection, preds: Any, target: Any, on_error: ErrorFactory | None = None) -> None:
        """Feed one batch: the metrics that cannot be buffered now, the others when the buffer is full.

        Raises:
            Exception: what ``on_error`` makes of a failing update (the error itself without it).
        """
        batch, self._seen = self._seen, self._seen + 1
        direct, buffered, kinds = self._groups(collection)
        if self.batches <= 1 or not buffered or batch == 0:
            # every group as it comes; the first batch too, so that bad data fails at once
            _guarded(on_error, preds, target, batch, _update_groups, collection, [*direct, *buffered])
            return
        if direct:
            _guarded(on_error, preds, target, batch, _update_groups, collection, direct)
        if not _concatenable(preds, target) or not _classes_agree(collection, buffered, kinds, preds, target):
            # fed as they come, after the batches before them (the metrics' own checks see them as given)
            self.flush(collection, on_error)
            _guarded(on_error, preds, target, batch, _update_groups, collection, buffered)
            return
        # What each group reads is taken now, once per batch: class indices are ~C times smaller than logits.
        entry = _Entry.of(preds, target, batch, kinds)
        if entry.rows == 0 or entry.nbytes == 0 or 2 * entry.nbytes > self.max_bytes:  # two would not fit
            self.flush(collection, on_error)
            self._feed(collection, [entry], on_error)
            return
        if self._block is not None and not self._block.fits(entry):
            self.flush(collection, on_error)
        if self._block is None:
            self._block = _Block(entry, self._capacity(entry))
        self._block.write(entry)
        if len(self._block.written) >= self.batches or self._block.full:
            self.flush(collection, on_error)

    def add_through(
        self,
        collection: MetricCollection,
        twin: MetricCollection,
        preds: Any,
        target: Any,
        on_error: ErrorFactory | None = None,
    ) -> None:
        """Feed one batch to ``twin`` alone (a copy of ``collection``: the batch's own values) and count it for both.

        One update per batch, as torchmetrics' ``forward`` does: each compute group whose states add up
        over samples takes the twin's state (sums added, lists extended, after the buffered batches so
        that samples keep their order); the other groups are updated with the batch.

        Raises:
            Exception: what ``on_error`` makes of a failing update (the error itself without it).
        """
        batch, self._seen = self._seen, self._seen + 1
        if self._twin_groups is None:
            self._twin_groups = compute_groups(twin)
        for group in self._twin_groups:
            # in place: the group's other members still share the state; their counts follow the update
            reset_in_place(getattr(twin, group[0]))
        _guarded(on_error, preds, target, batch, _update_groups, twin, self._twin_groups)
        self.flush(collection, on_error)
        merged, updated = self._merge_plan(collection)
        if updated:
            _guarded(on_error, preds, target, batch, _update_groups, collection, updated)
        _merge_groups(collection, twin, merged)

    def flush(self, collection: MetricCollection, on_error: ErrorFactory | None = None) -> None:
        """Feed every buffered batch to ``collection`` now."""
        if self._block is None:
            return
        # A new block is made for the next batches: a metric that keeps its inputs (a list state) may
        # keep views of this one.
        block, self._block = self._block, None
        self._feed(collection, block.written, on_error, block.filled())

    def clear(self) -> None:
        """Drop the buffered batches (an interrupted run never leaks them); the next batch is fed at once."""
        self._block, self._seen = None, 0

    def _capacity(self, entry: _Entry) -> int:
        # rows for `batches` batches like this one, within the bound
        return min(self.batches * entry.rows, self.max_bytes * entry.rows // entry.nbytes)

    def _feed(
        self,
        collection: MetricCollection,
        entries: list[_Entry],
        on_error: ErrorFactory | None,
        together: _Entry | None = None,
    ) -> None:
        _, buffered, kinds = self._groups(collection)
        _feed(collection, buffered, kinds, together or entries[0], entries, on_error)

    def _groups(self, collection: MetricCollection) -> tuple[list[list[str]], list[list[str]], list[Normalization]]:
        if self._plan is not None:
            return self._plan
        metrics = dict(members(collection))
        direct, buffered, kinds = [], [], []
        for group in compute_groups(collection):
            group_metrics = [metrics[name] for name in group]
            kind = normalization(group_metrics[0])
            if _buffers_as_a_group(group_metrics, kind):
                buffered.append(group)
                kinds.append(kind)
            else:
                direct.append(group)
        self._plan = (direct, buffered, kinds)
        return self._plan

    def _merge_plan(self, collection: MetricCollection) -> tuple[list[list[str]], list[list[str]]]:
        if self._merge is None:
            metrics = dict(members(collection))
            groups = compute_groups(collection)
            merged = [group for group in groups if all(buffers_exactly(metrics[name]) for name in group)]
            self._merge = (merged, [group for group in groups if group not in merged])
        return self._merge


@dataclass
class _Entry:
    """One buffered batch: its predictions as each kind of reader takes them, its target and number."""

    preds: dict[Normalization, Tensor]
    target: Tensor
    batch: int
    given: tuple[tuple[int, ...], torch.dtype]  # the predictions' shape and dtype as given, for error messages
    rows: int = 0  # the samples; 0 (fed directly) where predictions and target disagree on them
    nbytes: int = 0

    @classmethod
    def of(cls, preds: Tensor, target: Tensor, batch: int, kinds: list[Normalization]) -> _Entry:
        readings = {kind: normalize(preds, kind, target) for kind in dict.fromkeys(kinds)}
        rows = int(target.shape[0]) if target.ndim else 0
        if any(tensor.ndim == 0 or tensor.shape[0] != rows for tensor in readings.values()):
            rows = 0
        nbytes = sum(tensor_bytes(tensor) for tensor in readings.values()) + tensor_bytes(target)
        return cls(readings, target, batch, (tuple(preds.shape), preds.dtype), rows, nbytes)

    @property
    def shown(self) -> Tensor:
        """The predictions' shape and dtype as given, as a tensor without data."""
        return torch.empty(self.given[0], dtype=self.given[1], device="meta")


class _Block:
    """Buffered batches written one after another into one tensor per reading and one for the targets.

    Made for ``capacity`` rows on its first batch, so that a flush feeds views of it and allocates no
    concatenation: what the buffer holds is all it ever takes.
    """

    def __init__(self, first: _Entry, capacity: int) -> None:
        self.preds = {kind: _rows_like(tensor, capacity) for kind, tensor in first.preds.items()}
        self.target = _rows_like(first.target, capacity)
        self.capacity, self.stop = capacity, 0
        self.nbytes = sum(tensor_bytes(tensor) for tensor in self.preds.values()) + tensor_bytes(self.target)
        self.written: list[_Entry] = []  # each batch, for a replay one by one (its tensors are views)

    @property
    def full(self) -> bool:
        return self.stop >= self.capacity

    def fits(self, entry: _Entry) -> bool:
        # Only tensors of one dtype, device and trailing shape go together, and only while there is room.
        return (
            self.stop + entry.rows <= self.capacity
            and _alike(self.target, entry.target)
            and entry.preds.keys() == self.preds.keys()
            and all(_alike(self.preds[kind], tensor) for kind, tensor in entry.preds.items())
        )

    def write(self, entry: _Entry) -> None:
        start, stop = self.stop, self.stop + entry.rows
        views = {kind: self.preds[kind][start:stop] for kind in entry.preds}
        for kind, tensor in entry.preds.items():
            views[kind].copy_(tensor)
        target = self.target[start:stop]
        target.copy_(entry.target)
        self.written.append(_Entry(views, target, entry.batch, entry.given, entry.rows, entry.nbytes))
        self.stop = stop

    def filled(self) -> _Entry:
        """Every batch written so far, as one entry of views (numbered as the first batch)."""
        first, stop = self.written[0], self.stop
        preds = {kind: tensor[:stop] for kind, tensor in self.preds.items()}
        return _Entry(preds, self.target[:stop], first.batch, first.given, stop)


def _rows_like(tensor: Tensor, rows: int) -> Tensor:
    return torch.empty((rows, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)


def _concatenable(preds: Any, target: Any) -> bool:
    return isinstance(preds, Tensor) and isinstance(target, Tensor) and preds.ndim > 0 and target.ndim > 0


def _guarded(
    on_error: ErrorFactory | None,
    preds: Any,
    target: Any,
    batch: int,
    update: Callable[..., None],
    *args: Any,
    shown: Any = None,
) -> None:
    # `update(*args, preds, target)`, its failure described by `on_error` with the batch number
    try:
        update(*args, preds, target)
    except Exception as err:
        if on_error is None:
            raise
        raise on_error(preds, target, err, batch, shown=shown) from err


def _classes_agree(
    collection: MetricCollection, groups: list[list[str]], kinds: list[Normalization], preds: Tensor, target: Tensor
) -> bool:
    # Logits read as class indices only where they have the class count their metrics count: an index
    # no longer tells how many classes the logits had (its metric would refuse them).
    if preds.ndim != target.ndim + 1:
        return True
    return all(
        kind != "labels" or preds.shape[1] == getattr(getattr(collection, group[0]), "num_classes", None)
        for group, kind in zip(groups, kinds, strict=True)
    )


def _buffers_as_a_group(members: list[Metric], kind: Normalization) -> bool:
    if not all(buffers_exactly(m) and gains_from_buffering(m) and normalization(m) == kind for m in members):
        return False
    # torchmetrics decides sigmoid/softmax after dropping the ignored targets' predictions: not reproduced
    # here; an argmax is per sample, so class indices do not depend on what is ignored
    return kind in (None, "labels") or all(getattr(member, "ignore_index", None) is None for member in members)


def _alike(first: Tensor, other: Tensor) -> bool:
    return first.dtype == other.dtype and first.device == other.device and first.shape[1:] == other.shape[1:]


def tensor_bytes(value: Any) -> int:
    """The bytes a tensor's elements take (0 for anything else)."""
    return value.element_size() * value.nelement() if isinstance(value, Tensor) else 0


def _feed(
    collection: MetricCollection,
    groups: list[list[str]],
    kinds: list[Normalization],
    together: _Entry,
    entries: list[_Entry],
    on_error: ErrorFactory | None,
) -> None:
    # One update per group of the batches together; on failure, replayed batch by batch, so that the
    # error names the failing batch.
    try:
        for kind in dict.fromkeys(kinds):  # the groups that read the predictions alike, together
            alike = [group for group, its_kind in zip(groups, kinds, strict=True) if its_kind == kind]
            _update_groups(collection, alike, together.preds[kind], together.target)
    except Exception:
        for entry in entries:
            for group, kind in zip(groups, kinds, strict=True):
                _guarded(
                    on_error,
                    entry.preds[kind],
                    entry.target,
                    entry.batch,
                    _update_groups,
                    collection,
                    [group],
                    shown=entry.shown,
                )
        raise


def _update_groups(collection: MetricCollection, groups: list[list[str]], preds: Any, target: Any) -> None:
    # What `MetricCollection.update` does, for some groups only: invalidate every cached result,
    # update each group's first member, then point the other members at its state again. A multiclass
    # binned curve's counts are taken in one pass (`curve_counts`): the same integers. Logits that
    # several groups would each turn into class indices are turned once (`_reads_logits_as_indices`).
    # Groups whose counts are one confusion matrix of the same class indices take them from one count
    # (`ConfusionCounts`) where two or more would count it.
    invalidate_cached_results(metric for _, metric in members(collection))
    firsts = [getattr(collection, group[0]) for group in groups]
    indices = None
    fed: list[Any] = []
    for first in firsts:
        if _reads_logits_as_indices(first, preds, target):
            indices = class_indices(preds) if indices is None else indices
            fed.append(indices)
        else:
            fed.append(preds)
    counts = _shared_counts(firsts, fed, target)
    for first, its_preds in zip(firsts, fed, strict=True):
        if counts_multiclass_curve(first):
            checked_update(first, its_preds, target, functools.partial(update_curve, first))
        else:
            checked_update(first, its_preds, target, first.update, counts.get(id(its_preds)))
    relink_group_states(collection)


def _shared_counts(firsts: list[Metric], fed: list[Any], target: Any) -> dict[int, ConfusionCounts]:
    # one `ConfusionCounts` per predictions tensor that two or more groups counting alike read
    if not isinstance(target, Tensor) or sum(map(counts_from_confusion, firsts)) < 2:
        return {}
    shared: dict[int, ConfusionCounts] = {}
    for preds in {id(preds): preds for preds in fed if isinstance(preds, Tensor)}.values():
        counts = ConfusionCounts(preds, target)
        readers = [first for first, its in zip(firsts, fed, strict=True) if its is preds and counts.serves(first)]
        keys = [counts.key(first) for first in readers]
        if len(keys) > len(set(keys)):  # two or more would count the same
            shared[id(preds)] = counts
    return shared


def _reads_logits_as_indices(metric: Metric, preds: Any, target: Any) -> bool:
    # Whether `metric` takes `preds` as the class indices `argmax(dim=1)` and only that, with the shape
    # it accepts (so that the indices pass its checks exactly when the logits would, and fail alike)
    return (
        isinstance(preds, Tensor)
        and isinstance(target, Tensor)
        and preds.is_floating_point()
        and preds.ndim == target.ndim + 1
        and takes_class_indices(metric)
        and preds.shape[1] == getattr(metric, "num_classes", None)
        and preds.shape[0] == target.shape[0]
        and preds.shape[2:] == target.shape[1:]
        and (preds.ndim >= 3 or getattr(metric, "multidim_average", "global") == "global")
    )


def _merge_groups(collection: MetricCollection, twin: MetricCollection, groups: list[list[str]]) -> None:
    # What an update of `collection` with the batch the twin holds would do: sum states add up, lists of
    # samples are extended (in that order), each group's first member counts one update. In place where
    # the result is the same, so that the group's other members keep sharing the state (no relink).
    invalidate_cached_results(metric for _, metric in members(collection))
    for group in groups:
        mine, theirs = getattr(collection, group[0]), getattr(twin, group[0])
        for name, reduce in reductions_by_state(mine).items():
            value, incoming = getattr(mine, name), getattr(theirs, name)
            if isinstance(value, list):
                value.extend(incoming)
            elif reduce is dim_zero_cat:
                setattr(mine, name, torch.cat([value, incoming]))
            elif _alike_whole(value, incoming):
                value += incoming
            else:
                setattr(mine, name, value + incoming)
        count_update(mine)
    relink_group_states(collection)


def _alike_whole(value: Tensor, other: Tensor) -> bool:
    # `value += other` gives what `value + other` gives, in `value`'s own storage
    return value.shape == other.shape and value.dtype == other.dtype and not value.requires_grad


def failing_metric(collection: MetricCollection, preds: Any, target: Any, first_of_group: str | None = None) -> str:
    """The collection's name (prefix and postfix included) of the metric that rejects ``(preds, target)``.

    Where the update path knows it (``first_of_group``: a compute group's members share its update,
    so its first member names the failure), that one; else the metrics are updated one at a time, in
    the collection's order, to find it (the stage's state is lost anyway: the next run resets it).

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> from torchmetrics.regression import MeanSquaredError
        >>> collection = MetricCollection({"mse": MeanSquaredError(), "acc": MulticlassAccuracy(3)}, prefix="val_")
        >>> failing_metric(collection, torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))
        'val_acc'
    """
    names = dict(zip(collection.keys(keep_base=True), collection.keys(keep_base=False), strict=True))
    if first_of_group is not None:
        return str(names.get(first_of_group, first_of_group))
    for name, metric in collection.items(keep_base=False, copy_state=False):
        try:
            checked_update(metric, preds, target, metric.update)
        except Exception:
            return str(name)
    return "?"
