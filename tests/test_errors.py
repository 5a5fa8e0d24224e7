"""errors.py: the messages of a failing update or compute name the stage, dataloader, batch, metric and inputs."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.regression import MeanSquaredError

from lightning_metrics_base.errors import MetricComputeError, MetricUpdateError, compute_error, describe, update_error


def failing_update(collection: MetricCollection, preds: torch.Tensor, target: torch.Tensor) -> Exception:
    try:
        collection.update(preds, target)
    except Exception as err:
        return err
    raise AssertionError("the update did not fail")


class TestUpdateError:
    def test_names_the_failing_metric_among_others(self) -> None:
        collection = MetricCollection({"mse": MeanSquaredError(), "acc": MulticlassAccuracy(3)})
        preds, target = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
        error = update_error("val", 1, collection, preds, target, failing_update(collection, preds, target), 7)
        assert isinstance(error, MetricUpdateError)
        message = error.args[0]
        assert message.startswith("val metric 'acc' failed to update (dataloader 1) at batch 7 of the epoch,")
        assert "preds of shape (4, 5) and dtype torch.float32" in message and "`num_classes`" in message

    def test_an_output_is_part_of_the_address(self) -> None:
        collection = MetricCollection({"acc": MulticlassAccuracy(3)})
        preds, target = torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)
        err = failing_update(collection, preds, target)
        message = update_error("train", 0, collection, preds, target, err, output="cls").args[0]
        assert message.startswith("train metric 'cls/acc' failed to update (dataloader 0) with preds")


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
