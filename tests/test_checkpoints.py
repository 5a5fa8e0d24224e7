"""Checkpoints carry weights only; hyperparameters round-trip; best values survive a resume."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import (
    NUM_CLASSES,
    Classifier,
    RecordingLogger,
    classification_data,
    loader,
    make_trainer,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.wrappers import ClasswiseWrapper


class WithBufferAndSubmodule(Metric):
    """A metric carrying a persistent state, a buffer and a submodule with a parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum", persistent=True)
        self.register_buffer("scale", torch.ones(()))
        self.proj = torch.nn.Linear(NUM_CLASSES, 1)

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.total += preds.sum() * self.scale

    def compute(self) -> Tensor:
        return self.total


class HiddenFactor(Metric):
    """Keeps its constructor argument under another name: it cannot be written back as a spec."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self._scale = factor
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.total += preds.sum() * self._scale

    def compute(self) -> Tensor:
        return self.total


class SpecConfigured(Classifier):
    """Metrics come in as spec dicts and are saved as hyperparameters."""

    def __init__(self, metrics: dict[str, Any] | None = None, lr: float = 0.05) -> None:
        super().__init__(metrics, lr=lr)
        self.save_hyperparameters()


class ObjectConfigured(Classifier):
    def __init__(self, metrics: dict[str, Any] | None = None) -> None:
        super().__init__(metrics)
        self.save_hyperparameters()


SPECS = {
    "acc": {"class_path": "torchmetrics.classification.MulticlassAccuracy", "init_args": {"num_classes": NUM_CLASSES}},
    "f1": {"_target_": "MulticlassF1Score", "num_classes": NUM_CLASSES, "average": "macro"},
}


class TestStateDict:
    def test_metric_state_stays_out_and_loading_is_strict(self) -> None:
        rich = Classifier({"acc": MulticlassAccuracy(NUM_CLASSES), "odd": WithBufferAndSubmodule()})
        assert set(rich.state_dict()) == {"net.weight", "net.bias"}
        plain = Classifier({"f1": MulticlassF1Score(NUM_CLASSES)})
        plain.load_state_dict(rich.state_dict(), strict=True)
        rich.load_state_dict(plain.state_dict(), strict=True)
        assert torch.equal(rich.net.weight, plain.net.weight)

    def test_checkpoint_loads_into_a_module_with_another_metric_set(self, tmp_path: Path) -> None:
        data = loader(classification_data(64, seed=51), batch_size=32)
        trainer = make_trainer(default_root_dir=tmp_path)
        model = Classifier({"acc": MulticlassAccuracy(NUM_CLASSES), "odd": WithBufferAndSubmodule()})
        trainer.fit(model, data, data)
        path = tmp_path / "model.ckpt"
        trainer.save_checkpoint(path)
        other = Classifier.load_from_checkpoint(path, metrics={"f1": MulticlassF1Score(NUM_CLASSES)}, strict=True)
        assert torch.equal(other.net.weight, model.net.weight)
        assert set(torch.load(path, weights_only=True)["state_dict"]) == {"net.weight", "net.bias"}


class TestHyperparameters:
    def test_spec_dicts_round_trip_through_load_from_checkpoint(self, tmp_path: Path) -> None:
        data = loader(classification_data(64, seed=52), batch_size=32)
        trainer = make_trainer(default_root_dir=tmp_path)
        trainer.fit(SpecConfigured(SPECS), data, data)
        path = tmp_path / "spec.ckpt"
        trainer.save_checkpoint(path)
        restored = SpecConfigured.load_from_checkpoint(path)  # torch.load's default weights_only=True
        assert isinstance(restored.val_metrics["acc"], MulticlassAccuracy)  # type: ignore[index]
        assert isinstance(restored.val_metrics["f1"], MulticlassF1Score)  # type: ignore[index]
        assert restored.val_metrics["f1"].average == "macro"  # type: ignore[index]

    def test_metric_objects_round_trip_through_load_from_checkpoint(self, tmp_path: Path) -> None:
        metrics = {
            "acc": MulticlassAccuracy(NUM_CLASSES, average="micro"),
            "classwise": ClasswiseWrapper(MulticlassAccuracy(NUM_CLASSES, average=None), labels=list("abcde")),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # every metric here can be written as a spec: no warning
            model = ObjectConfigured(metrics)
        data = loader(classification_data(64, seed=58), batch_size=32)
        trainer = make_trainer(default_root_dir=tmp_path)
        trainer.fit(model, data, data)
        path = tmp_path / "objects.ckpt"
        trainer.save_checkpoint(path)
        restored = ObjectConfigured.load_from_checkpoint(path)  # torch.load's default weights_only=True
        assert restored.val_metrics["acc"].average == "micro"  # type: ignore[index]
        wrapper = restored.val_metrics["classwise"]  # type: ignore[index]
        assert isinstance(wrapper, ClasswiseWrapper) and wrapper.labels == list("abcde")
        assert wrapper.metric.average is None

    def test_metric_whose_arguments_cannot_be_read_back_warns_with_the_fix(self) -> None:
        with pytest.warns(
            UserWarning, match=r"'metrics': cannot write metrics\['odd'\] as a spec.*ignore=\['metrics'\]"
        ):
            ObjectConfigured({"acc": MulticlassAccuracy(NUM_CLASSES), "odd": HiddenFactor(2.0)})


class FrozenEasyFirst(Classifier):
    """lr=0; `track_best` on accuracy and loss."""

    def __init__(self, lr: float = 0.0) -> None:
        super().__init__(lr=lr, track_best=("acc", "loss"))


class OwnCheckpointHooks(FrozenEasyFirst):
    """Overrides the checkpoint hooks without calling `super()`."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mine"] = 1

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.mine = checkpoint["mine"]


def easy_first(model: torch.nn.Module, n: int, seed: int) -> Any:
    """Validation data ordered so the first batch is all correct: the sanity check would score 1.0."""
    dataset = classification_data(n, seed)
    x, y = dataset.tensors
    with torch.no_grad():
        correct = model(x).argmax(dim=1) == y
    order = torch.cat([torch.nonzero(correct).flatten(), torch.nonzero(~correct).flatten()])
    return torch.utils.data.TensorDataset(x[order], y[order])


class TestTrackBest:
    def test_best_follows_direction_and_ignores_the_sanity_check(self) -> None:
        torch.manual_seed(3)
        model = FrozenEasyFirst(lr=0.2)
        val = easy_first(model, 300, seed=53)
        logger = RecordingLogger()
        trainer = make_trainer(max_epochs=4, num_sanity_val_steps=1, logger=logger)
        trainer.fit(model, loader(classification_data(256, seed=54), batch_size=16), loader(val, batch_size=16))
        accs, losses = logger.values("val/acc"), logger.values("val/loss")
        assert len(accs) == 4 and max(accs) < 1.0
        assert logger.values("val/acc_best") == pytest.approx([max(accs[: i + 1]) for i in range(4)], abs=1e-6)
        assert logger.values("val/loss_best") == pytest.approx([min(losses[: i + 1]) for i in range(4)], rel=1e-5)

    @pytest.mark.parametrize("module", [FrozenEasyFirst, OwnCheckpointHooks])
    def test_best_survives_a_resume(self, tmp_path: Path, module: type[FrozenEasyFirst]) -> None:
        torch.manual_seed(4)
        model = module(lr=0.2)
        train, val = loader(classification_data(256, seed=55), batch_size=16), loader(classification_data(200, 56))
        logger = RecordingLogger()
        checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
        first = make_trainer(max_epochs=2, logger=logger, enable_checkpointing=True, callbacks=[checkpoint])
        first.fit(model, train, val)
        before = logger.values("val/acc")

        resumed_model = module(lr=0.0)
        resumed_logger = RecordingLogger()
        second = make_trainer(max_epochs=3, logger=resumed_logger)
        x, y = classification_data(200, 57).tensors
        harder = loader(torch.utils.data.TensorDataset(x, torch.randint(0, NUM_CLASSES, y.shape)))
        second.fit(resumed_model, train, harder, ckpt_path=tmp_path / "last.ckpt")
        after = resumed_logger.values("val/acc")
        assert len(after) == 1 and after[0] < max(before)  # only a restored best can beat this epoch
        assert resumed_logger.values("val/acc_best") == pytest.approx([max(before + after)], abs=1e-6)
        assert resumed_model.best_values["val/acc_best"] == pytest.approx(max(before + after), abs=1e-6)


def test_a_checkpoint_written_by_release_0_1_0_resumes() -> None:
    path = Path(__file__).parent / "data" / "release_0_1_0.ckpt"
    saved = torch.load(path, weights_only=True)
    model = Classifier(lr=0.0, track_best=("acc", "loss"))
    logger = RecordingLogger()
    x, y = classification_data(64, 59).tensors
    noise = loader(torch.utils.data.TensorDataset(x, torch.randint(0, NUM_CLASSES, y.shape)))
    trainer = make_trainer(max_epochs=saved["epoch"] + 1, logger=logger)
    trainer.fit(model, loader(classification_data(128, seed=1), batch_size=32), noise, ckpt_path=path)
    Classifier().load_state_dict(saved["state_dict"], strict=True)  # weights only, as before
    acc = logger.values("val/acc")
    old_best = saved["lightning_metrics_base"]["best_values"]
    assert len(acc) == 1
    assert model.best_values["val/acc_best"] == pytest.approx(max(old_best["val/acc_best"], acc[0]))
    assert logger.values("val/loss_best") == pytest.approx(
        [min(old_best["val/loss_best"], logger.values("val/loss")[0])], rel=1e-6
    )
