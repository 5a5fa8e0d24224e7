"""Binned multiclass curves counted in one pass: the same integer state as torchmetrics' own update."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import NUM_CLASSES, Classifier, classification_data, loader, make_trainer, predict_all
from torch import Tensor
from torchmetrics.classification import (
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassPrecisionRecallCurve,
    MulticlassROC,
)
from torchmetrics.functional.classification import multiclass_auroc, multiclass_average_precision

from lightning_metrics_base import MetricUpdateError
from lightning_metrics_base._internals.torchmetrics import counts_multiclass_curve
from lightning_metrics_base.update.curve_counts import counts_by_sorting, threshold_counts, update_curve


def batches(seed: int, classes: int = 7) -> list[tuple[Tensor, Tensor]]:
    """Logits, probabilities with scores on the thresholds and NaN, a large batch (torchmetrics' loop) and tiny ones."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for rows in (3, 64, 1, 2000, 17):
        logits = torch.randn(rows, classes, generator=generator) * 3
        out.append((logits, torch.randint(0, classes, (rows,), generator=generator)))
    probs = torch.randn(9, classes, generator=generator).softmax(1)
    probs[0, 0], probs[1, 1], probs[2, 2] = 0.5, 0.25, 1.0  # exactly on a threshold of linspace(0, 1, 5)
    probs[3, 3] = float("nan")
    out.append((probs, torch.randint(0, classes, (9,), generator=generator)))
    return out


@pytest.mark.parametrize(
    "settings",
    [
        {"thresholds": 5},
        {"thresholds": 50},
        {"thresholds": [0.9, 0.1, 0.5, 0.5, 0.0, 1.0]},  # unsorted, a duplicate
        {"thresholds": torch.linspace(0, 1, 11, dtype=torch.float64)},
        {"thresholds": 13, "ignore_index": 2},
        {"thresholds": 5, "validate_args": False},
    ],
)
def test_the_state_is_torchmetrics_own(settings: dict[str, Any]) -> None:
    ours, theirs = MulticlassPrecisionRecallCurve(7, **settings), MulticlassPrecisionRecallCurve(7, **settings)
    assert counts_multiclass_curve(ours)
    for preds, target in batches(seed=600):
        update_curve(ours, preds, target)
        theirs.update(preds, target)
    assert ours.confmat.dtype == theirs.confmat.dtype and torch.equal(ours.confmat, theirs.confmat)
    assert ours.update_count == theirs.update_count
    for got, expected in zip(ours.compute(), theirs.compute(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)  # bit for bit


@pytest.mark.parametrize(("preds_shape", "target_shape"), [((3, 4, 5, 6), (3, 5, 6)), ((0, 4), (0,))])
def test_image_shaped_and_empty_batches(preds_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    generator = torch.Generator().manual_seed(604)
    preds, target = (
        torch.randn(*preds_shape, generator=generator),
        torch.randint(0, 4, target_shape, generator=generator),
    )
    ours, theirs = MulticlassPrecisionRecallCurve(4, thresholds=9), MulticlassPrecisionRecallCurve(4, thresholds=9)
    update_curve(ours, preds, target)
    theirs.update(preds, target)
    assert torch.equal(ours.confmat, theirs.confmat)


@pytest.mark.parametrize("size", [0, 1, 7, 300])
def test_counting_by_sorting_is_bincount(size: int) -> None:
    # the count used off the CPU, where `bincount` would synchronise with the host; checked here
    generator = torch.Generator().manual_seed(605)
    for dtype in (torch.int32, torch.int64):
        keys = torch.randint(0, max(size, 1), (size * 3,), generator=generator).to(dtype)
        counts = counts_by_sorting(keys, size)
        assert counts.dtype == torch.int64 and torch.equal(counts, torch.bincount(keys, minlength=size)[:size])


def test_counts_against_comparisons_by_hand() -> None:
    scores = torch.tensor([[0.2, 0.8], [0.5, 0.5], [float("nan"), 0.1]])
    positive = torch.tensor([[True, False], [False, True], [True, False]])
    thresholds = torch.tensor([0.5, 0.0, 1.0])
    counts = threshold_counts(scores, positive, thresholds)
    for t, threshold in enumerate(thresholds):
        predicted = scores >= threshold  # NaN: never
        for c in range(2):
            expected = [
                [int((~positive[:, c] & ~predicted[:, c]).sum()), int((~positive[:, c] & predicted[:, c]).sum())],
                [int((positive[:, c] & ~predicted[:, c]).sum()), int((positive[:, c] & predicted[:, c]).sum())],
            ]
            assert counts[t, c].tolist() == expected, (t, c)


def test_which_metrics_are_counted_in_one_pass() -> None:
    class OwnUpdate(MulticlassAUROC):
        def update(self, preds: Tensor, target: Tensor) -> None:
            super().update(preds, target)

    assert counts_multiclass_curve(MulticlassAUROC(3, thresholds=5)) and counts_multiclass_curve(
        MulticlassROC(3, thresholds=5)
    )
    assert counts_multiclass_curve(MulticlassAveragePrecision(3, thresholds=[0.2, 0.7]))
    assert not counts_multiclass_curve(MulticlassAUROC(3))  # exact: lists of samples
    assert not counts_multiclass_curve(OwnUpdate(3, thresholds=5))  # a subclass's update is its own
    assert not counts_multiclass_curve(MulticlassPrecisionRecallCurve(3, thresholds=5, average="micro"))


class Curves(Classifier):
    def __init__(self, **kwargs: Any) -> None:
        metrics = {
            "auroc": MulticlassAUROC(NUM_CLASSES, thresholds=20),
            "ap": MulticlassAveragePrecision(NUM_CLASSES, thresholds=20, average="weighted"),
        }
        super().__init__({"train": metrics, "val": metrics}, lr=0.0, **kwargs)


@pytest.mark.parametrize("buffer_batches", [16, 1])
def test_through_a_trainer_values_equal_the_whole_data(buffer_batches: int) -> None:
    train, val = classification_data(16 * 9 + 5, seed=601), classification_data(150, seed=602)
    model = Curves(buffer_batches=buffer_batches, log_train_step=True)
    make_trainer(max_epochs=2, log_every_n_steps=1).fit(model, loader(train, 16), loader(val, 16))
    for stage, data in (("train", train), ("val", val)):
        preds, target = predict_all(model, data)
        auroc = multiclass_auroc(preds, target, num_classes=NUM_CLASSES, thresholds=20)
        ap = multiclass_average_precision(preds, target, num_classes=NUM_CLASSES, thresholds=20, average="weighted")
        assert float(model.epoch_metrics[f"{stage}/auroc"]) == float(auroc), stage  # the same counts: bit for bit
        assert float(model.epoch_metrics[f"{stage}/ap"]) == float(ap), stage


class LabelBlindLoss(Classifier):
    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        return preds.square().mean()  # never reads the labels: the metric is the first to see a bad one


def test_bad_labels_fail_with_the_metric_named() -> None:
    data = classification_data(64, seed=603)
    data.tensors[1][40] = NUM_CLASSES  # out of range, in the second batch
    model = LabelBlindLoss({"val": {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=10)}}, lr=0.0)
    with pytest.raises(MetricUpdateError, match=r"val metric 'auroc' failed to update"):
        make_trainer().validate(model, loader(data, 32), verbose=False)


def test_a_block_is_counted_in_chunks_with_the_same_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning_metrics_base.update.curve_counts as curve_counts

    monkeypatch.setattr(curve_counts, "CHUNK_ELEMENTS", 10)  # 3 rows of 4 classes at a time
    generator = torch.Generator().manual_seed(12)
    preds, target = torch.randn(23, 4, generator=generator), torch.randint(0, 4, (23,), generator=generator)
    target[5] = -1
    fast = MulticlassAveragePrecision(4, thresholds=7, ignore_index=-1)
    plain = MulticlassAveragePrecision(4, thresholds=7, ignore_index=-1)
    curve_counts.update_curve(fast, preds, target)
    plain.update(preds, target)
    assert torch.equal(fast.confmat, plain.confmat) and fast.update_count == 1
