"""Realistic workloads: MetricAwareModule against the leanest correct hand-written code, side by side.

Each workload trains a cheap model whose metric work is what a real project's would be, in one
process, one thread; runs alternate (shuffled each round) after a warm-up, and each ratio is taken
within a round. Every variant logs the same values (checked on the warm-up round). CPU time of
`trainer.fit`, garbage collection paused.

    python benchmarks/bench_workloads.py              # every workload, 9 rounds (--rounds N)
    python benchmarks/bench_workloads.py --quick      # a smoke run at a tiny size
    python benchmarks/bench_workloads.py segmentation # one workload

Workloads:
- segmentation: logits (8, 21, H, W) per batch; Jaccard index, Dice (macro F1), pixel accuracy and a
  confusion matrix over 21 classes.
- regression: batches of 512, MSE, MAE, R2, Pearson and explained variance.
- many: 100 classes, batches of 256, 12 metrics (accuracy, precision, recall, F1 in macro and micro,
  AUROC and average precision exact and binned).
- tiny: batches of 4, 3 cheap metrics, 2,000 steps per epoch.
- per_step: per-step train values logged every step (`log_every_n_steps=1`, `log_train_step=True`)
  against the best practice by hand (the collection called in the step and given to `log_dict` with
  `on_step=True, on_epoch=True`); a linear model, batches of 32, accuracy, precision, recall, F1.
- memory: what one flush of a full buffer allocates (the concatenation and torchmetrics' own
  temporaries), measured with torch's profiler, against the bound (`buffer_bytes`) and against one
  hand-written update of one batch; segmentation and many-class inputs.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
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
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.functional.classification import multiclass_auroc, multiclass_average_precision
from torchmetrics.regression import (
    ExplainedVariance,
    MeanAbsoluteError,
    MeanSquaredError,
    PearsonCorrCoef,
    R2Score,
)

from lightning_metrics_base import MetricAwareModule
from lightning_metrics_base.buffering import DEFAULT_BUFFER_BYTES, UpdateBuffer, class_indices
from lightning_metrics_base.compute_groups import group_by_settings

CLASSES = 21


def segmentation_metrics() -> dict[str, Metric]:
    return {
        "iou": MulticlassJaccardIndex(CLASSES),
        "dice": MulticlassF1Score(CLASSES, average="macro"),
        "pixel_acc": MulticlassAccuracy(CLASSES, average="micro"),
        "confmat": MulticlassConfusionMatrix(CLASSES),
    }


def many_metrics() -> dict[str, Metric]:
    c = 100
    return {
        "acc": MulticlassAccuracy(c),
        "precision": MulticlassPrecision(c),
        "recall": MulticlassRecall(c),
        "f1": MulticlassF1Score(c),
        "acc_micro": MulticlassAccuracy(c, average="micro"),
        "precision_micro": MulticlassPrecision(c, average="micro"),
        "recall_micro": MulticlassRecall(c, average="micro"),
        "f1_micro": MulticlassF1Score(c, average="micro"),
        "auroc": MulticlassAUROC(c, thresholds=None),
        "ap": MulticlassAveragePrecision(c, thresholds=None),
        "auroc_binned": MulticlassAUROC(c, thresholds=50),
        "ap_binned": MulticlassAveragePrecision(c, thresholds=50),
    }


def regression_metrics() -> dict[str, Metric]:
    return {
        "mse": MeanSquaredError(),
        "mae": MeanAbsoluteError(),
        "r2": R2Score(),
        "pearson": PearsonCorrCoef(),
        "explained_variance": ExplainedVariance(),
    }


class Lean(LightningModule):
    """The leanest correct code by hand: `update()` every step; compute, log and reset once per epoch."""

    def __init__(self, net: torch.nn.Module, metrics: dict[str, Metric], loss: Callable[..., Tensor]) -> None:
        super().__init__()
        self.net, self.loss = net, loss
        collection = MetricCollection(metrics)
        self.train_metrics, self.val_metrics = collection.clone(prefix="train/"), collection.clone(prefix="val/")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def step(self, stage: str, batch: Any) -> Tensor:
        x, y = batch
        preds = self(x)
        loss = self.loss(preds, y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=len(y))
        getattr(self, f"{stage}_metrics").update(preds.detach(), y)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.step("train", batch)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.step("val", batch)

    def log_epoch(self, stage: str) -> None:
        collection = getattr(self, f"{stage}_metrics")
        values = collection.compute()
        self.log_dict({name: value for name, value in values.items() if value.ndim == 0})
        collection.reset()

    def on_train_epoch_end(self) -> None:
        self.log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch("val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.001)


class BestPractice(Lean):
    """Per-step values by hand: the collection's `forward` in the train step, the collection given to `log_dict`."""

    def step(self, stage: str, batch: Any) -> Tensor:
        if stage != "train":
            return super().step(stage, batch)
        x, y = batch
        preds = self(x)
        loss = self.loss(preds, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(y))
        self.train_metrics(preds.detach(), y)
        self.log_dict(self.train_metrics, on_step=True, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        pass  # Lightning computes, logs and resets the logged collection


class Bare(Lean):
    """The floor: a module that logs only its loss."""

    def step(self, stage: str, batch: Any) -> Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=len(y))
        return loss

    def log_epoch(self, stage: str) -> None:
        pass


class LeastWork(Lean):
    """The same values by hand with the least work: one class-index pass and one ``bincount`` per batch, no checks.

    Every classification metric of the workloads is a function of one confusion matrix per stage, but
    the exact curves: for those the softmax scores are kept and handed to ``torchmetrics.functional``
    once per epoch, validation off; binned curves too (their counts over the epoch are the same).
    Written for the workloads' metrics (multiclass, no ``ignore_index``, every class present).
    """

    def __init__(self, net: torch.nn.Module, metrics: dict[str, Metric], loss: Callable[..., Tensor]) -> None:
        super().__init__(net, metrics, loss)
        self.classes = next(metric.num_classes for metric in metrics.values())  # type: ignore[attr-defined]
        self.specs = {
            name: (type(metric).__name__, getattr(metric, "average", None), metric) for name, metric in metrics.items()
        }
        self.curves = any(
            name.startswith(("MulticlassAUROC", "MulticlassAverage")) for name, _, _ in self.specs.values()
        )
        self.counts: dict[str, Tensor] = {}
        self.kept: dict[str, list[tuple[Tensor, Tensor]]] = {"train": [], "val": []}

    def step(self, stage: str, batch: Any) -> Tensor:
        x, y = batch
        preds = self(x)
        loss = self.loss(preds, y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=len(y))
        preds, c = preds.detach(), self.classes
        count = torch.bincount((y * c + class_indices(preds)).flatten(), minlength=c * c)
        self.counts[stage] = count if stage not in self.counts else self.counts[stage] + count
        if self.curves:
            self.kept[stage].append((preds.softmax(1), y))
        return loss

    def log_epoch(self, stage: str) -> None:
        c = self.classes
        confmat = self.counts.pop(stage).view(c, c)
        tp = confmat.diagonal().double()
        predicted, actual, total = confmat.sum(0).double(), confmat.sum(1).double(), confmat.sum().double()
        by_class = {
            "MulticlassAccuracy": (tp, actual),
            "MulticlassRecall": (tp, actual),
            "MulticlassPrecision": (tp, predicted),
            "MulticlassF1Score": (2 * tp, predicted + actual),
            "MulticlassJaccardIndex": (tp, predicted + actual - tp),
        }
        # torchmetrics' macro average: 0 where a class's denominator is 0, classes never seen nor predicted left out
        seen = (predicted + actual > 0).double()
        values = {}
        for name, (kind, average, metric) in self.specs.items():
            if kind in by_class:
                share, whole = by_class[kind]
                score = torch.where(whole > 0, share / whole.clamp(min=1), 0.0)
                values[name] = tp.sum() / total if average == "micro" else (score * seen).sum() / seen.sum()
            elif kind in ("MulticlassAUROC", "MulticlassAveragePrecision"):
                scores, target = (torch.cat(parts) for parts in zip(*self.kept[stage], strict=True))
                function = multiclass_auroc if kind == "MulticlassAUROC" else multiclass_average_precision
                values[name] = function(scores, target, c, thresholds=metric.thresholds, validate_args=False)  # type: ignore[attr-defined]
        self.kept[stage] = []
        self.log_dict({f"{stage}/{name}": value.float() for name, value in values.items()})


class Ours(MetricAwareModule):
    def __init__(
        self, net: torch.nn.Module, metrics: dict[str, Metric], loss: Callable[..., Tensor], **kwargs: Any
    ) -> None:
        super().__init__(metrics, loss_fn=loss, log_figures=False, **kwargs)
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.001)


class OursPerStep(Ours):
    def __init__(self, net: torch.nn.Module, metrics: dict[str, Metric], loss: Callable[..., Tensor]) -> None:
        super().__init__(net, metrics, loss, log_train_step=True, prog_bar=())


def segmentation(quick: bool) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    size, batches = (32, 4) if quick else (128, 12)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8 * batches, 3, size, size, generator=generator)
    masks = torch.randint(0, CLASSES, (8 * batches, size, size), generator=generator)
    data = DataLoader(TensorDataset(images, masks), batch_size=8)

    def make(cls: type) -> LightningModule:
        torch.manual_seed(0)
        return cls(torch.nn.Conv2d(3, CLASSES, 1), segmentation_metrics(), F.cross_entropy)  # type: ignore[no-any-return]

    return data, make


def regression(quick: bool) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    batches = 4 if quick else 40
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512 * batches, 16, generator=generator)
    y = x.sum(dim=1) + torch.randn(512 * batches, generator=generator)
    data = DataLoader(TensorDataset(x, y), batch_size=512)

    def make(cls: type) -> LightningModule:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(16, 1), torch.nn.Flatten(0))
        return cls(net, regression_metrics(), F.mse_loss)  # type: ignore[no-any-return]

    return data, make


def classification(
    batch_size: int, batches: int, features: int, classes: int, metrics: Callable[[], dict[str, Metric]]
) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    """Random features and labels, a linear classifier and cross-entropy: the metric work is what differs."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size * batches, features, generator=generator)
    y = torch.randint(0, classes, (batch_size * batches,), generator=generator)
    data = DataLoader(TensorDataset(x, y), batch_size=batch_size)

    def make(cls: type) -> LightningModule:
        torch.manual_seed(0)
        return cls(torch.nn.Linear(features, classes), metrics(), F.cross_entropy)  # type: ignore[no-any-return]

    return data, make


def many(quick: bool) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    return classification(256, 3 if quick else 16, 64, 100, many_metrics)


def tiny(quick: bool) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    def metrics() -> dict[str, Metric]:
        return {
            "acc": MulticlassAccuracy(5, average="micro"),
            "f1": MulticlassF1Score(5),
            "recall": MulticlassRecall(5),
        }

    return classification(4, 50 if quick else 2000, 8, 5, metrics)


def per_step(quick: bool) -> tuple[DataLoader[Any], Callable[[type], LightningModule]]:
    def metrics() -> dict[str, Metric]:
        return {
            "acc": MulticlassAccuracy(10),
            "precision": MulticlassPrecision(10),
            "recall": MulticlassRecall(10),
            "f1": MulticlassF1Score(10),
        }

    return classification(32, 16 if quick else 256, 32, 10, metrics)


WORKLOADS = {"segmentation": segmentation, "regression": regression, "many": many, "tiny": tiny, "per_step": per_step}
# the hand-written code each workload is measured against, ours, and Trainer options
VERSUS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "per_step": (BestPractice, OursPerStep, {"log_every_n_steps": 1}),
}


def fit(model: LightningModule, data: DataLoader[Any], **options: Any) -> tuple[float, dict[str, float]]:
    trainer = Trainer(
        **options,
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    gc.collect()
    gc.disable()  # a collection falls in one run or another at random: the runs are short
    try:
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, data, data)
        seconds = time.process_time() - start
    finally:
        gc.enable()
    # the epoch values, and the last step's (the loss's, and the metrics' where logged per step)
    return seconds, {name.removesuffix("_epoch"): float(value) for name, value in trainer.callback_metrics.items()}


# the workloads whose values LeastWork computes by hand
LEAST_WORK = ("segmentation", "many")


def run(name: str, rounds: int, quick: bool) -> None:
    data, make = WORKLOADS[name](quick)
    theirs, ours, options = VERSUS.get(name, (Lean, Ours, {}))
    floors = [Bare, *([LeastWork] if name in LEAST_WORK else [])]
    _, their_values = fit(make(theirs), data, **options)
    for other in (ours, *floors):
        _, values = fit(make(other), data, **options)
        expected = {key: value for key, value in their_values.items() if other is not Bare or "loss" in key}
        assert values.keys() == expected.keys(), (name, other.__name__, sorted(values), sorted(expected))
        for key, value in expected.items():
            assert abs(values[key] - value) <= 1e-4 * max(1.0, abs(value)), (
                name,
                other.__name__,
                key,
                values[key],
                value,
            )
    ratios: dict[type, list[float]] = {cls: [] for cls in (theirs, *floors)}
    for _ in range(rounds):
        order = [theirs, ours, *floors]
        random.shuffle(order)
        times = {cls: fit(make(cls), data, **options)[0] for cls in order}
        for cls in ratios:
            ratios[cls].append(times[ours] / times[cls])
    labels = {BestPractice: "ours/best", Lean: "ours/lean", Bare: "ours/bare", LeastWork: "ours/least-work"}
    shown = ", ".join(
        f"{labels[cls]} {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"
        for cls, values in ratios.items()
    )
    print(f"{name}: {shown}; {rounds} rounds; same {len(their_values)} logged values")


def peak_allocated(work: Callable[[], None]) -> int:
    """The most bytes ``work`` holds at once beyond what existed before it, as torch's profiler records them.

    Each operator's own allocations count from its start, frees when they happen (so a temporary
    allocated and freed inside one operator is not seen: a lower bound of the true peak).
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        work()
    changes = [
        (event.time_range.start, event.self_cpu_memory_usage if event.name != "[memory]" else event.cpu_memory_usage)
        for event in prof.events()
        if event.cpu_memory_usage or event.self_cpu_memory_usage
    ]
    level = peak = 0
    for _, change in sorted(changes, key=lambda item: item[0]):
        level += change
        peak = max(peak, level)
    return peak


def memory(quick: bool) -> None:
    cases: dict[str, tuple[Callable[[], dict[str, Metric]], Callable[[torch.Generator], tuple[Tensor, Tensor]]]] = {
        "segmentation (8, 21, 128, 128)": (
            segmentation_metrics,
            lambda g: (
                torch.randn(8, CLASSES, 128, 128, generator=g),
                torch.randint(0, CLASSES, (8, 128, 128), generator=g),
            ),
        ),
        "many: 100 classes, batch 256": (
            many_metrics,
            lambda g: (torch.randn(256, 100, generator=g), torch.randint(0, 100, (256,), generator=g)),
        ),
    }
    bound = DEFAULT_BUFFER_BYTES
    print(f"bound (buffer_bytes) {bound / 2**20:.0f} MiB per stage and dataloader")
    for name, (metrics, batch) in cases.items():
        generator = torch.Generator().manual_seed(0)
        collection = group_by_settings(MetricCollection(metrics()))
        first = batch(generator)
        probe = UpdateBuffer(batches=1, max_bytes=bound)
        probe.add(collection, *first)  # the epoch's first batch is fed directly
        probe.batches = 2
        probe.add(collection, *batch(generator))  # a block made for two batches
        fitting = bound // (probe.nbytes // 2)  # the batches the bound holds
        buffer = UpdateBuffer(batches=fitting, max_bytes=bound)
        for _ in range(fitting):  # the first fed directly, then all but the one that would flush it
            buffer.add(collection, *batch(generator))
        held, batches = buffer.nbytes, len(buffer)
        flush = peak_allocated(functools.partial(buffer.flush, collection))
        by_hand = group_by_settings(MetricCollection(metrics()))
        by_hand.update(*first)
        one_batch = peak_allocated(functools.partial(by_hand.update, *first))
        print(
            f"{name}: buffer {held / 2**20:.1f} MiB ({batches} of {fitting} batches written); at its flush"
            f" {flush / 2**20:.1f} MiB more (peak {(held + flush) / 2**20:.1f} MiB, bound {bound / 2**20:.0f});"
            f" one hand-written update of one batch: {one_batch / 2**20:.1f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workloads", nargs="*", default=[*WORKLOADS, "memory"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no Trainer banner per run
    if "memory" in args.workloads:
        memory(args.quick)
    for name in (name for name in args.workloads if name != "memory"):
        run(name, 1 if args.quick else args.rounds, args.quick)


if __name__ == "__main__":
    main()
