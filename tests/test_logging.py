"""Logged epoch values equal the metric over the whole epoch's data, stage by stage."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    RecordingLogger,
    classification_data,
    loader,
    make_trainer,
    predict_all,
)
from lightning import LightningModule
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score


def reference(model: torch.nn.Module, dataset: Any) -> dict[str, float]:
    preds, target = predict_all(model, dataset)
    return {
        "acc": float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES)),
        "f1": float(multiclass_f1_score(preds, target, num_classes=NUM_CLASSES, average="macro")),
        "loss": float(F.cross_entropy(preds, target)),
    }


class ComputeInStep(LightningModule):
    """The motivating bug, written by hand: `compute()` inside the step, logged with `on_epoch=True`."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(16, NUM_CLASSES)
        self.acc = MulticlassAccuracy(num_classes=NUM_CLASSES)
        self.f1 = MulticlassF1Score(num_classes=NUM_CLASSES, average="macro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _eval_step(self, stage: str, batch: Any) -> None:
        x, y = batch
        preds = self(x)
        self.acc.update(preds, y)
        self.f1.update(preds, y)
        self.log(f"{stage}/acc", self.acc.compute(), on_step=False, on_epoch=True)
        self.log(f"{stage}/f1", self.f1.compute(), on_step=False, on_epoch=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)


class TestMotivatingBug:
    """1000 samples in batches of 64 (the last one 40): logged values are the full-data values."""

    def test_val_and_test_values_are_exact_where_compute_in_step_is_not(self) -> None:
        data = classification_data(1000, seed=1)
        model = Classifier()
        trainer = make_trainer(max_epochs=2)
        trainer.fit(model, loader(classification_data(512, seed=2), shuffle=True), loader(data))
        expected = reference(model, data)
        for name in ("acc", "f1"):
            assert float(trainer.callback_metrics[f"val/{name}"]) == pytest.approx(expected[name], abs=1e-6)
        assert float(trainer.callback_metrics["val/loss"]) == pytest.approx(expected["loss"], abs=1e-5)

        (tested,) = make_trainer().test(model, loader(data), verbose=False)
        for name in ("acc", "f1"):
            assert tested[f"test/{name}"] == pytest.approx(expected[name], abs=1e-6)
        assert tested["test/loss"] == pytest.approx(expected["loss"], abs=1e-5)

        naive = ComputeInStep()
        naive.net.load_state_dict(model.net.state_dict())
        (naive_tested,) = make_trainer().test(naive, loader(data), verbose=False)
        # The by-hand pattern averages running values: visibly off in the third decimal.
        assert abs(naive_tested["test/f1"] - expected["f1"]) > 1e-3
        assert abs(naive_tested["test/acc"] - expected["acc"]) > 1e-4


class TestTrainEpochValues:
    def test_frozen_model_train_values_exact_with_sanity_check_and_mid_epoch_validation(self) -> None:
        train_data, val_data = classification_data(1000, seed=3), classification_data(300, seed=4)
        model = Classifier(lr=0.0)
        logger = RecordingLogger()
        trainer = make_trainer(max_epochs=2, num_sanity_val_steps=2, val_check_interval=0.5, logger=logger)
        trainer.fit(model, loader(train_data, shuffle=True), loader(val_data, batch_size=50))
        train_ref, val_ref = reference(model, train_data), reference(model, val_data)
        for name in ("acc", "f1"):
            assert logger.values(f"train/{name}") == pytest.approx([train_ref[name]] * 2, abs=1e-6)
            # two validation runs per epoch, each over the whole val set, none polluted by the sanity check
            assert logger.values(f"val/{name}") == pytest.approx([val_ref[name]] * 4, abs=1e-6)
        assert logger.values("train/loss") == pytest.approx([train_ref["loss"]] * 2, abs=1e-5)


class TestLoggedNames:
    def test_flat_dict_logs_every_stage(self) -> None:
        logger = RecordingLogger()
        model = Classifier()
        data = loader(classification_data(100, seed=5), batch_size=32)
        trainer = make_trainer(logger=logger)
        trainer.fit(model, data, data)
        trainer.test(model, data, verbose=False)
        assert logger.names() == {f"{s}/{n}" for s in ("train", "val", "test") for n in ("loss", "acc", "f1")}

    def test_per_stage_dict_logs_exactly_the_declared_names(self) -> None:
        metrics = {
            "train": {"acc": MulticlassAccuracy(num_classes=NUM_CLASSES)},
            "val": {"acc": MulticlassAccuracy(num_classes=NUM_CLASSES), "f1": MulticlassF1Score(NUM_CLASSES)},
        }
        logger = RecordingLogger()
        model = Classifier(metrics)
        data = loader(classification_data(100, seed=5), batch_size=32)
        trainer = make_trainer(logger=logger)
        trainer.fit(model, data, data)
        trainer.test(model, data, verbose=False)
        assert logger.names() == {"train/loss", "train/acc", "val/loss", "val/acc", "val/f1", "test/loss"}
        assert model.test_metrics is None

    def test_log_sep(self) -> None:
        logger = RecordingLogger()
        data = loader(classification_data(64, seed=6), batch_size=32)
        make_trainer(logger=logger).fit(Classifier(log_sep="_"), data, data)
        assert logger.names() == {"train_loss", "train_acc", "train_f1", "val_loss", "val_acc", "val_f1"}

    def test_prog_bar(self) -> None:
        data = loader(classification_data(64, seed=6), batch_size=32)
        trainer = make_trainer()
        trainer.fit(Classifier(prog_bar=("acc",)), data, data)
        assert set(trainer.progress_bar_metrics) == {"train/acc", "val/acc"}

    def test_log_train_step_logs_each_batch_value(self) -> None:
        logger = RecordingLogger()
        dataset = classification_data(96, seed=7)
        model = Classifier(lr=0.0, log_train_step=True)
        trainer = make_trainer(logger=logger, log_every_n_steps=1)
        trainer.fit(model, loader(dataset, batch_size=32), loader(dataset, batch_size=32))
        preds, target = predict_all(model, dataset)
        expected = [
            float(multiclass_accuracy(preds[i : i + 32], target[i : i + 32], num_classes=NUM_CLASSES))
            for i in range(0, 96, 32)
        ]
        assert logger.values("train/acc_step") == pytest.approx(expected, abs=1e-6)
        assert len(logger.values("train/loss_step")) == 3
        # the epoch value is still the full-data value
        assert logger.values("train/acc") == pytest.approx(
            [float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES))], abs=1e-6
        )

    def test_log_train_step_follows_log_every_n_steps(self) -> None:
        logger = RecordingLogger()
        dataset = classification_data(160, seed=9)
        model = Classifier(lr=0.0, log_train_step=True, prog_bar=())
        trainer = make_trainer(logger=logger, log_every_n_steps=2)
        trainer.fit(model, loader(dataset, batch_size=32), loader(dataset, batch_size=32))
        preds, target = predict_all(model, dataset)
        logged = [(step, metrics["train/acc_step"]) for step, metrics in logger.records if "train/acc_step" in metrics]
        expected = [
            (
                i,
                float(
                    multiclass_accuracy(
                        preds[32 * i : 32 * i + 32], target[32 * i : 32 * i + 32], num_classes=NUM_CLASSES
                    )
                ),
            )
            for i in (1, 3)  # Lightning sends step values to loggers on every second step
        ]
        assert [step for step, _ in logged] == [step for step, _ in expected]
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected], abs=1e-6)
        assert logger.values("train/acc") == pytest.approx(
            [float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES))], abs=1e-6
        )

    def test_no_metrics_logs_only_the_loss(self) -> None:
        logger = RecordingLogger()
        data = loader(classification_data(64, seed=8), batch_size=32)
        model = Classifier(metrics={})
        make_trainer(logger=logger).fit(model, data, data)
        assert logger.names() == {"train/loss", "val/loss"}
        assert model.train_metrics is None and model.val_metrics is None


class SeesProgressBar(Callback):
    def __init__(self) -> None:
        self.first_step: dict[str, Any] = {}

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.first_step = dict(trainer.progress_bar_metrics)


def test_train_loss_is_logged_every_step_and_shown_from_the_first() -> None:
    logger, bar = RecordingLogger(), SeesProgressBar()
    train = classification_data(160, seed=380)
    model = Classifier(lr=0.0)
    trainer = make_trainer(logger=logger, log_every_n_steps=1, callbacks=[bar])
    trainer.fit(model, loader(train, batch_size=32))
    preds, target = predict_all(model, train)
    per_step = [float(F.cross_entropy(preds[i : i + 32], target[i : i + 32])) for i in range(0, 160, 32)]
    assert logger.values("train/loss_step") == pytest.approx(per_step, rel=1e-5)
    assert logger.values("train/loss") == pytest.approx([float(F.cross_entropy(preds, target))], rel=1e-5)
    assert "train/loss_step" in bar.first_step
