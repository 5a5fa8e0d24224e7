"""Demo: train small models on scikit-learn's bundled digits and check every logged value.

Run ``python -m lightning_metrics_base.demo`` (needs the ``demo`` extra: scikit-learn, matplotlib).
It trains with accuracy, macro F1, per-class accuracy and a confusion matrix declared in one dict,
prints the final validation and test values beside the same metrics recomputed over the whole test
set with ``torchmetrics.functional``, then does the same for a two-head model (the digit, and whether
it is 5 or more), and writes a CSV log and two PNGs into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
)

from lightning_metrics_base import MetricAwareModule

NUM_CLASSES = 10
NUM_FEATURES = 64


def digits_metrics() -> dict[str, Any]:
    """The demo's metrics, declared once: every stage gets its own copy."""
    return {
        "acc": MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro"),
        "f1": MulticlassF1Score(num_classes=NUM_CLASSES, average="macro"),
        "per_class_acc": MulticlassAccuracy(num_classes=NUM_CLASSES, average=None),
        "confmat": MulticlassConfusionMatrix(num_classes=NUM_CLASSES),
    }


class DigitsClassifier(MetricAwareModule):
    """A two-layer perceptron for 8x8 digit images.

    Args:
        metrics: the metrics, by name: torchmetrics objects or specs such as
            {"acc": {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": 10}}}, or one such
            dict per stage under "train", "val" and "test". None gives the demo's set (accuracy, macro F1,
            per-class accuracy and confusion matrix).
        hidden: the width of the hidden layer.
        lr: Adam's learning rate.
    """

    def __init__(self, metrics: dict[str, Any] | None = None, hidden: int = 64, lr: float = 1e-2) -> None:
        super().__init__(
            metrics if metrics is not None else digits_metrics(),
            prog_bar=("loss", "acc") if metrics is None else ("loss",),
            track_best=("acc",) if metrics is None else (),
        )
        # metric objects are saved as specs, so `load_from_checkpoint` restores this very metric set
        self.save_hyperparameters()
        self.lr = lr
        self.net = torch.nn.Sequential(
            torch.nn.Linear(NUM_FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, NUM_CLASSES)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return class logits."""
        return self.net(x)  # type: ignore[no-any-return]

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy on the logits."""
        return F.cross_entropy(preds, target)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over every parameter."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class DigitsTwoHeads(MetricAwareModule):
    """Two heads on one trunk: the digit, and whether it is 5 or more (a binary head).

    Args:
        hidden: the width of the shared hidden layer.
        lr: Adam's learning rate.
    """

    def __init__(self, hidden: int = 64, lr: float = 1e-2) -> None:
        super().__init__(
            {
                "digit": {"acc": MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")},
                "high": {"acc": BinaryAccuracy(), "auroc": BinaryAUROC()},
            },
            outputs=("digit", "high"),
            track_best=("digit/acc",),
        )
        self.lr = lr
        self.trunk = torch.nn.Sequential(torch.nn.Linear(NUM_FEATURES, hidden), torch.nn.ReLU())
        self.digit = torch.nn.Linear(hidden, NUM_CLASSES)
        self.high = torch.nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Return the digit's logits and the "5 or more" logit."""
        hidden = self.trunk(x)
        return {"digit": self.digit(hidden), "high": self.high(hidden).squeeze(-1)}

    def unpack_batch(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Both targets come from the digit label."""
        x, y = batch
        return x, {"digit": y, "high": (y >= 5).long()}

    def metric_inputs(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> tuple[Any, Any]:
        """The binary head's metrics get probabilities."""
        return {**preds, "high": preds["high"].sigmoid()}, target

    def compute_loss(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
        """The sum of both heads' losses, each also logged as a component."""
        digit = F.cross_entropy(preds["digit"], target["digit"])
        high = F.binary_cross_entropy_with_logits(preds["high"], target["high"].float())
        return {"loss": digit + high, "digit": digit, "high": high}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over every parameter."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def two_heads_table(model: DigitsTwoHeads, dataset: TensorDataset) -> tuple[str, bool]:
    """The two-head model's test values beside their full-data recomputation; tell whether all agree."""
    x, y = dataset.tensors
    model.eval()
    with torch.no_grad():
        preds = model(x)
    high = (y >= 5).long()
    reference = {
        "digit/acc": multiclass_accuracy(preds["digit"], y, num_classes=NUM_CLASSES, average="micro"),
        "high/acc": binary_accuracy(preds["high"].sigmoid(), high),
        "high/auroc": binary_auroc(preds["high"].sigmoid(), high),
    }
    lines, all_agree = [], True
    for name, expected in reference.items():
        logged = float(model.epoch_metrics[f"test/{name}"])
        agree = math.isclose(logged, float(expected), abs_tol=1e-6)
        all_agree &= agree
        lines.append(f"  test/{name:<11} {logged:.6f}  recomputed {float(expected):.6f}  {'yes' if agree else 'NO'}")
    return "\n".join(lines), all_agree


class DigitsDataModule(L.LightningDataModule):
    """scikit-learn's bundled digits (1797 images, no download), split 60/20/20 by a seeded permutation.

    Args:
        batch_size: the batch size of every dataloader.
        seed: the seed of the split.
    """

    def __init__(self, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load the digits and split them."""
        if self.splits:
            return
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]

        data = load_digits()
        x = torch.tensor(data.data, dtype=torch.float32) / 16.0
        y = torch.tensor(data.target, dtype=torch.long)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
        cut_train, cut_val = int(0.6 * len(y)), int(0.8 * len(y))
        for name, index in (
            ("train", order[:cut_train]),
            ("val", order[cut_train:cut_val]),
            ("test", order[cut_val:]),
        ):
            self.splits[name] = TensorDataset(x[index], y[index])

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches."""
        return DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches."""
        return DataLoader(self.splits["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches."""
        return DataLoader(self.splits["test"], batch_size=self.batch_size)


def recompute(model: DigitsClassifier, dataset: TensorDataset) -> dict[str, Tensor]:
    """The demo's metrics over a whole dataset at once, with ``torchmetrics.functional``."""
    x, y = dataset.tensors
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return {
        "acc": multiclass_accuracy(logits, y, num_classes=NUM_CLASSES, average="micro"),
        "f1": multiclass_f1_score(logits, y, num_classes=NUM_CLASSES, average="macro"),
        "per_class_acc": multiclass_accuracy(logits, y, num_classes=NUM_CLASSES, average=None),
        "confmat": multiclass_confusion_matrix(logits, y, num_classes=NUM_CLASSES),
    }


def compute_in_step(model: DigitsClassifier, loader: DataLoader[Any]) -> dict[str, float]:
    """What the classic by-hand bug logs: ``compute()`` in every step, averaged by Lightning over the epoch."""
    metrics = {
        "acc": MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro"),
        "f1": MulticlassF1Score(num_classes=NUM_CLASSES, average="macro"),
    }
    sums = dict.fromkeys(metrics, 0.0)
    seen = 0
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            for name, metric in metrics.items():
                metric.update(logits, y)
                sums[name] += float(metric.compute()) * len(y)  # Lightning's batch-size-weighted mean
            seen += len(y)
    return {name: total / seen for name, total in sums.items()}


def results_table(epoch_metrics: dict[str, Tensor], reference: dict[str, Tensor]) -> tuple[str, bool]:
    """Format the final values beside the full-data recomputation; tell whether all agree to 1e-6."""
    rows = [("metric", "val", "test", "test, recomputed", "agree")]
    all_agree = True
    scalars = [("acc", None), ("f1", None)] + [("per_class_acc", i) for i in range(NUM_CLASSES)]
    for name, index in scalars:
        val, test = epoch_metrics[f"val/{name}"], epoch_metrics[f"test/{name}"]
        expected = reference[name]
        if index is not None:
            val, test, expected = val[index], test[index], expected[index]
        agree = math.isclose(float(test), float(expected), abs_tol=1e-6)
        all_agree &= agree
        label = name if index is None else f"{name}/{index}"
        rows.append(
            (label, f"{float(val):.6f}", f"{float(test):.6f}", f"{float(expected):.6f}", "yes" if agree else "NO")
        )
    confmat_agrees = torch.equal(epoch_metrics["test/confmat"], reference["confmat"])
    all_agree &= confmat_agrees
    total = int(epoch_metrics["test/confmat"].sum())
    rows.append(
        ("confmat (sum)", "", str(total), str(int(reference["confmat"].sum())), "yes" if confmat_agrees else "NO")
    )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines), all_agree


def plot_curves(metrics_csv: Path, out: Path) -> Path:
    """Draw loss and accuracy per epoch from Lightning's CSV log."""
    import csv

    plt = _pyplot()
    per_epoch: dict[int, dict[str, float]] = {}
    with metrics_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row.get("epoch"):
                values = {key: float(value) for key, value in row.items() if value and key not in ("epoch", "step")}
                per_epoch.setdefault(int(row["epoch"]), {}).update(values)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = (("train/loss", "val/loss"), ("train/acc", "val/acc", "val/f1"))
    linestyles, markers = {"train": "-", "val": "--"}, {"loss": "o", "acc": "s", "f1": "^"}
    for axis, names, ylabel in zip(axes, panels, ("cross-entropy loss", "metric value"), strict=True):
        plotted: set[int] = set()
        for name in names:
            epochs = [epoch for epoch in sorted(per_epoch) if name in per_epoch[epoch]]
            stage, metric = name.split("/", 1)
            points = [per_epoch[epoch][name] for epoch in epochs]
            axis.plot(epochs, points, linestyle=linestyles[stage], marker=markers[metric], label=name)
            plotted.update(epochs)
        axis.set_xticks(sorted(plotted))
        axis.set_xlabel("epoch")
        axis.set_ylabel(ylabel)
        axis.legend()
        axis.grid(alpha=0.3)
    figure.suptitle("Epoch values, each over the whole epoch's data")
    figure.tight_layout()
    path = out / "metric_curves.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_confusion_matrix(model: DigitsClassifier, out: Path) -> Path:
    """Draw the test confusion matrix: counts in each cell, a colour bar, the classes on both axes."""
    plt = _pyplot()
    matrix = model.epoch_metrics["test/confmat"].long()
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(matrix.numpy(), cmap="Blues")
    figure.colorbar(image, ax=axis, label="samples")
    ticks = list(range(NUM_CLASSES))
    axis.set_xticks(ticks, [str(tick) for tick in ticks], rotation=0)
    axis.set_yticks(ticks, [str(tick) for tick in ticks])
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    threshold = float(matrix.max()) / 2
    for row in ticks:
        for column in ticks:
            count = int(matrix[row, column])
            colour = "white" if count > threshold else "black"
            axis.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axis.set_title("Test confusion matrix (counts over the whole test set)")
    figure.tight_layout()
    path = out / "confusion_matrix.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no screen needed
    import matplotlib.pyplot as plt

    return plt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 when every test value agrees with its full-data recomputation."""
    parser = argparse.ArgumentParser(prog="python -m lightning_metrics_base.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default: 15)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new folder here)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the model (default: 0)")
    parser.add_argument("--limit-train-batches", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out or Path.cwd() / f"lmb-demo-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)

    L.seed_everything(args.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, threads)))  # the caller's setting comes back afterwards
    try:
        data = DigitsDataModule(seed=args.seed)
        model, logger, all_agree = _classifier_story(data, args.epochs, args.limit_train_batches, out)
        all_agree &= _two_heads_story(data, max(1, args.epochs // 3), args.limit_train_batches)
    finally:
        torch.set_num_threads(threads)
    paths = [Path(logger.log_dir) / "metrics.csv", plot_curves(Path(logger.log_dir) / "metrics.csv", out)]
    paths.append(plot_confusion_matrix(model, out))
    print("\nWrote:\n" + "\n".join(f"  {path}" for path in paths))
    return 0 if all_agree else 1


def _trainer(epochs: int, limit_train_batches: float, **options: Any) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_train_batches=limit_train_batches,
        **options,
    )


def _classifier_story(
    data: DigitsDataModule, epochs: int, limit_train_batches: float, out: Path
) -> tuple[DigitsClassifier, CSVLogger, bool]:
    """Train and test the classifier, print its values beside their recomputation and the in-step bug's."""
    model = DigitsClassifier()
    logger = CSVLogger(out, name="logs", version="")
    trainer = _trainer(epochs, limit_train_batches, logger=logger, log_every_n_steps=10)
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)
    elapsed = time.perf_counter() - started

    table, all_agree = results_table(model.epoch_metrics, recompute(model, data.splits["test"]))
    print(f"\nTrained {epochs} epochs on {len(data.splits['train'])} digits in {elapsed:.1f} s.")
    print(f"Best val accuracy: {model.best_values['val/acc_best']:.6f}\n")
    print(table)
    print(
        "\nEvery test value equals the metric over the whole test set."
        if all_agree
        else "\nSome logged test values differ from the full-data recomputation."
    )
    naive = compute_in_step(model, data.test_dataloader())
    print(
        "For comparison, `self.log(name, metric.compute(), on_epoch=True)` in each step would have logged"
        f" test acc {naive['acc']:.6f} and f1 {naive['f1']:.6f}."
    )
    return model, logger, all_agree


def _two_heads_story(data: DigitsDataModule, epochs: int, limit_train_batches: float) -> bool:
    """Train and test the two-head model; print each head's values beside their recomputation."""
    two_heads = DigitsTwoHeads()
    trainer = _trainer(epochs, limit_train_batches, logger=False, enable_progress_bar=False)
    trainer.fit(two_heads, datamodule=data)
    trainer.test(two_heads, datamodule=data, verbose=False)
    table, heads_agree = two_heads_table(two_heads, data.splits["test"])
    print(f"\nA two-head model (the digit; is it 5 or more), each head with its own metrics:\n{table}")
    return heads_agree


if __name__ == "__main__":
    raise SystemExit(main())
