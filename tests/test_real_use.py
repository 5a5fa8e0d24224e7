"""Real use: the demo, LightningCLI from YAML, Hydra-style specs from YAML."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score
from torchmetrics.wrappers import ClasswiseWrapper

from lightning_metrics_base.demo import DigitsClassifier, DigitsDataModule
from lightning_metrics_base.demo import main as demo_main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"


@pytest.mark.slow
def test_demo_prints_agreeing_table_and_writes_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # not what the demo runs with
    try:
        assert demo_main(["--epochs", "2", "--out", str(tmp_path), "--seed", "1"]) == 0
        assert torch.get_num_threads() == 3  # the caller's setting comes back
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "Every test value equals the metric over the whole test set." in printed
    table = printed[printed.index("metric  ") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:15]}
    assert set(rows) >= {"acc", "f1", "per_class_acc/0", "per_class_acc/9", "confmat"}
    for name in ("acc", "f1", "per_class_acc/3"):
        _, val, test, recomputed, agree = rows[name]
        assert test == recomputed and agree == "yes" and 0.0 <= float(val) <= 1.0
    heads = [line.split() for line in printed.splitlines() if line.startswith("  test/")]
    assert [row[0] for row in heads] == ["test/digit/acc", "test/high/acc", "test/high/auroc"]
    assert all(row[1] == row[3] and row[4] == "yes" for row in heads)
    for picture in ("metric_curves.png", "confusion_matrix.png"):
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG")
    with (tmp_path / "logs" / "metrics.csv").open() as handle:
        columns = set(next(csv.reader(handle)))
    assert {"train/loss", "train/acc", "val/acc", "val/f1", "val/per_class_acc/0", "test/acc"} <= columns
    assert not any(column.startswith("val/confmat") for column in columns)


def run_cli(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLES / "train_cli.py"), *arguments]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_lightning_cli_round_trips_the_configured_metrics(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "fit",
        "--config",
        str(EXAMPLES / "cli_config.yaml"),
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_csv,) = tmp_path.rglob("metrics.csv")
    assert metrics_csv.parent.parent == tmp_path / "lightning_logs"  # not lightning_logs/lightning_logs
    with metrics_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0]) - {"epoch", "step"}
    assert columns == {"train/loss", "train/loss_step", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1"}
    step_values = [row["train/loss_step"] for row in rows if row["train/loss_step"]]
    assert len(step_values) >= 5  # `log_every_n_steps` fits the epoch
    (hparams,) = tmp_path.rglob("hparams.yaml")
    assert "MulticlassConfusionMatrix" in hparams.read_text()
    (checkpoint,) = tmp_path.rglob("*.ckpt")
    model = DigitsClassifier.load_from_checkpoint(checkpoint)
    # exactly the configured metrics, not the demo's default set
    for stage in ("train", "val", "test"):
        assert set(getattr(model, f"{stage}_metrics").keys()) == {"acc", "f1", "confmat"}
    assert isinstance(model.val_metrics["acc"], MulticlassAccuracy)  # type: ignore[index]
    assert model.val_metrics["acc"].average == "micro"  # type: ignore[index]
    assert isinstance(model.val_metrics["f1"], MulticlassF1Score)  # type: ignore[index]
    assert model.val_metrics["f1"].average == "macro"  # type: ignore[index]
    assert isinstance(model.test_metrics["confmat"], MulticlassConfusionMatrix)  # type: ignore[index]


def test_lightning_cli_help_shows_the_option_with_an_example(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "fit", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    text = " ".join(result.stdout.split())
    start = text.index("--model.metrics METRICS the metrics")
    option = text[start : text.index("--model.hidden HIDDEN", start)]
    assert 'such as {"acc": {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": 10}}}' in option
    assert "``" not in option and ":class:" not in option


def test_hydra_instantiate_with_defaults_round_trips(tmp_path: Path) -> None:
    import hydra.utils

    config = OmegaConf.load(EXAMPLES / "hydra_config.yaml")
    model = hydra.utils.instantiate(config.model)
    assert isinstance(model, DigitsClassifier)
    assert set(model.train_metrics.keys()) == {"acc"}  # type: ignore[union-attr]
    assert isinstance(model.val_metrics["per_class"], ClasswiseWrapper)  # type: ignore[index]
    assert model.test_metrics is None
    data = DigitsDataModule()
    data.setup()
    from helpers import make_trainer

    trainer = make_trainer(limit_train_batches=2, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=data)
    assert 0.0 <= float(model.epoch_metrics["val/per_class/multiclassaccuracy_seven"]) <= 1.0
    trainer.save_checkpoint(tmp_path / "hydra.ckpt")
    restored = DigitsClassifier.load_from_checkpoint(tmp_path / "hydra.ckpt")
    assert set(restored.val_metrics.keys()) == {"acc", "per_class"}  # type: ignore[union-attr]
    assert restored.val_metrics["per_class"].labels == list(config.model.metrics.val.per_class.labels)  # type: ignore[index]
    assert restored.test_metrics is None and restored.hparams["hidden"] == 32
