"""Results of two or more dimensions reach the loggers as figures; without matplotlib nothing breaks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import NUM_CLASSES, Classifier, classification_data, loader, make_trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassROC


def fit_with_tensorboard(tmp_path: Path) -> EventAccumulator:
    metrics = {
        "acc": MulticlassAccuracy(num_classes=NUM_CLASSES),
        "confmat": MulticlassConfusionMatrix(num_classes=NUM_CLASSES),
        "roc": MulticlassROC(num_classes=NUM_CLASSES, thresholds=20),
    }
    logger = TensorBoardLogger(tmp_path, name="run")
    data = loader(classification_data(100, seed=71), batch_size=32)
    make_trainer(max_epochs=2, logger=logger, num_sanity_val_steps=1).fit(Classifier({"val": metrics}), data, data)
    events = EventAccumulator(str(Path(logger.log_dir)), size_guidance={"images": 0})
    events.Reload()
    return events


def test_figures_reach_tensorboard(tmp_path: Path) -> None:
    events = fit_with_tensorboard(tmp_path)
    assert {"val/confmat", "val/roc"} <= set(events.Tags()["images"])
    confmat_images = events.Images("val/confmat")
    assert len(confmat_images) == 2  # one per epoch, none from the sanity check
    assert all(image.width > 100 and image.encoded_image_string.startswith(b"\x89PNG") for image in confmat_images)
    assert "val/acc" in events.Tags()["scalars"]


def test_without_matplotlib_nothing_breaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    events = fit_with_tensorboard(tmp_path)
    assert events.Tags()["images"] == []
    assert "val/acc" in events.Tags()["scalars"]
