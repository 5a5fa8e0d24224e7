"""Non-scalar results: per-element scalars, dict keys, matrices kept whole; list states reset every epoch."""

from __future__ import annotations

import pytest
import torch
from helpers import (
    NUM_CLASSES,
    Classifier,
    MeanAndMax,
    RecordingLogger,
    classification_data,
    loader,
    make_trainer,
    predict_all,
)
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassConfusionMatrix,
    MulticlassROC,
)
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix
from torchmetrics.wrappers import ClasswiseWrapper

LABELS = ["ant", "bee", "cat", "dog", "eel"]


class TestNonScalarResults:
    def test_every_shape_is_logged_or_kept(self) -> None:
        metrics = {
            "per_class": MulticlassAccuracy(num_classes=NUM_CLASSES, average=None),
            "classwise": ClasswiseWrapper(MulticlassAccuracy(num_classes=NUM_CLASSES, average=None), labels=LABELS),
            "confmat": MulticlassConfusionMatrix(num_classes=NUM_CLASSES),
            "roc": MulticlassROC(num_classes=NUM_CLASSES, thresholds=11),
            "top": MeanAndMax(),
        }
        val = classification_data(230, seed=41)
        logger = RecordingLogger()
        model = Classifier({"val": metrics})
        trainer = make_trainer(logger=logger)
        trainer.fit(model, loader(classification_data(64, seed=42)), loader(val, batch_size=32))

        preds, target = predict_all(model, val)
        per_class = multiclass_accuracy(preds, target, num_classes=NUM_CLASSES, average=None)
        logged = trainer.callback_metrics
        for index, label in enumerate(LABELS):
            assert float(logged[f"val/per_class/{index}"]) == pytest.approx(float(per_class[index]), abs=1e-6)
            assert float(logged[f"val/classwise/multiclassaccuracy_{label}"]) == pytest.approx(
                float(per_class[index]), abs=1e-6
            )
        top = preds.max(dim=1).values
        assert float(logged["val/top/mean"]) == pytest.approx(float(top.mean()), abs=1e-5)
        assert float(logged["val/top/max"]) == pytest.approx(float(top.max()), abs=1e-6)

        confmat = model.epoch_metrics["val/confmat"]
        assert confmat.shape == (NUM_CLASSES, NUM_CLASSES) and int(confmat.sum()) == len(val)
        assert torch.equal(confmat, multiclass_confusion_matrix(preds, target, num_classes=NUM_CLASSES))
        assert confmat.device.type == "cpu" and not confmat.requires_grad
        assert model.epoch_metrics["val/roc/0"].shape == (NUM_CLASSES, 11)  # fpr, kept for plots
        assert not any(name.startswith(("val/confmat", "val/roc")) for name in logger.names())
        assert torch.equal(model.epoch_metrics["val/per_class"], per_class)


class ListStateProbe(Classifier):
    """Records how many samples the list-state metrics hold in the user's hooks."""

    def __init__(self) -> None:
        super().__init__(
            {
                "auroc": MulticlassAUROC(num_classes=NUM_CLASSES, thresholds=None),
                "ap": MulticlassAveragePrecision(num_classes=NUM_CLASSES, thresholds=None),
            },
            lr=0.01,
        )
        self.at_epoch_end: list[int] = []
        self.after_logging: list[int] = []

    def _held(self, stage: str) -> int:
        collection = getattr(self, f"{stage}_metrics")
        return sum(sum(len(batch) for batch in metric.preds) for metric in collection.values(copy_state=False))

    def on_train_epoch_start(self) -> None:
        self.after_logging.append(self._held("train"))

    def on_train_epoch_end(self) -> None:
        self.at_epoch_end.append(self._held("train"))

    def on_validation_epoch_end(self) -> None:
        self.at_epoch_end.append(self._held("val"))

    def on_validation_end(self) -> None:
        self.after_logging.append(self._held("val"))

    def on_train_end(self) -> None:
        self.after_logging.append(self._held("train"))


def test_list_states_are_held_for_user_hooks_and_released_after_logging() -> None:
    model = ListStateProbe()
    data = classification_data(96, seed=43)
    trainer = make_trainer(max_epochs=20, num_sanity_val_steps=1)
    trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
    # the user's epoch-end hooks see the whole epoch's samples (32 in the sanity check, then 96, in each metric)
    assert model.at_epoch_end == [2 * 32] + [2 * 96, 2 * 96] * 20
    # once Lightning has logged, the state is released: memory stays flat over the epochs
    assert len(model.after_logging) == 1 + 20 + 20 + 1
    assert model.after_logging == [0] * 42
    assert "val/auroc" in trainer.callback_metrics and "train/ap" in trainer.callback_metrics
