"""The hooks a subclass overrides, and the guarantees that hold whatever it overrides."""

from __future__ import annotations

import inspect
import types
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    Regressor,
    classification_data,
    full_data_accuracy,
    loader,
    make_trainer,
    predict_all,
    regression_data,
)
from torch import Tensor
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC
from torchmetrics.functional import mean_absolute_error, mean_squared_error
from torchmetrics.functional.classification import multiclass_accuracy

from lightning_metrics_base import MetricAwareModule, MetricComputeError, MetricUpdateError


class OwnSteps(Classifier):
    """A user who writes their own steps and calls `update_metrics`."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.update_metrics("train", logits, y)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        self.update_metrics("val", self(x), y, dataloader_idx)


class LabelsOnly(Classifier):
    """`metric_inputs` turns logits into labels before the metrics see them."""

    def __init__(self) -> None:
        super().__init__({"acc": MulticlassAccuracy(num_classes=NUM_CLASSES)}, lr=0.0)
        self.seen_dtypes: set[torch.dtype] = set()

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        labels = preds.argmax(dim=1)
        self.seen_dtypes.add(labels.dtype)
        return labels, target


class ForgetfulHooks(Classifier):
    """Overrides every epoch hook without calling `super()`."""

    def __init__(self) -> None:
        super().__init__(lr=0.0)
        self.seen_in_hook: list[float] = []

    def on_train_epoch_start(self) -> None:
        pass

    def on_validation_epoch_start(self) -> None:
        pass

    def on_train_epoch_end(self) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.seen_in_hook.append(float(self.epoch_metrics.get("val/acc", -1.0)))


class PoliteHooks(Classifier):
    """Overrides an epoch hook and calls `super()`: the work must not run twice."""

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()


class TestUserHooks:
    def test_regression_with_loss_fn_and_metric_inputs(self) -> None:
        train, val = regression_data(200, seed=1), regression_data(150, seed=2)
        model = Regressor()
        trainer = make_trainer(max_epochs=2)
        trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=32))
        preds, target = predict_all(model, val)
        assert float(trainer.callback_metrics["val/mse"]) == pytest.approx(
            float(mean_squared_error(preds.squeeze(-1), target)), rel=1e-6
        )
        assert float(trainer.callback_metrics["val/mae"]) == pytest.approx(
            float(mean_absolute_error(preds.squeeze(-1), target)), rel=1e-6
        )

    def test_own_steps_keep_automatic_handling(self) -> None:
        train, val = classification_data(200, seed=3), classification_data(130, seed=4)
        model = OwnSteps(lr=0.0)
        trainer = make_trainer()
        trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=32))
        for name, dataset in (("train", train), ("val", val)):
            preds, target = predict_all(model, dataset)
            assert float(trainer.callback_metrics[f"{name}/acc"]) == pytest.approx(
                float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES)), abs=1e-6
            )

    def test_metric_inputs_decides_what_metrics_see(self) -> None:
        data = classification_data(100, seed=5)
        model = LabelsOnly()
        trainer = make_trainer()
        trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
        assert model.seen_dtypes == {torch.int64}
        assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(full_data_accuracy(model, data), abs=1e-6)

    def test_epoch_hooks_overridden_without_super(self) -> None:
        data = classification_data(100, seed=6)
        model = ForgetfulHooks()
        trainer = make_trainer(max_epochs=2, num_sanity_val_steps=1)
        trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
        expected = full_data_accuracy(model, data)
        sanity = full_data_accuracy(model, TensorDataset(*data[:32]))
        assert float(trainer.callback_metrics["train/acc"]) == pytest.approx(expected, abs=1e-6)
        # the user's hook already sees this epoch's values (the sanity check's own during the sanity check);
        # the sanity batch does not leak into the first epoch
        assert abs(sanity - expected) > 0.01
        assert model.seen_in_hook == pytest.approx([sanity, expected, expected], abs=1e-6)
        assert not model.val_metrics["acc"].update_called  # type: ignore[index]

    def test_hook_calling_super_still_logs_exact_values(self) -> None:
        data = classification_data(64, seed=7)
        model = PoliteHooks(lr=0.0)
        trainer = make_trainer()
        trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
        assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(full_data_accuracy(model, data), abs=1e-6)

    def test_predict_step_returns_forward(self) -> None:
        data = classification_data(40, seed=8)
        model = Classifier()
        expected = predict_all(model, data)[0]
        inputs_alone = TensorDataset(data.tensors[0])  # batches are one-element lists: [x]
        for dataset in (data, inputs_alone):
            batches = make_trainer().predict(model, loader(dataset, batch_size=16))
            assert torch.allclose(torch.cat(batches), expected)  # type: ignore[arg-type]


class TestRunTimeErrors:
    def test_missing_loss(self) -> None:
        class NoLoss(MetricAwareModule):
            def forward(self, x: Tensor) -> Tensor:
                return x

        with pytest.raises(NotImplementedError, match=r"NoLoss.*implement `compute_loss.*`loss_fn="):
            NoLoss().compute_loss(torch.zeros(1), torch.zeros(1))

    def test_an_unreduced_loss_is_refused_naming_its_shape(self) -> None:
        class Unreduced(Classifier):
            def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
                return F.cross_entropy(preds, target, reduction="none")

        with pytest.raises(TypeError, match=r"compute_loss returned a tensor of shape \(32,\) as the loss.*\.mean\(\)"):
            make_trainer().fit(Unreduced(), loader(classification_data(64, seed=9), batch_size=32))

    def test_a_dict_of_outputs_fed_to_the_metrics_says_to_override_metric_inputs(self) -> None:
        class DictOut(Classifier):
            def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
                return {"logits": self.net(x), "features": x}

            def compute_loss(self, preds: Any, target: Tensor) -> Tensor:
                return F.cross_entropy(preds["logits"], target)

        with pytest.raises(MetricUpdateError, match=r"received the predictions as a dict: override `metric_inputs"):
            make_trainer().fit(DictOut(), loader(classification_data(64, seed=9), batch_size=32))

    def test_batch_that_is_not_a_pair(self) -> None:
        with pytest.raises(TypeError, match=r"unpack_batch.*dict.*Override `unpack_batch"):
            Classifier().unpack_batch({"x": 1})
        with pytest.raises(TypeError, match=r"tuple of length 3"):
            Classifier().unpack_batch((1, 2, 3))

    def test_failing_update_names_stage_and_metric(self) -> None:
        metrics = {"acc": MulticlassAccuracy(num_classes=NUM_CLASSES), "narrow": MulticlassAccuracy(num_classes=3)}
        data = classification_data(64, seed=9)
        with pytest.raises(MetricUpdateError, match=r"train metric 'narrow' failed to update.*shape \(32, 5\)"):
            make_trainer().fit(Classifier(metrics), loader(data, batch_size=32))


class FailsOnce(MulticlassAccuracy):
    """Its first compute fails."""

    def __init__(self) -> None:
        super().__init__(NUM_CLASSES)
        self.failed = False

    def compute(self) -> Tensor:
        if not self.failed:
            self.failed = True
            raise ValueError("nothing to average")
        return super().compute()


def test_failing_compute_names_stage_dataloader_and_metric_and_the_next_run_is_clean() -> None:
    data = classification_data(64, seed=10)
    model = Classifier({"val": {"acc": MulticlassAccuracy(NUM_CLASSES), "once": FailsOnce()}})
    with pytest.raises(MetricComputeError, match=r"val metric 'once' failed to compute .*\(dataloader 0\)"):
        make_trainer().validate(model, loader(data, batch_size=32))
    logged = make_trainer().validate(model, loader(data, batch_size=16))[0]
    expected = full_data_accuracy(model, data)
    assert logged["val/acc"] == pytest.approx(expected, abs=1e-6)  # nothing of the failed run is left
    assert logged["val/once"] == pytest.approx(expected, abs=1e-6)


def test_help_states_the_contract() -> None:
    doc = MetricAwareModule.__doc__ or ""
    for hook in ("forward", "compute_loss", "unpack_batch", "metric_inputs", "epoch_metrics", "super()"):
        assert hook in doc


class TestCallbacksSeeEpochValues:
    def test_checkpoint_and_early_stopping_monitor_logged_names(self, tmp_path: Any) -> None:
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

        train, val = classification_data(128, seed=81), classification_data(96, seed=82)
        checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="train/acc", mode="max", save_top_k=1)
        stopping = EarlyStopping(monitor="val/acc", mode="max", patience=100)
        model = Classifier(lr=0.0)
        trainer = make_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint, stopping])
        trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=32))
        assert float(checkpoint.best_model_score) == pytest.approx(full_data_accuracy(model, train), abs=1e-6)  # type: ignore[arg-type]
        assert float(stopping.best_score) == pytest.approx(full_data_accuracy(model, val), abs=1e-6)


class LogsInItsOwnHook(Classifier):
    """The patterns users write in their epoch-end hook."""

    def __init__(self) -> None:
        super().__init__(lr=0.0)
        self.read_in_hook: list[float] = []

    def on_validation_epoch_end(self) -> None:
        assert self.val_metrics is not None
        self.read_in_hook.append(float(self.epoch_metrics["val/acc"]))
        self.log("mine/acc_object", self.val_metrics["acc"])
        self.log("mine/acc_computed", self.val_metrics["acc"].compute())
        self.log_dict(self.val_metrics)


def test_user_epoch_hook_logs_true_values_even_in_the_sanity_check() -> None:
    data = classification_data(100, seed=350)
    model = LogsInItsOwnHook()
    trainer = make_trainer(num_sanity_val_steps=2)  # Lightning's default sanity check
    trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
    expected = full_data_accuracy(model, data)
    for name in ("val/acc", "mine/acc_object", "mine/acc_computed", "acc"):
        assert float(trainer.callback_metrics[name]) == pytest.approx(expected, abs=1e-6), name
    sanity = full_data_accuracy(model, TensorDataset(*data[:64]))
    assert model.read_in_hook == pytest.approx([sanity, expected], abs=1e-6)


class OwnStepWithGraph(Classifier):
    """Feeds `update_metrics` outputs that carry an autograd graph."""

    def __init__(self) -> None:
        super().__init__({"train": {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=None)}})
        self.graph_held: list[bool] = []
        self.samples_held = 0

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.update_metrics("train", logits, y)
        return F.cross_entropy(logits, y)

    def on_train_epoch_end(self) -> None:
        assert self.train_metrics is not None
        states = self.train_metrics["auroc"].preds
        self.graph_held = [state.requires_grad for state in states]
        self.samples_held = sum(len(state) for state in states)


def test_update_metrics_never_keeps_autograd_graphs() -> None:
    model = OwnStepWithGraph()
    make_trainer().fit(model, loader(classification_data(96, seed=360), batch_size=32))
    assert model.samples_held == 96 and model.graph_held and not any(model.graph_held)


@pytest.mark.parametrize("name", ["training_step", "validation_step", "test_step"])
def test_a_step_carries_the_signature_python_builds_for_it(name: str) -> None:
    # Lightning reads the steps' signatures every batch; the module stores them, and they must not differ
    step = getattr(MetricAwareModule, name)
    rebuilt = types.FunctionType(step.__code__, step.__globals__, name, step.__defaults__, step.__closure__)
    rebuilt.__annotations__, rebuilt.__kwdefaults__ = step.__annotations__, step.__kwdefaults__
    assert "__signature__" in vars(step) and "__signature__" not in vars(rebuilt)
    assert inspect.signature(step) == inspect.signature(rebuilt)
    model = Classifier()
    assert inspect.signature(getattr(model, name)) == inspect.signature(types.MethodType(rebuilt, model))
