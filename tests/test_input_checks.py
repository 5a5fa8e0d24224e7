"""Bad input under speed: torchmetrics' validation is skipped only where cheap exact checks show the inputs good.

Every input torchmetrics refuses is still refused, with its message, buffered or not, on the first batch
or a later one; an out-of-range label is refused even where torchmetrics lets it through; nothing else
is refused, and good inputs give the states torchmetrics' own updates give. Checked against torchmetrics
itself: each expected message is the one a fresh metric raises on the same batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from helpers import NUM_CLASSES, Classifier, classification_data, loader, make_trainer
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAveragePrecision,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MultilabelAccuracy,
    MultilabelAUROC,
)

from lightning_metrics_base import MetricAwareModule
from lightning_metrics_base._internals.torchmetrics import (
    InvalidLabels,
    checked_update,
    checks_inputs,
    plainly_good,
    state_defaults,
)
from lightning_metrics_base.configuration.heads import Heads
from lightning_metrics_base.report.errors import MetricUpdateError
from lightning_metrics_base.update.buffering import class_indices
from lightning_metrics_base.update.compute_groups import group_by_settings
from lightning_metrics_base.update.metric_store import MetricStore

GOOD = torch.Generator().manual_seed(0)


def logits(*shape: int) -> Tensor:
    return torch.randn(*shape, generator=GOOD)


def labels(high: int, *shape: int) -> Tensor:
    return torch.randint(0, high, shape, generator=GOOD)


# name: (metric factory, a good batch, the bad batch); each bad batch is one a user really feeds
Case = tuple[Callable[[], Metric], Callable[[], tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]
CASES: dict[str, Case] = {
    "label equal to num_classes": (
        lambda: MulticlassAccuracy(4),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 4), torch.tensor([0, 1, 2, 4, 1, 0])),
    ),
    "label equal to num_classes, segmentation masks": (
        lambda: MulticlassJaccardIndex(5),
        lambda: (logits(2, 5, 3, 3), labels(5, 2, 3, 3)),
        (logits(2, 5, 3, 3), torch.full((2, 3, 3), 5)),
    ),
    "negative label": (
        lambda: MulticlassF1Score(4),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 4), torch.tensor([0, 1, -1, 3, 1, 0])),
    ),
    "negative label that is not ignore_index": (
        lambda: MulticlassConfusionMatrix(4, ignore_index=-100),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 4), torch.tensor([0, -100, -1, 3, 1, 0])),
    ),
    "label out of range for an exact curve (silently miscounted by torchmetrics)": (
        lambda: MulticlassAUROC(4),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 4), torch.tensor([0, 1, 2, 4, 1, 0])),
    ),
    "more distinct labels than classes": (
        lambda: MulticlassAccuracy(3),
        lambda: (logits(6, 3), labels(3, 6)),
        (logits(6, 3), torch.tensor([0, 1, 2, 3, 4, 5])),
    ),
    "integer predictions out of range": (
        lambda: MulticlassAccuracy(4),
        lambda: (labels(4, 6), labels(4, 6)),
        (torch.tensor([0, 1, 7, 3, 1, 0]), labels(4, 6)),
    ),
    "logits of the wrong class count": (
        lambda: MulticlassAccuracy(4),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 3), labels(3, 6)),
    ),
    "predictions and targets of different shapes": (
        lambda: BinaryF1Score(),
        lambda: (torch.rand(6, generator=GOOD), labels(2, 6)),
        (torch.rand(6, generator=GOOD), labels(2, 5)),
    ),
    "float targets for a curve": (
        lambda: MulticlassAveragePrecision(4),
        lambda: (logits(6, 4), labels(4, 6)),
        (logits(6, 4), labels(4, 6).float()),
    ),
    "binary targets that are not 0 or 1": (
        lambda: BinaryAccuracy(),
        lambda: (torch.rand(6, generator=GOOD), labels(2, 6)),
        (torch.rand(6, generator=GOOD), torch.tensor([0, 1, 2, 1, 0, 1])),
    ),
    "fractional binary targets": (
        lambda: BinaryF1Score(),
        lambda: (torch.rand(6, generator=GOOD), labels(2, 6)),
        (torch.rand(6, generator=GOOD), torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 1.0])),
    ),
    "binary integer predictions that are not 0 or 1": (
        lambda: BinaryAccuracy(),
        lambda: (labels(2, 6), labels(2, 6)),
        (torch.tensor([0, 1, 2, 1, 0, 1]), labels(2, 6)),
    ),
    "multilabel targets of the wrong label count": (
        lambda: MultilabelAccuracy(3),
        lambda: (torch.rand(6, 3, generator=GOOD), labels(2, 6, 3)),
        (torch.rand(6, 4, generator=GOOD), labels(2, 6, 4)),
    ),
    "multilabel ignore_index that is not the one declared": (
        lambda: MultilabelAUROC(3, ignore_index=-1),
        lambda: (torch.rand(6, 3, generator=GOOD), labels(2, 6, 3)),
        (torch.rand(6, 3, generator=GOOD), torch.tensor([[0, 1, -2]] * 6)),
    ),
}


def torchmetrics_verdict(make: Callable[[], Metric], preds: Tensor, target: Tensor) -> str | None:
    """What a fresh metric, updated by torchmetrics itself, raises on the batch (``None``: it takes it)."""
    metric = make()
    try:
        metric.update(preds, target)
    except Exception as err:
        return str(err)
    return None


def feed(buffer_batches: int, bad_at: int, case: Case) -> MetricUpdateError:
    make, good, bad = case
    store = MetricStore(
        {"val": Heads.of(group_by_settings(MetricCollection({"m": make()})))}, buffer_batches=buffer_batches
    )
    with pytest.raises(MetricUpdateError) as raised:
        for batch in range(4):
            preds, target = bad if batch == bad_at else good()
            store.update("val", 0, preds, target)
        store.compute_epoch("val", 0)
    return raised.value


@pytest.mark.parametrize("buffer_batches", [1, 3])
@pytest.mark.parametrize("bad_at", [0, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_torchmetrics_message_or_a_clear_one(
    name: str, buffer_batches: int, bad_at: int
) -> None:
    case = CASES[name]
    message = str(feed(buffer_batches, bad_at, case))
    assert message.startswith("val metric 'm' failed to update (dataloader 0)")
    assert f"at batch {bad_at} of the epoch" in message
    theirs = torchmetrics_verdict(case[0], *case[2])
    if theirs is not None and "is invalid for input of size" not in theirs and "bincount" not in theirs:
        assert theirs.rstrip(".") in message  # torchmetrics refuses it: its message is kept
    if theirs is None or "is invalid for input of size" in theirs or "bincount" in theirs:
        # torchmetrics miscounts, or fails with a message that does not say what is wrong: ours does
        assert "counts only labels 0 to" in message and "holds the label(s)" in message


def test_the_refusal_names_the_labels_and_the_remedy() -> None:
    metric = MulticlassJaccardIndex(21, ignore_index=255)
    target = torch.tensor([[0, 255, 21], [3, 21, 20]])
    with pytest.raises(InvalidLabels) as raised:
        checked_update(metric, logits(2, 21, 3).movedim(1, 1), target, metric.update)
    assert str(raised.value).startswith("`target` holds the label(s) 21 (2 of them): a metric with num_classes=21")
    assert "apart from ignore_index=255" in str(raised.value) and "`ignore_index`" in str(raised.value)
    assert metric.update_count == 0  # refused before the state changed


# good inputs of every accepted form: (metric factory, batches)
ACCEPTED: dict[str, tuple[Callable[[], Metric], Callable[[], tuple[Tensor, Tensor]]]] = {
    "multiclass logits": (lambda: MulticlassAccuracy(5), lambda: (logits(8, 5), labels(5, 8))),
    "segmentation logits, ignore_index outside the classes": (
        lambda: MulticlassJaccardIndex(4, ignore_index=255),
        lambda: (logits(2, 4, 3, 3), torch.where(labels(5, 2, 3, 3) == 4, 255, labels(4, 2, 3, 3))),
    ),
    "ignore_index among the classes": (
        lambda: MulticlassF1Score(4, ignore_index=0, average="micro"),
        lambda: (logits(8, 4), labels(4, 8)),
    ),
    "integer predictions": (lambda: MulticlassConfusionMatrix(4), lambda: (labels(4, 8), labels(4, 8))),
    "integral float targets (torchmetrics reads them as labels)": (
        lambda: MulticlassAccuracy(4),
        lambda: (logits(8, 4), labels(4, 8).float()),
    ),
    "top-2 accuracy": (lambda: MulticlassAccuracy(5, top_k=2), lambda: (logits(8, 5), labels(5, 8))),
    "samplewise": (
        lambda: MulticlassAccuracy(3, multidim_average="samplewise"),
        lambda: (logits(2, 3, 4), labels(3, 2, 4)),
    ),
    "exact curve": (lambda: MulticlassAUROC(4), lambda: (logits(8, 4), labels(4, 8))),
    "binned curve": (lambda: MulticlassAveragePrecision(4, thresholds=5), lambda: (logits(8, 4), labels(4, 8))),
    "binary probabilities": (lambda: BinaryAccuracy(), lambda: (torch.rand(8, generator=GOOD), labels(2, 8))),
    "binary scores outside [0, 1] (torchmetrics reads them as logits, refuses none)": (
        lambda: BinaryF1Score(),
        lambda: (torch.rand(8, generator=GOOD) * 3 - 1, labels(2, 8)),
    ),
    "binary logits and boolean targets": (lambda: BinaryAveragePrecision(), lambda: (logits(8), labels(2, 8).bool())),
    "binary integer predictions, ignore_index": (
        lambda: BinaryF1Score(ignore_index=-1),
        lambda: (labels(2, 8), torch.where(labels(3, 8) == 2, -1, labels(2, 8))),
    ),
    "multilabel": (lambda: MultilabelAccuracy(3), lambda: (torch.rand(8, 3, generator=GOOD), labels(2, 8, 3))),
    "multilabel curve": (lambda: MultilabelAUROC(3), lambda: (logits(8, 3), labels(2, 8, 3))),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_good_inputs_give_the_states_torchmetrics_gives(name: str) -> None:
    make, batch = ACCEPTED[name]
    ours, theirs = make(), make()
    for _ in range(3):
        preds, target = batch()
        checked_update(ours, preds, target, ours.update)
        theirs.update(preds, target)
    assert ours.validate_args and ours.update_count == theirs.update_count == 3
    for state in state_defaults(theirs):
        mine, expected = getattr(ours, state), getattr(theirs, state)
        if isinstance(expected, list):
            assert all(torch.equal(a, b) for a, b in zip(mine, expected, strict=True)), state
        else:
            assert torch.equal(mine, expected) and mine.dtype == expected.dtype, state


@pytest.mark.parametrize("name", [name for name in ACCEPTED if "float targets" not in name])
def test_good_inputs_skip_torchmetrics_validation(name: str) -> None:
    make, batch = ACCEPTED[name]
    metric = make()
    assert checks_inputs(metric) and plainly_good(metric, *batch())
    seen = []

    def update(preds: Tensor, target: Tensor) -> None:
        seen.append(metric.validate_args)
        metric.update(preds, target)

    checked_update(metric, *batch(), update)
    assert seen == [False] and metric.validate_args


def test_a_metric_built_without_validation_gets_no_checks_from_the_package() -> None:
    # torchmetrics' own failure, as it comes without its checks: the package adds none
    _, _, (preds, target) = CASES["label equal to num_classes"]
    metric = MulticlassAccuracy(4, validate_args=False)
    assert not checks_inputs(metric)
    with pytest.raises(RuntimeError, match="is invalid for input of size") as raised:
        checked_update(metric, preds, target, metric.update)
    assert not isinstance(raised.value, InvalidLabels)
    store = MetricStore({"val": Heads.of(MetricCollection({"m": MulticlassAccuracy(4, validate_args=False)}))})
    with pytest.raises(MetricUpdateError, match="is invalid for input of size"):
        store.update("val", 0, preds, target)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_class_indices_are_argmax_exactly(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(1)
    for shape in [(3, 5, 4, 6), (2, 7, 9), (1, 2, 1, 1, 3), (4, 3)]:
        values = torch.randint(-2, 3, shape, generator=generator).to(dtype)  # many ties
        draw = torch.rand(shape, generator=generator)
        values[draw < 0.1] = float("nan")
        values[(draw >= 0.1) & (draw < 0.2)] = float("inf")
        values[(draw >= 0.2) & (draw < 0.3)] = -float("inf")
        values[(draw >= 0.3) & (draw < 0.35)] = -0.0
        assert torch.equal(class_indices(values), values.argmax(dim=1)), shape
        every_nan = torch.full(shape, float("nan"), dtype=dtype)
        assert torch.equal(class_indices(every_nan), every_nan.argmax(dim=1))
        assert torch.equal(class_indices(values[:0]), values[:0].argmax(dim=1))
    if torch.cuda.is_available():
        on_gpu = values.cuda()
        assert torch.equal(class_indices(on_gpu).cpu(), values.argmax(dim=1))


class LabelAt(Classifier):
    """A validation batch (by its number) carries the label ``num_classes``: torchmetrics' check lets it through."""

    def __init__(self, bad_batch: int, **kwargs: Any) -> None:
        super().__init__(
            {"val": {"acc": MulticlassAccuracy(NUM_CLASSES), "jaccard": MulticlassJaccardIndex(NUM_CLASSES)}}, **kwargs
        )
        self.bad_batch, self.seen = bad_batch, 0

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        self.seen += 1
        if self.seen - 1 == self.bad_batch:
            target = target.clone()
            target[0] = NUM_CLASSES
        return preds, target


@pytest.mark.parametrize("buffer_batches", [1, 8])
@pytest.mark.parametrize("bad_batch", [0, 2])
def test_a_trainer_run_refuses_an_out_of_range_label(bad_batch: int, buffer_batches: int) -> None:
    data = classification_data(70, seed=3)
    model = LabelAt(bad_batch, buffer_batches=buffer_batches)
    with pytest.raises(MetricUpdateError) as raised:
        make_trainer().validate(model, loader(data, batch_size=16), verbose=False)
    message = str(raised.value)
    assert message.startswith(f"val metric 'acc' failed to update (dataloader 0) at batch {bad_batch} of the epoch")
    assert f"holds the label(s) {NUM_CLASSES} (1 of them)" in message


class Segmenter(MetricAwareModule):
    """Per-pixel logits with void pixels marked 255 (ignore_index)."""

    def __init__(self) -> None:
        super().__init__(
            {
                "iou": MulticlassJaccardIndex(4, ignore_index=255),
                "acc": MulticlassAccuracy(4, average="micro", ignore_index=255),
            },
            loss_fn=lambda preds, target: torch.nn.functional.cross_entropy(preds, target, ignore_index=255),
        )
        self.net = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_ignored_pixels_are_accepted_and_give_torchmetrics_functional_values() -> None:
    from torch.utils.data import DataLoader, TensorDataset
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_jaccard_index

    generator = torch.Generator().manual_seed(4)
    images = torch.randn(37, 3, 5, 5, generator=generator)
    masks = torch.randint(0, 4, (37, 5, 5), generator=generator)
    masks[torch.rand(masks.shape, generator=generator) < 0.2] = 255
    model = Segmenter()
    logged = make_trainer().validate(model, DataLoader(TensorDataset(images, masks), batch_size=4), verbose=False)[0]
    with torch.no_grad():
        preds = model(images)
    assert logged["val/iou"] == pytest.approx(
        float(multiclass_jaccard_index(preds, masks, 4, ignore_index=255)), abs=1e-6
    )
    expected = multiclass_accuracy(preds, masks, 4, average="micro", ignore_index=255)
    assert logged["val/acc"] == pytest.approx(float(expected), abs=1e-6)
