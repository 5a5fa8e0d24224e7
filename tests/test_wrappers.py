"""torchmetrics' wrappers are metrics like any other: updated, logged (dict results flattened), exact."""

from __future__ import annotations

from typing import Any

import pytest
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    classification_data,
    full_data_accuracy,
    loader,
    make_trainer,
    predict_all,
)
from torch import Tensor
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.functional import mean_squared_error
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.regression import MeanSquaredError
from torchmetrics.wrappers import (
    BootStrapper,
    MinMaxMetric,
    MultioutputWrapper,
    MultitaskWrapper,
    Running,
)


class TaskDicts(Classifier):
    """Feeds the metrics dicts of tasks, as torchmetrics' MultitaskWrapper expects."""

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Any, Any]:
        return {"cls": preds}, {"cls": target}


class OneHot(Classifier):
    """Feeds the metrics class probabilities and one-hot targets: one regression output per class."""

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return preds.softmax(dim=1), F.one_hot(target, NUM_CLASSES).float()


class TestWrappersAreLogged:
    """Wrappers do not count their own updates; a stage holding only wrappers still logs them."""

    def fit(self, model: Classifier, **kwargs: Any) -> tuple[Any, TensorDataset]:
        val = classification_data(150, seed=301)
        trainer = make_trainer(**kwargs)
        trainer.fit(model, loader(classification_data(96, seed=300), batch_size=32), loader(val, batch_size=32))
        return trainer.callback_metrics, val

    def test_min_max_running_bootstrapper(self) -> None:
        model = Classifier(
            {
                "val": {
                    "minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES)),
                    "running": Running(MulticlassAccuracy(NUM_CLASSES), window=2),
                    "boot": BootStrapper(MulticlassAccuracy(NUM_CLASSES), num_bootstraps=4),
                }
            },
            lr=0.0,
        )
        logged, val = self.fit(model)
        preds, target = predict_all(model, val)
        full = full_data_accuracy(model, val)
        assert float(logged["val/minmax/raw"]) == pytest.approx(full, abs=1e-6)
        # the running window is the last two batches of 32, 32, 32, 32, 22: samples 96 on
        assert float(logged["val/running"]) == pytest.approx(
            float(multiclass_accuracy(preds[96:], target[96:], num_classes=NUM_CLASSES)), abs=1e-6
        )
        # the bootstrap mean resamples the whole epoch: close to the accuracy over it, never a batch's
        assert float(logged["val/boot/mean"]) == pytest.approx(full, abs=0.1)

    def test_multitask_wrapper(self) -> None:
        model = TaskDicts({"val": {"mt": MultitaskWrapper({"cls": MulticlassAccuracy(NUM_CLASSES)})}}, lr=0.0)
        logged, val = self.fit(model)
        assert float(logged["val/mt/cls"]) == pytest.approx(full_data_accuracy(model, val), abs=1e-6)

    def test_multioutput_wrapper(self) -> None:
        model = OneHot({"val": {"mo": MultioutputWrapper(MeanSquaredError(), num_outputs=NUM_CLASSES)}}, lr=0.0)
        logged, val = self.fit(model)
        preds, target = predict_all(model, val)
        probs, onehot = preds.softmax(dim=1), F.one_hot(target, NUM_CLASSES).float()
        for index in range(NUM_CLASSES):
            expected = float(mean_squared_error(probs[:, index], onehot[:, index]))
            assert float(logged[f"val/mo/{index}"]) == pytest.approx(expected, rel=1e-5)

    def test_min_max_keeps_its_state_with_per_step_values(self) -> None:
        model = Classifier({"train": {"minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES))}}, lr=0.0)
        model = Classifier(
            {"train": {"minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES))}}, lr=0.0, log_train_step=True
        )
        train = classification_data(96, seed=302)
        trainer = make_trainer(log_every_n_steps=1)
        trainer.fit(model, loader(train, batch_size=32))
        assert float(trainer.callback_metrics["train/minmax/raw"]) == pytest.approx(
            full_data_accuracy(model, train), abs=1e-6
        )
        preds, target = predict_all(model, train)
        last = float(multiclass_accuracy(preds[64:], target[64:], num_classes=NUM_CLASSES))
        assert float(trainer.callback_metrics["train/minmax/raw_step"]) == pytest.approx(last, abs=1e-6)
