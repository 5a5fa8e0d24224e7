"""Real use: the demo, LightningCLI from YAML, Hydra-style specs from YAML."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score
from torchmetrics.wrappers import ClasswiseWrapper

from lightning_metrics_base.demo import DigitsClassifier, DigitsDataModule
from lightning_metrics_base.demo import main as demo_main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"


def test_demo_prints_agreeing_table_and_writes_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_main(["--epochs", "2", "--out", str(tmp_path), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Every test value equals the metric over the whole test set." in printed
    table = printed[printed.index("metric  ") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:15]}
    assert set(rows) >= {"acc", "f1", "per_class_acc/0", "per_class_acc/9", "confmat"}
    for name in ("acc", "f1", "per_class_acc/3"):
        _, val, test, recomputed, agree = rows[name]
        assert test == recomputed and agree == "yes" and 0.0 <= float(val) <= 1.0
    for picture in ("metric_curves.png", "confusion_matrix.png"):
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG")
    with (tmp_path / "logs" / "metrics.csv").open() as handle:
        columns = set(next(csv.reader(handle)))
    assert {"train/loss", "train/acc", "val/acc", "val/f1", "val/per_class_acc/0", "test/acc"} <= columns
    assert not any(column.startswith("val/confmat") for column in columns)


def test_lightning_cli_from_yaml(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(EXAMPLES / "train_cli.py"),
        "fit",
        "--config",
        str(EXAMPLES / "cli_config.yaml"),
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_csv,) = tmp_path.rglob("metrics.csv")
    with metrics_csv.open() as handle:
        columns = set(next(csv.reader(handle))) - {"epoch", "step"}
    assert columns == {"train/loss", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1"}
    (checkpoint,) = tmp_path.rglob("*.ckpt")
    model = DigitsClassifier.load_from_checkpoint(checkpoint)
    assert isinstance(model.val_metrics["acc"], MulticlassAccuracy)  # type: ignore[index]
    assert model.val_metrics["acc"].average == "micro"  # type: ignore[index]
    assert isinstance(model.val_metrics["f1"], MulticlassF1Score)  # type: ignore[index]
    assert isinstance(model.test_metrics["confmat"], MulticlassConfusionMatrix)  # type: ignore[index]


def test_hydra_specs_from_yaml() -> None:
    config = OmegaConf.load(EXAMPLES / "hydra_metrics.yaml")
    model = DigitsClassifier(metrics=config.metrics)
    assert set(model.train_metrics.keys()) == {"acc"}  # type: ignore[union-attr]
    assert isinstance(model.val_metrics["per_class"], ClasswiseWrapper)  # type: ignore[index]
    assert model.test_metrics is None
    data = DigitsDataModule()
    data.setup()
    from helpers import make_trainer

    make_trainer(limit_train_batches=2).fit(model, datamodule=data)
    assert 0.0 <= float(model.epoch_metrics["val/per_class/multiclassaccuracy_seven"]) <= 1.0
