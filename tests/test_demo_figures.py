"""The demo's and the loggers' figures read well: a colour bar, labelled axes, titles with the metric and epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import pytest
import torch
from helpers import NUM_CLASSES, Classifier, FigureLogger, classification_data, loader, make_trainer
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_metrics_base import demo

matplotlib.use("Agg")


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from matplotlib.figure import Figure

    figures: list[Any] = []
    original = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


class WithMatrix:
    def __init__(self) -> None:
        self.epoch_metrics = {"test/confmat": torch.randint(0, 30, (demo.NUM_CLASSES, demo.NUM_CLASSES))}


def test_the_confusion_matrix_has_a_colour_bar_counts_and_upright_labels(tmp_path: Path, saved: list[Any]) -> None:
    model = WithMatrix()
    demo.plot_confusion_matrix(model, tmp_path)  # type: ignore[arg-type]
    (figure,) = saved
    matrix_axis, colour_bar = figure.axes
    assert colour_bar.get_ylabel() == "samples"
    assert [label.get_rotation() for label in matrix_axis.get_xticklabels()] == [0.0] * demo.NUM_CLASSES
    assert matrix_axis.get_xlabel() == "predicted digit" and matrix_axis.get_ylabel() == "true digit"
    counts = {text.get_text() for text in matrix_axis.texts}
    assert str(int(model.epoch_metrics["test/confmat"][0, 0])) in counts and len(matrix_axis.texts) == 100
    assert all(text.get_horizontalalignment() == "center" for text in matrix_axis.texts)


def test_the_curves_have_y_labels_and_distinguishable_lines(tmp_path: Path, saved: list[Any]) -> None:
    csv = tmp_path / "metrics.csv"
    rows = ["epoch,step,train/loss,val/loss,train/acc,val/acc,val/f1"]
    rows += [
        f"{epoch},{epoch},{1 - epoch / 10},{1.1 - epoch / 10},0.{epoch},0.{epoch + 1},0.{epoch}" for epoch in range(3)
    ]
    csv.write_text("\n".join(rows) + "\n")
    demo.plot_curves(csv, tmp_path)
    (figure,) = saved
    losses, values = figure.axes
    assert losses.get_ylabel() and values.get_ylabel()
    styles = {(line.get_linestyle(), line.get_marker()) for line in values.get_lines()}
    assert len(styles) == 3  # train/acc, val/acc and val/f1 each look different


def test_logger_figures_are_titled_with_the_metric_and_epoch() -> None:
    logger = FigureLogger()
    model = Classifier({"val": {"confmat": MulticlassConfusionMatrix(NUM_CLASSES)}})
    data = loader(classification_data(64, seed=90), batch_size=32)
    make_trainer(max_epochs=2, logger=logger).fit(model, data, data)
    assert [title for _, _, title in logger.titles] == ["val/confmat, epoch 0", "val/confmat, epoch 1"]
