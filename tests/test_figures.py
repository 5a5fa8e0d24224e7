"""Results of two or more dimensions reach the loggers as figures; without matplotlib nothing breaks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import NUM_CLASSES, Classifier, classification_data, loader, make_trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
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
    with pytest.warns(UserWarning, match=r"matplotlib is not installed, so val/confmat .* `pip install matplotlib`"):
        events = fit_with_tensorboard(tmp_path)
    assert events.Tags()["images"] == []
    assert "val/acc" in events.Tags()["scalars"]


def figure_metrics() -> dict[str, Any]:
    return {
        "acc": MulticlassAccuracy(num_classes=NUM_CLASSES),
        "confmat": MulticlassConfusionMatrix(num_classes=NUM_CLASSES),
    }


def test_figures_land_at_the_step_of_their_epoch_scalars(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="steps")
    model = Classifier({"train": figure_metrics(), "val": figure_metrics(), "test": figure_metrics()})
    data = loader(classification_data(100, seed=72), batch_size=32)
    trainer = make_trainer(max_epochs=2, logger=logger)
    trainer.fit(model, data, data)
    trainer.test(model, data, verbose=False)
    events = EventAccumulator(str(Path(logger.log_dir)), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    for stage in ("train", "val", "test"):
        figure_steps = [image.step for image in events.Images(f"{stage}/confmat")]
        scalar_steps = [scalar.step for scalar in events.Scalars(f"{stage}/acc")]
        assert figure_steps == scalar_steps and len(figure_steps) == (1 if stage == "test" else 2)


def test_log_figures_takes_the_stages_to_draw_for(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="stages")
    model = Classifier({"train": figure_metrics(), "val": figure_metrics()}, log_figures=("val",))
    data = loader(classification_data(100, seed=75), batch_size=32)
    make_trainer(max_epochs=2, logger=logger).fit(model, data, data)
    events = EventAccumulator(str(Path(logger.log_dir)), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["val/confmat"]
    assert model.epoch_metrics["train/confmat"].shape == (NUM_CLASSES, NUM_CLASSES)  # still kept
    with pytest.raises(ValueError, match=r"log_figures: unknown stage 'valid'"):
        Classifier(log_figures=("valid",))


def test_figures_reach_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store needs no database (mlflow-skinny)
    logger = MLFlowLogger(experiment_name="figures", tracking_uri=f"file:{tmp_path / 'mlruns'}")
    data = loader(classification_data(100, seed=73), batch_size=32)
    trainer = make_trainer(max_epochs=2, logger=logger)
    trainer.fit(Classifier({"val": figure_metrics()}), data, data)
    artifacts = [item.path for item in logger.experiment.list_artifacts(logger.run_id, "figures")]
    steps = sorted({int(path.rsplit("_", 1)[1].removesuffix(".png")) for path in artifacts})
    assert len(artifacts) == 2 and all(path.startswith("figures/val_confmat_step_") for path in artifacts)
    history = logger.experiment.get_metric_history(logger.run_id, "val/acc")
    assert sorted(point.step for point in history) == steps  # the steps of the two validation epochs' scalars


def test_two_test_runs_at_one_step_keep_both_figures_in_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    logger = MLFlowLogger(experiment_name="tests", tracking_uri=f"file:{tmp_path / 'mlruns'}")
    model = Classifier({"test": figure_metrics()})
    trainer = make_trainer(logger=logger)
    for seed in (76, 77):
        trainer.test(model, loader(classification_data(64, seed=seed), batch_size=32), verbose=False)
    artifacts = sorted(item.path for item in logger.experiment.list_artifacts(logger.run_id, "figures"))
    assert artifacts == ["figures/test_confmat_step_0.png", "figures/test_confmat_step_0_2.png"]


def test_a_logger_that_cannot_take_figures_gets_one_notice_per_fit(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path)
    data = loader(classification_data(100, seed=74), batch_size=32)
    model = Classifier({"val": figure_metrics()})
    for _ in range(2):
        with pytest.warns(UserWarning, match="CSVLogger cannot take figures: val/confmat") as record:
            make_trainer(max_epochs=3, logger=logger).fit(model, data, data)
        assert sum("cannot take figures" in str(warning.message) for warning in record) == 1


def test_fit_then_test_gives_the_notice_once(tmp_path: Path) -> None:
    data = loader(classification_data(100, seed=78), batch_size=32)
    model = Classifier({"val": figure_metrics(), "test": figure_metrics()})
    trainer = make_trainer(logger=CSVLogger(tmp_path))
    with pytest.warns(UserWarning) as record:
        trainer.fit(model, data, data)
        trainer.test(model, data, verbose=False)
    notices = [str(warning.message) for warning in record if "cannot take figures" in str(warning.message)]
    assert len(notices) == 1 and "add a TensorBoard or MLflow logger" in notices[0]


def test_the_notice_names_a_remedy_that_applies(tmp_path: Path) -> None:
    data = loader(classification_data(100, seed=79), batch_size=32)
    loggers = [CSVLogger(tmp_path), TensorBoardLogger(tmp_path, name="tb")]
    with pytest.warns(UserWarning) as record:
        make_trainer(logger=loggers).fit(Classifier({"val": figure_metrics()}), data, data)
    notices = [str(warning.message) for warning in record if "cannot take figures" in str(warning.message)]
    assert len(notices) == 1 and "they go to TensorBoardLogger" in notices[0] and "add a" not in notices[0]


class Grid(MulticlassConfusionMatrix):
    """A metric whose 2-D result its own `plot()` cannot draw."""

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("no plot for this metric")


def test_a_result_the_metric_cannot_draw_gets_one_notice(tmp_path: Path) -> None:
    data = loader(classification_data(100, seed=80), batch_size=32)
    model = Classifier({"val": {"grid": Grid(num_classes=NUM_CLASSES)}})
    with pytest.warns(UserWarning) as record:
        make_trainer(max_epochs=2, logger=TensorBoardLogger(tmp_path)).fit(model, data, data)
    notices = [str(warning.message) for warning in record if "cannot draw" in str(warning.message)]
    assert len(notices) == 1 and "Grid.plot() cannot draw val/grid" in notices[0] and "epoch_metrics" in notices[0]
    assert model.epoch_metrics["val/grid"].shape == (NUM_CLASSES, NUM_CLASSES)
