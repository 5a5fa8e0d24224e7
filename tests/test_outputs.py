"""Multi-output models: metrics per head, losses per component, one dict of config."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import (
    NUM_CLASSES,
    RecordingLogger,
    TwoHeads,
    classification_data,
    loader,
    make_trainer,
    two_head_reference,
)
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
)
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
)


class TestValuesPerOutput:
    def test_every_value_against_the_whole_data(self) -> None:
        train, val = classification_data(200, seed=401), classification_data(150, seed=402)  # uneven batches of 32
        model = TwoHeads()
        trainer = make_trainer(max_epochs=2)
        trainer.fit(model, loader(train, batch_size=32, shuffle=True), loader(val, batch_size=32))
        logged = trainer.callback_metrics
        for name, expected in two_head_reference(model, val).items():
            assert float(logged[f"val/{name}"]) == pytest.approx(expected, rel=1e-5, abs=1e-6), name
        tested = make_trainer().test(model, loader(val, batch_size=48), verbose=False)[0]
        assert tested["test/big/auroc"] == pytest.approx(two_head_reference(model, val)["big/auroc"], abs=1e-6)

    def test_per_stage_config_specs_and_separator(self) -> None:
        metrics = {
            "train": {"big": {"acc": {"class_path": "BinaryAccuracy"}}},
            "val": {
                "cls": {
                    "acc": {"_target_": "torchmetrics.classification.MulticlassAccuracy", "num_classes": NUM_CLASSES},
                    "confmat": MulticlassConfusionMatrix(NUM_CLASSES),
                },
                "big": MetricCollection({"acc": BinaryAccuracy()}),
            },
        }
        data = classification_data(100, seed=403)
        model = TwoHeads(metrics, lr=0.0, log_sep="_", track_best=("cls/acc",), prog_bar=("big/acc",))
        logger = RecordingLogger()
        trainer = make_trainer(logger=logger)
        trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
        expected = two_head_reference(model, data)
        assert logger.names() >= {"train_big_acc", "val_cls_acc", "val_big_acc", "val_cls_acc_best", "val_loss_cls"}
        assert "train_cls_acc" not in logger.names() and "test_cls_acc" not in trainer.callback_metrics
        assert logger.values("val_cls_acc_best") == pytest.approx([expected["cls/acc"]], abs=1e-6)
        assert "val_big_acc" in trainer.progress_bar_metrics
        x, y = data.tensors
        with torch.no_grad():
            confmat = multiclass_confusion_matrix(model(x)["cls"], y, num_classes=NUM_CLASSES)
        assert torch.equal(model.epoch_metrics["val_cls_confmat"], confmat)

    def test_two_val_dataloaders(self) -> None:
        first, second = classification_data(96, seed=404), classification_data(70, seed=405)
        model = TwoHeads(lr=0.0)
        results = make_trainer().validate(model, [loader(first, batch_size=32), loader(second, batch_size=32)])
        for index, dataset in enumerate((first, second)):
            expected = two_head_reference(model, dataset)
            for name in ("cls/acc", "big/auroc", "loss/big"):
                assert results[index][f"val/{name}/dataloader_idx_{index}"] == pytest.approx(expected[name], abs=1e-5)

    def test_stage_metrics_are_per_output_collections(self) -> None:
        model = TwoHeads()
        assert model.val_metrics is not None and set(model.val_metrics) == {"cls", "big"}
        assert isinstance(model.val_metrics["cls"], MetricCollection)
        assert model.val_metrics["big"]["acc"] is not model.train_metrics["big"]["acc"]  # type: ignore[index]


class ArgmaxFirst(TwoHeads):
    """`metric_inputs` runs first, on the whole dicts."""

    def metric_inputs(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> tuple[Any, Any]:
        preds, target = super().metric_inputs(preds, target)
        return {**preds, "cls": preds["cls"].argmax(dim=1)}, target


def test_metric_inputs_sees_the_whole_dicts() -> None:
    data = classification_data(64, seed=406)
    model = ArgmaxFirst({"cls": {"acc": MulticlassAccuracy(NUM_CLASSES)}}, lr=0.0)
    logged = make_trainer().validate(model, loader(data, batch_size=32))[0]
    assert logged["val/cls/acc"] == pytest.approx(two_head_reference(model, data)["cls/acc"], abs=1e-6)


class MissingHead(TwoHeads):
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"cls": super().forward(x)["cls"]}

    def compute_loss(self, preds: Any, target: Any) -> Tensor:
        raise AssertionError("compute_loss must not be reached")


class MissingTarget(TwoHeads):
    def unpack_batch(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        return x, {"cls": y}

    def compute_loss(self, preds: Any, target: Any) -> Tensor:
        raise AssertionError("compute_loss must not be reached")


class TensorOut(TwoHeads):
    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x)["cls"]


class DropsAnOutput(TwoHeads):
    def metric_inputs(self, preds: Any, target: Any) -> tuple[Any, Any]:
        preds, target = super().metric_inputs(preds, target)
        return {"cls": preds["cls"]}, target


class FlattensTheOutputs(TwoHeads):
    def metric_inputs(self, preds: Any, target: Any) -> tuple[Any, Any]:
        return preds["cls"], target


class TestErrors:
    @pytest.mark.parametrize(
        ("module", "match"),
        [
            (
                DropsAnOutput,
                r"output 'big' is missing from the predictions metric_inputs returned; its keys: \['cls'\]",
            ),
            (FlattensTheOutputs, r"metric_inputs returned predictions as a Tensor, but `outputs=\('cls', 'big'\)`"),
        ],
    )
    def test_right_after_metric_inputs(self, module: type[TwoHeads], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            make_trainer().validate(module(), loader(classification_data(32, seed=407), batch_size=16))

    @pytest.mark.parametrize(
        ("module", "match"),
        [
            (MissingHead, r"output 'big' is missing from what forward returned; its keys: \['cls'\]"),
            (MissingTarget, r"output 'big' is missing from the target; its keys: \['cls'\]"),
            (TensorOut, r"forward returned a Tensor, but `outputs=\('cls', 'big'\)` needs a dict"),
        ],
    )
    def test_right_after_forward(self, module: type[TwoHeads], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            make_trainer().validate(module(), loader(classification_data(32, seed=407), batch_size=16))

    def test_at_construction(self) -> None:
        with pytest.raises(ValueError, match=r"metrics: 'age' is neither an output \('cls', 'big'\) nor a stage"):
            TwoHeads({"cls": {"acc": MulticlassAccuracy(NUM_CLASSES)}, "age": {"acc": BinaryAccuracy()}})
        with pytest.raises(ValueError, match=r"metrics\['val'\]: 'age' is not an output \('cls', 'big'\)"):
            TwoHeads({"val": {"age": {"acc": BinaryAccuracy()}}})
        with pytest.raises(ValueError, match=r"outputs: 'val' is a stage name"):
            TwoHeads(outputs=("cls", "val"))
        with pytest.raises(ValueError, match=r"track_best: 'acc' is not a metric"):
            TwoHeads(track_best=("acc",))


def test_multitask_wrapper_without_outputs_logs_under_its_name() -> None:
    from torchmetrics.wrappers import MultitaskWrapper

    class Wrapped(TwoHeads):
        pass

    metrics = {
        "mt": MultitaskWrapper({"cls": MulticlassAccuracy(NUM_CLASSES), "big": MetricCollection([BinaryAccuracy()])})
    }
    data = classification_data(64, seed=408)
    model = Wrapped(metrics, lr=0.0, outputs=None)
    logged = make_trainer().validate(model, loader(data, batch_size=32))[0]
    expected = two_head_reference(model, data)
    assert logged["val/mt/cls"] == pytest.approx(expected["cls/acc"], abs=1e-6)
    assert logged["val/mt/big/BinaryAccuracy"] == pytest.approx(expected["big/acc"], abs=1e-6)
    assert logged["val/loss/big"] == pytest.approx(expected["loss/big"], rel=1e-5)


def test_per_step_values_and_figures_per_output(tmp_path: Any) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = {"cls": {"acc": MulticlassAccuracy(NUM_CLASSES), "confmat": MulticlassConfusionMatrix(NUM_CLASSES)}}
    model = TwoHeads(metrics, lr=0.0, log_train_step=True)
    data = classification_data(64, seed=409)
    logger = TensorBoardLogger(tmp_path, name="heads")
    trainer = make_trainer(logger=logger, log_every_n_steps=1)
    trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
    x, y = data.tensors
    with torch.no_grad():
        last = float(multiclass_accuracy(model(x[32:])["cls"], y[32:], num_classes=NUM_CLASSES))
    assert float(trainer.callback_metrics["train/cls/acc_step"]) == pytest.approx(last, abs=1e-6)
    events = EventAccumulator(str(logger.log_dir), size_guidance={"images": 0})
    events.Reload()
    assert {"val/cls/confmat", "train/cls/confmat"} <= set(events.Tags()["images"])
