"""Realistic workloads: MetricAwareModule against the leanest correct hand-written code, side by side.

Beside the lean code, two floors: `Bare`, a module that logs only its loss, and (segmentation and many)
`LeastWork`, the same values by hand with the least work (one class-index pass and one ``bincount`` per
batch, no input checks, one sort per class for exact curves). ``--parts`` splits ours' metric time
(ours - bare) into class indices, input checks, updates and the epoch-end compute (and its sorts).

Each workload trains a cheap model whose metric work is what a real project's would be, in one
process, one thread; runs alternate (shuffled each round) after a warm-up, and each ratio is taken
within a round. Every variant logs the same values (checked on the warm-up round). CPU time of
`trainer.fit`, garbage collection paused.

    python benchmarks/bench_workloads.py              # every workload, 9 rounds (--rounds N)
    python benchmarks/bench_workloads.py --quick      # a smoke run at a tiny size
    python benchmarks/bench_workloads.py segmentation # one workload
    python benchmarks/bench_workloads.py --parts many # where the metric time goes (ours - bare)

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
import importlib
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
from torchmetrics.regression import (
    ExplainedVariance,
    MeanAbsoluteError,
    MeanSquaredError,
    PearsonCorrCoef,
    R2Score,
)

from lightning_metrics_base import MetricAwareModule
from lightning_metrics_base._internals.torchmetrics import shared_curves
from lightning_metrics_base.update.buffering import DEFAULT_BUFFER_BYTES, UpdateBuffer, class_indices
from lightning_metrics_base.update.compute_groups import group_by_settings

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

    Every stat-score metric of the workloads is a function of one confusion matrix per stage. A binned
    curve's counts are taken with one ``bucketize`` and one ``bincount`` per batch (every threshold's
    counts are cumulative sums of the places); the exact curves keep the softmax scores and sort each
    class once at the epoch end (AUROC and average precision from the same sort). torchmetrics' own
    compute functions turn those counts and scores into values. Written for the workloads' metrics
    (multiclass, no ``ignore_index``).
    """

    def __init__(self, net: torch.nn.Module, metrics: dict[str, Metric], loss: Callable[..., Tensor]) -> None:
        super().__init__(net, metrics, loss)
        self.classes = next(metric.num_classes for metric in metrics.values())  # type: ignore[attr-defined]
        self.specs = {name: (type(m).__name__, getattr(m, "average", None), m) for name, m in metrics.items()}
        curves = [m for kind, _, m in self.specs.values() if kind in _CURVES]
        self.exact = any(m.thresholds is None for m in curves)  # type: ignore[attr-defined]
        self.thresholds = next((m.thresholds for m in curves if m.thresholds is not None), None)  # type: ignore[attr-defined]
        self.counts: dict[str, Tensor] = {}
        self.binned: dict[str, Tensor] = {}
        self.kept: dict[str, list[tuple[Tensor, Tensor]]] = {"train": [], "val": []}

    def step(self, stage: str, batch: Any) -> Tensor:
        x, y = batch
        preds = self(x)
        loss = self.loss(preds, y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=len(y))
        preds, c = preds.detach(), self.classes
        _add(self.counts, stage, torch.bincount((y * c + class_indices(preds)).flatten(), minlength=c * c))
        if self.exact or self.thresholds is not None:
            scores = preds.softmax(1)
            if self.exact:
                self.kept[stage].append((scores, y))
            if self.thresholds is not None:
                # each score's place among the thresholds (how many lie at or below it), counted by class and label
                places = torch.bucketize(scores, self.thresholds, right=True)
                t = len(self.thresholds)
                index = (torch.arange(c) * (t + 1) + places) * 2 + F.one_hot(y, c)
                _add(self.binned, stage, torch.bincount(index.flatten(), minlength=c * (t + 1) * 2))
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
        binned = None if self.thresholds is None else self.binned_counts(stage)
        with shared_curves():  # the exact curves: one sort per class for AUROC and AP
            for name, (kind, average, metric) in self.specs.items():
                if kind in by_class:
                    share, whole = by_class[kind]
                    score = torch.where(whole > 0, share / whole.clamp(min=1), 0.0)
                    values[name] = tp.sum() / total if average == "micro" else (score * seen).sum() / seen.sum()
                elif kind not in _CURVES:  # a confusion matrix: not a logged scalar
                    continue
                elif metric.thresholds is None:  # type: ignore[attr-defined]
                    scores, target = (torch.cat(parts) for parts in zip(*self.kept[stage], strict=True))
                    values[name] = _CURVES[kind](scores, target, c, "macro", None)
                else:
                    values[name] = _CURVES[kind](binned, c, "macro", self.thresholds)
        self.kept[stage] = []
        self.log_dict({f"{stage}/{name}": value.float() for name, value in values.items()})

    def binned_counts(self, stage: str) -> Tensor:
        """The ``(T, C, 2, 2)`` counts torchmetrics' binned curves keep, from the places counted per batch."""
        assert self.thresholds is not None
        c, t = self.classes, len(self.thresholds)
        places = self.binned.pop(stage).view(c, t + 1, 2)  # [class, place, label]
        positive = places.flip(1).cumsum(1).flip(1)[:, 1:]  # [class, threshold, label]: at or above the threshold
        negative = places.sum(1, keepdim=True) - positive
        # [threshold, class, label, predicted]
        return torch.stack([negative, positive], dim=-1).transpose(0, 1).contiguous()


def _add(sums: dict[str, Tensor], stage: str, count: Tensor) -> None:
    sums[stage] = count if stage not in sums else sums[stage] + count


def _exact_or_binned(compute: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def value(*args: Any) -> Tensor:
        if len(args) == 5:  # scores, target, classes, average, thresholds=None: exact
            scores, target, classes, average, _ = args
            return compute((scores, target), classes, average, None)
        return compute(*args)

    return value


_AUROC = importlib.import_module("torchmetrics.functional.classification.auroc")
_AP = importlib.import_module("torchmetrics.functional.classification.average_precision")
_CURVES = {
    "MulticlassAUROC": _exact_or_binned(_AUROC._multiclass_auroc_compute),
    "MulticlassAveragePrecision": _exact_or_binned(_AP._multiclass_average_precision_compute),
}


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


# Where the metric time goes (`--parts`): (module, function, label); each function timed inclusively in
# CPU time while the module runs. Updates are the counting calls less the input checks inside them.
PARTS = [
    ("lightning_metrics_base.update.buffering", "class_indices", "class indices"),
    ("lightning_metrics_base._internals.torchmetrics", "plainly_good", "input checks"),
    ("lightning_metrics_base.update.buffering", "checked_update", "updates"),
    ("lightning_metrics_base.update.metric_store", "compute_collection", "epoch-end compute"),
    ("torchmetrics.functional.classification.precision_recall_curve", "_binary_clf_curve", "sorts"),
    ("torchmetrics.functional.classification.roc", "_binary_clf_curve", "sorts"),
]


def parts(name: str, rounds: int, quick: bool) -> None:
    """Ours and the floor side by side; the metric time (ours - bare) split into the timed parts."""
    data, make = WORKLOADS[name](quick)
    spent: dict[str, float] = {}

    def timed(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - start

        return run

    times: dict[type, list[float]] = {Bare: [], Ours: []}
    shares: dict[str, list[float]] = {}
    for _ in range(rounds):
        order = [Bare, Ours]
        random.shuffle(order)
        for cls in order:
            if cls is Bare:
                times[Bare].append(fit(make(Bare), data)[0])
                continue
            originals = [(importlib.import_module(module), attribute) for module, attribute, _ in PARTS]
            saved = [getattr(module, attribute) for module, attribute in originals]
            spent.clear()
            for (module, attribute), function, (_, _, label) in zip(originals, saved, PARTS, strict=True):
                setattr(module, attribute, timed(function, label))
            try:
                times[Ours].append(fit(make(Ours), data)[0])
            finally:
                for (module, attribute), function in zip(originals, saved, strict=True):
                    setattr(module, attribute, function)
            measured = dict(spent)
            measured["updates"] = measured.get("updates", 0.0) - measured.get("input checks", 0.0)
            for label, seconds in measured.items():
                shares.setdefault(label, []).append(seconds)
    metric_time = statistics.median(times[Ours]) - statistics.median(times[Bare])
    shown = ", ".join(f"{label} {statistics.median(values) / metric_time:.0%}" for label, values in shares.items())
    print(
        f"{name} parts: ours {statistics.median(times[Ours]):.3f} s, bare {statistics.median(times[Bare]):.3f} s,"
        f" metric time {metric_time:.3f} s; of it: {shown} ({rounds} rounds, medians; sorts are inside the compute)"
    )


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
    parser.add_argument("--parts", action="store_true", help="split ours' metric time into its parts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no Trainer banner per run
    if "memory" in args.workloads:
        memory(args.quick)
    for name in (name for name in args.workloads if name != "memory"):
        (parts if args.parts else run)(name, 1 if args.quick else args.rounds, args.quick)


if __name__ == "__main__":
    main()
