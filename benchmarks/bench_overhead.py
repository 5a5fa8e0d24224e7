"""What metric handling costs: MetricAwareModule against hand-written LightningModules, side by side.

Every variant trains the same tiny model on the same data in one process, one thread; runs
alternate (in a shuffled order each round) after a warm-up round, and each ratio is taken within a
round, so slow drifts of the machine cancel out. Reported: medians of per-round ratios, with min
and max.

    python benchmarks/bench_overhead.py              # the full benchmark (a few minutes on 2 cores)
    python benchmarks/bench_overhead.py --quick      # a smoke run at a tiny size
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCohenKappa,
    MulticlassExactMatch,
    MulticlassF1Score,
    MulticlassFBetaScore,
    MulticlassHammingDistance,
    MulticlassJaccardIndex,
    MulticlassMatthewsCorrCoef,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
)

from lightning_metrics_base import MetricAwareModule

NUM_CLASSES = 10
NUM_FEATURES = 32


def four_metrics() -> dict[str, Metric]:
    """Accuracy, macro precision, macro recall, macro F1: the benchmark's metric set."""
    return metric_set(4)


def metric_set(count: int) -> dict[str, Metric]:
    """The first ``count`` of 16 multiclass metrics (the first four: accuracy, precision, recall, F1)."""
    c = NUM_CLASSES
    makers: list[tuple[str, Callable[[], Metric]]] = [
        ("acc", lambda: MulticlassAccuracy(c)),
        ("precision", lambda: MulticlassPrecision(c, average="macro")),
        ("recall", lambda: MulticlassRecall(c, average="macro")),
        ("f1", lambda: MulticlassF1Score(c, average="macro")),
        ("acc_micro", lambda: MulticlassAccuracy(c, average="micro")),
        ("f1_weighted", lambda: MulticlassF1Score(c, average="weighted")),
        ("precision_micro", lambda: MulticlassPrecision(c, average="micro")),
        ("recall_weighted", lambda: MulticlassRecall(c, average="weighted")),
        ("specificity", lambda: MulticlassSpecificity(c)),
        ("f2", lambda: MulticlassFBetaScore(beta=2.0, num_classes=c)),
        ("hamming", lambda: MulticlassHammingDistance(c)),
        ("jaccard", lambda: MulticlassJaccardIndex(c)),
        ("kappa", lambda: MulticlassCohenKappa(c)),
        ("mcc", lambda: MulticlassMatthewsCorrCoef(c)),
        ("exact", lambda: MulticlassExactMatch(c)),
        ("f1_micro", lambda: MulticlassF1Score(c, average="micro")),
    ]
    return {name: make() for name, make in makers[:count]}


def make_net(heavy: bool) -> torch.nn.Module:
    if not heavy:
        return torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
    width = 1024
    return torch.nn.Sequential(
        torch.nn.Linear(NUM_FEATURES, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, NUM_CLASSES),
    )


class HandWritten(LightningModule):
    """Shared by the hand-written variants: the net, the optimizer and the loss logging of ours."""

    def __init__(self, heavy: bool = False) -> None:
        super().__init__()
        self.net = make_net(heavy)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def loss_step(self, stage: str, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        # as Lightning users log it (and as ours does): the train loss per step too, every epoch loss synced
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, batch_size=len(y), sync_dist=True)
        return loss, logits.detach(), y


class Bare(HandWritten):
    """The floor: logs the loss only."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.loss_step("train", batch)[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.loss_step("val", batch)


class PerStageCollections(HandWritten):
    """One `MetricCollection` per stage, prefixed with the stage."""

    def __init__(self, metrics: dict[str, Metric], heavy: bool = False) -> None:
        super().__init__(heavy)
        collection = MetricCollection(metrics)
        self.train_metrics = collection.clone(prefix="train/")
        self.val_metrics = collection.clone(prefix="val/")


class BestPractice(PerStageCollections):
    """`forward` in train, `update` in val, the collection given to `log_dict`."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, logits, y = self.loss_step("train", batch)
        self.train_metrics(logits, y)
        self.log_dict(self.train_metrics, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        _, logits, y = self.loss_step("val", batch)
        self.val_metrics.update(logits, y)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True)


class Typical(HandWritten):
    """Separate metric attributes per stage, each called and logged every step."""

    def __init__(self, metrics: dict[str, Metric], heavy: bool = False) -> None:
        super().__init__(heavy)
        self.names = list(metrics)
        for name, metric in metrics.items():
            setattr(self, f"train_{name}", metric.clone())
            setattr(self, f"val_{name}", metric.clone())

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, logits, y = self.loss_step("train", batch)
        for name in self.names:
            metric = getattr(self, f"train_{name}")
            metric(logits, y)
            self.log(f"train/{name}", metric, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        _, logits, y = self.loss_step("val", batch)
        for name in self.names:
            metric = getattr(self, f"val_{name}")
            metric.update(logits, y)
            self.log(f"val/{name}", metric, on_step=False, on_epoch=True)


class Lean(PerStageCollections):
    """The leanest correct code: `update()` every step; compute, log and reset once per epoch."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, logits, y = self.loss_step("train", batch)
        self.train_metrics.update(logits, y)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        _, logits, y = self.loss_step("val", batch)
        self.val_metrics.update(logits, y)

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()


class Ours(MetricAwareModule):
    """MetricAwareModule with the same net and loss."""

    def __init__(
        self, metrics: dict[str, Metric], heavy: bool = False, log_train_step: bool = False, buffer_batches: int = 16
    ) -> None:
        # prog_bar=(): the hand-written variants show nothing in the progress bar either
        super().__init__(
            metrics,
            stages=("train", "val"),
            loss_fn=F.cross_entropy,
            log_train_step=log_train_step,
            prog_bar=(),
            buffer_batches=buffer_batches,
        )
        self.net = make_net(heavy)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


VARIANTS: dict[str, Callable[[dict[str, Metric], bool], LightningModule]] = {
    "ours_step": lambda metrics, heavy: Ours(metrics, heavy, log_train_step=True),
    "best": lambda metrics, heavy: BestPractice(metrics, heavy),
    "typical": lambda metrics, heavy: Typical(metrics, heavy),
    "lean": lambda metrics, heavy: Lean(metrics, heavy),
    "bare": lambda metrics, heavy: Bare(heavy),
    "ours": lambda metrics, heavy: Ours(metrics, heavy),
    "ours_unbuffered": lambda metrics, heavy: Ours(metrics, heavy, buffer_batches=1),
}


def data(samples: int, seed: int) -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, NUM_FEATURES, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (samples,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=32)


def make_trainer(**overrides: Any) -> Trainer:
    """A CPU trainer with nothing but the run itself: no logger, progress bar, summary or checkpoints."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    return Trainer(**{**options, **overrides})


def run_once(variant: str, metrics: int, heavy: bool, samples: int, epochs: int) -> float:
    """CPU seconds this process spends in `trainer.fit` for one variant (one thread: CPU time is run time,
    minus the time the other core's load would add to a wall clock)."""
    model = VARIANTS[variant](metric_set(metrics), heavy)
    trainer = make_trainer(max_epochs=epochs)
    train, val = data(samples, 0), data(samples // 4, 1)
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        trainer.fit(model, train, val)
        return time.process_time() - started
    finally:
        gc.enable()


def measure(
    variants: list[str], metrics: int, heavy: bool, samples: int, epochs: int, rounds: int
) -> dict[str, list[float]]:
    """Alternate runs of every variant; return each variant's time per round."""
    times: dict[str, list[float]] = {variant: [] for variant in variants}
    for variant in variants:  # warm-up: imports, allocator, first-call caches
        run_once(variant, metrics, heavy, samples, epochs)
    order = list(variants)
    for _ in range(rounds):
        random.shuffle(order)
        for variant in order:
            times[variant].append(run_once(variant, metrics, heavy, samples, epochs))
    return times


def ratio(times: dict[str, list[float]], top: str, bottom: str, minus: str | None = None) -> str:
    shift = times[minus] if minus else [0.0] * len(times[top])
    values = [(t - s) / (b - s) for t, b, s in zip(times[top], times[bottom], shift, strict=True)]
    return f"{statistics.median(values):6.3f}  (min {min(values):.3f}, max {max(values):.3f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run at a tiny size")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    samples, epochs, rounds = (256, 1, 2) if args.quick else (4096, 2, args.rounds)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    print(f"tiny model: Linear({NUM_FEATURES}, {NUM_CLASSES}), batch 32, {samples} train samples, {epochs} epochs,")
    print(f"4 metrics (accuracy, macro precision, recall, F1), 1 thread, {rounds} rounds after a warm-up\n")
    times = measure(list(VARIANTS), 4, False, samples, epochs, rounds)
    print("median CPU seconds per run: " + ", ".join(f"{v} {statistics.median(t):.3f}" for v, t in times.items()))
    print(f"ours(log_train_step)/best             {ratio(times, 'ours_step', 'best')}")
    print(f"ours(log_train_step)/typical          {ratio(times, 'ours_step', 'typical')}")
    print(f"metric time ours(log_train_step)/best {ratio(times, 'ours_step', 'best', minus='bare')}")
    print(f"ours(default)/lean                    {ratio(times, 'ours', 'lean')}")
    print(f"ours(default)/bare                    {ratio(times, 'ours', 'bare')}")
    print(f"ours(buffer_batches=1)/lean           {ratio(times, 'ours_unbuffered', 'lean')}")
    print(f"ours(default)/ours(buffer_batches=1)  {ratio(times, 'ours', 'ours_unbuffered')}")

    heavy = measure(["ours_step", "best"], 4, True, samples // 4 if not args.quick else samples, 1, rounds)
    print("\ncompute-heavy model (3 hidden layers of 1024):")
    print(f"ours(log_train_step)/best             {ratio(heavy, 'ours_step', 'best')}")

    print("\nscaling with the number of metrics (metric time = run minus bare):")
    for count in (1, 4, 16):
        scaled = measure(
            ["ours", "lean", "best", "ours_step", "bare"], count, False, samples, epochs, max(3, rounds // 2)
        )
        print(
            f"{count:2d} metrics: ours/lean {ratio(scaled, 'ours', 'lean')}"
            f" | metric time ours(log_train_step)/best {ratio(scaled, 'ours_step', 'best', minus='bare')}"
        )


if __name__ == "__main__":
    main()
