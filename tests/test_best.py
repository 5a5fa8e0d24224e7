"""The best-value tracker: direction, the NaN rule, its state."""

from __future__ import annotations

import math

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
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.regression import MeanSquaredError

from lightning_metrics_base.report.best import CHECKPOINT_KEY, BestTracker, direction
from lightning_metrics_base.report.naming import Destination, Namer


class NoDirection(MeanSquaredError):
    higher_is_better = None


class TestDirection:
    def test_from_higher_is_better(self) -> None:
        assert direction("mse", MeanSquaredError()) is False
        assert direction("acc", MulticlassAccuracy(3)) is True

    def test_a_metric_without_direction_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"track_best: metric 'x' \(NoDirection\) does not say"):
            direction("x", NoDirection())


class TestBestTracker:
    def test_of_names_takes_each_direction(self) -> None:
        tracker = BestTracker.of(("acc", "loss"), {"acc": MulticlassAccuracy(3)})
        assert tracker.higher_is_better == {"acc": True, "loss": False}
        with pytest.raises(ValueError, match=r"metric 'x' \(NoDirection\)"):
            BestTracker.of(("x",), {"x": NoDirection()})

    def test_checkpoint_round_trip(self) -> None:
        best = BestTracker({"loss": False})
        best.record("loss", "val/loss_best", 0.25)
        checkpoint: dict[str, object] = {"state_dict": {}}
        best.save_to(checkpoint)
        assert checkpoint[CHECKPOINT_KEY] == {"best_values": {"val/loss_best": 0.25}}
        restored = BestTracker({"loss": False})
        restored.load_from(checkpoint)
        restored.load_from({"state_dict": {}})  # a checkpoint without the key changes nothing
        assert restored.values == {"val/loss_best": 0.25}

    def test_lower_is_better_and_nan(self) -> None:
        best = BestTracker({"loss": False})
        values = [math.nan, 0.7, math.nan, 0.9, 0.4]
        assert [best.record("loss", "val/loss_best", value) for value in values] == [None, 0.7, 0.7, 0.7, 0.4]

    def test_state_round_trip(self) -> None:
        best = BestTracker({"acc": True})
        best.record("acc", "val/acc_best/dataloader_idx_1", 0.5)
        restored = BestTracker({"acc": True})
        restored.load_state_dict(best.state_dict())
        assert restored.values == {"val/acc_best/dataloader_idx_1": 0.5}

    def test_offer_skips_non_scalars(self) -> None:
        best = BestTracker({"acc": True, "loss": False})
        logged = best.offer(
            Namer("/"), Destination("val"), {}, {"acc": (torch.tensor([0.1, 0.2]), MulticlassAccuracy(2))}
        )
        assert logged == [] and best.values == {}


class NaNFirst(MulticlassAccuracy):
    """Accuracy whose first epoch value is NaN."""

    def __init__(self) -> None:
        super().__init__(num_classes=NUM_CLASSES)
        self.epochs_computed = 0

    def compute(self) -> Tensor:
        self.epochs_computed += 1
        return torch.tensor(math.nan) if self.epochs_computed == 1 else super().compute()


def test_nan_never_becomes_nor_blocks_the_best() -> None:
    logger = RecordingLogger()
    model = Classifier({"val": {"x": NaNFirst()}}, lr=0.1, track_best=("x",))
    train, val = classification_data(128, seed=330), classification_data(96, seed=331)
    make_trainer(max_epochs=4, logger=logger).fit(model, loader(train, batch_size=16), loader(val, batch_size=32))
    values = logger.values("val/x")
    assert math.isnan(values[0]) and not any(math.isnan(value) for value in values[1:])
    assert logger.values("val/x_best") == pytest.approx([max(values[1 : i + 1]) for i in range(1, 4)], abs=1e-6)
