"""errors.py formats the messages; the update path finds the failing metric (buffering.failing_metric)."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanSquaredError

from lightning_metrics_base.report.errors import (
    MetricComputeError,
    MetricUpdateError,
    compute_error,
    describe,
    update_error,
)
from lightning_metrics_base.update.buffering import failing_metric


class TestUpdateError:
    def test_names_stage_dataloader_batch_metric_and_inputs(self) -> None:
        preds, target = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
        error = update_error("val", 1, "cls/acc", preds, target, ValueError("5 is not 3"), 7)
        assert isinstance(error, MetricUpdateError)
        message = error.args[0]
        assert message.startswith("val metric 'cls/acc' failed to update (dataloader 1) at batch 7 of the epoch,")
        assert "preds of shape (4, 5) and dtype torch.float32" in message and "5 is not 3" in message
        assert "`num_classes`" in message

    def test_the_metric_s_message_ends_as_a_sentence_before_the_advice(self) -> None:
        preds, target = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
        bare = update_error("val", 0, "auroc", preds, target, RuntimeError("shape '[20, 2, 2]' is invalid")).args[0]
        assert "is invalid. Check `metric_inputs()`" in bare
        stopped = update_error("val", 0, "acc", preds, target, ValueError("Expected 3 classes. ")).args[0]
        assert "Expected 3 classes. Check `metric_inputs()`" in stopped

    def test_without_a_batch_number(self) -> None:
        message = update_error("train", 0, "acc", torch.zeros(2), torch.zeros(2), ValueError("x")).args[0]
        assert message.startswith("train metric 'acc' failed to update (dataloader 0) with preds")


class TestFailingMetric:
    def test_the_first_metric_that_rejects_the_inputs(self) -> None:
        collection = MetricCollection({"mse": MeanSquaredError(), "acc": MulticlassAccuracy(3)}, prefix="val_")
        assert failing_metric(collection, torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)) == "val_acc"
        assert failing_metric(collection, torch.zeros(4), torch.zeros(4, dtype=torch.long)) == "?"

    def test_a_compute_group_is_named_by_its_first_member(self) -> None:
        collection = MetricCollection({"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3)}, postfix="_x")
        assert failing_metric(collection, torch.zeros(1), torch.zeros(1), first_of_group="f1") == "f1_x"


def test_compute_error() -> None:
    error = compute_error("test", 2, "auroc", ValueError("no positive sample"), output="head")
    assert isinstance(error, MetricComputeError)
    assert (
        error.args[0] == "test metric 'head/auroc' failed to compute its epoch value (dataloader 2): no positive sample"
    )


def test_describe() -> None:
    assert describe(torch.zeros(2, 3, dtype=torch.int64)) == "shape (2, 3) and dtype torch.int64"
    assert describe({"cls": torch.zeros(1)}) == "a dict of 'cls': shape (1,) and dtype torch.float32"
    assert describe([1, 2]) == "type list"
