"""Tiny real models, data and a recording logger shared by the tests (module level, so they pickle).

Tests import what they share from here, never from each other."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import Metric
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassStatScores,
)
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    multiclass_accuracy,
    multiclass_f1_score,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from lightning_metrics_base import MetricAwareModule

NUM_FEATURES = 16
NUM_CLASSES = 5


TEACHER = torch.randn(NUM_FEATURES, NUM_CLASSES, generator=torch.Generator().manual_seed(1234))


def classification_data(n: int, seed: int) -> TensorDataset:
    """Features with labels from a fixed noisy linear teacher, so a small model is right often, not always."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, NUM_FEATURES, generator=generator)
    noise = 2.0 * torch.randn(n, NUM_CLASSES, generator=generator)
    y = (x @ TEACHER + noise).argmax(dim=1)
    return TensorDataset(x, y)


def loader(dataset: TensorDataset, batch_size: int = 64, shuffle: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def default_metrics() -> dict[str, Any]:
    return {
        "acc": MulticlassAccuracy(num_classes=NUM_CLASSES),
        "f1": MulticlassF1Score(num_classes=NUM_CLASSES, average="macro"),
    }


class Classifier(MetricAwareModule):
    """The spec's user story: a linear classifier, metrics from a dict, cross-entropy loss."""

    def __init__(self, metrics: Any = None, lr: float = 0.05, **kwargs: Any) -> None:
        super().__init__(metrics if metrics is not None else default_metrics(), **kwargs)
        self.lr = lr
        self.net = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(preds, target)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class RecordingLogger(Logger):
    """Keeps every `log_metrics` call, so tests can check exactly what a logger receives."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.records.append((step, dict(metrics)))

    def names(self) -> set[str]:
        return {name for _, metrics in self.records for name in metrics if name != "epoch"}

    def values(self, name: str) -> list[float]:
        return [metrics[name] for _, metrics in self.records if name in metrics]


class FigureLogger(RecordingLogger):
    """A logger with `log_image`, as W&B has: keeps the titles of the figures it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[tuple[str, int, str]] = []

    def log_image(self, key: str, images: list[Any], step: int) -> None:
        self.titles.append((key, step, images[0]._suptitle.get_text()))


class ReleaseProcessGroup(Callback):
    """Destroys the gloo process group when a `ddp` or `ddp_spawn` process is done with it.

    Lightning leaves the group to the interpreter's exit in each spawned worker. Gloo's worker
    threads may then still hold work objects whose tensors reference Python objects, and tearing them
    down during interpreter finalization aborts the process ("terminate called without an active
    exception", SIGABRT) now and then. Destroying the group while the interpreter is fully alive
    (every collective of the run is over by the `teardown` hook) removes the race.
    """

    def teardown(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def make_trainer(**kwargs: Any) -> Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    options.update(kwargs)
    if options.get("strategy") in ("ddp", "ddp_spawn"):
        options["callbacks"] = [*options.get("callbacks", []), ReleaseProcessGroup()]
    return Trainer(**options)


@torch.no_grad()
def predict_all(model: torch.nn.Module, dataset: TensorDataset) -> tuple[Tensor, Tensor]:
    """The model's outputs over a whole dataset, and its targets: the reference's inputs."""
    model.eval()
    x, y = dataset.tensors
    return model(x), y


def full_data_accuracy(model: torch.nn.Module, dataset: TensorDataset) -> float:
    """The reference: macro accuracy over a whole dataset at once."""
    from torchmetrics.functional.classification import multiclass_accuracy

    preds, target = predict_all(model, dataset)
    return float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES))


OUTPUTS = ("cls", "big")


def two_head_metrics() -> dict[str, Any]:
    return {
        "cls": {"acc": MulticlassAccuracy(NUM_CLASSES), "f1": MulticlassF1Score(NUM_CLASSES, average="macro")},
        "big": {"acc": BinaryAccuracy(), "auroc": BinaryAUROC()},
    }


class TwoHeads(MetricAwareModule):
    """A class head and a binary "is the class 3 or more" head on one linear trunk."""

    def __init__(self, metrics: Any = None, lr: float = 0.05, **kwargs: Any) -> None:
        kwargs.setdefault("outputs", OUTPUTS)
        super().__init__(metrics if metrics is not None else two_head_metrics(), **kwargs)
        self.lr = lr
        self.trunk = torch.nn.Linear(NUM_FEATURES, 8)
        self.cls = torch.nn.Linear(8, NUM_CLASSES)
        self.big = torch.nn.Linear(8, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        hidden = torch.relu(self.trunk(x))
        return {"cls": self.cls(hidden), "big": self.big(hidden).squeeze(-1)}

    def unpack_batch(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        return x, {"cls": y, "big": (y >= 3).long()}

    def metric_inputs(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> tuple[Any, Any]:
        # probabilities: torchmetrics decides per call whether a binary input holds logits
        return {**preds, "big": preds["big"].sigmoid()}, target

    def compute_loss(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
        cls = F.cross_entropy(preds["cls"], target["cls"])
        big = F.binary_cross_entropy_with_logits(preds["big"], target["big"].float())
        return {"loss": cls + big, "cls": cls, "big": big}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


@torch.no_grad()
def two_head_reference(model: TwoHeads, dataset: TensorDataset) -> dict[str, float]:
    model.eval()
    x, y = dataset.tensors
    preds = model(x)
    big = (y >= 3).long()
    cls_loss = F.cross_entropy(preds["cls"], y)
    big_loss = F.binary_cross_entropy_with_logits(preds["big"], big.float())
    return {
        "cls/acc": float(multiclass_accuracy(preds["cls"], y, num_classes=NUM_CLASSES)),
        "cls/f1": float(multiclass_f1_score(preds["cls"], y, num_classes=NUM_CLASSES, average="macro")),
        "big/acc": float(binary_accuracy(preds["big"].sigmoid(), big)),
        "big/auroc": float(binary_auroc(preds["big"].sigmoid(), big)),
        "loss": float(cls_loss + big_loss),
        "loss/cls": float(cls_loss),
        "loss/big": float(big_loss),
    }


class Regressor(MetricAwareModule):
    """No `compute_loss`: the loss comes from `loss_fn`; `metric_inputs` squeezes the outputs."""

    def __init__(self) -> None:
        super().__init__({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, loss_fn=self._loss)
        self.net = torch.nn.Linear(NUM_FEATURES, 1)

    @staticmethod
    def _loss(preds: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(preds.squeeze(-1), target)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return preds.squeeze(-1), target

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def regression_data(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, NUM_FEATURES, generator=generator)
    return TensorDataset(x, x.sum(dim=1) + 0.1 * torch.randn(n, generator=generator))


def classification_metrics() -> dict[str, Any]:
    return {
        "stats": MulticlassStatScores(NUM_CLASSES, average=None),
        "confmat": MulticlassConfusionMatrix(NUM_CLASSES),
        "auroc": MulticlassAUROC(NUM_CLASSES, thresholds=None),  # a concatenated (list) state
        "ap": MulticlassAveragePrecision(NUM_CLASSES, thresholds=None),
        "acc": MulticlassAccuracy(NUM_CLASSES),
        "f1": MulticlassF1Score(NUM_CLASSES, average="macro"),
    }


class MeanAndMax(Metric):
    """A metric whose result is a dict."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("largest", torch.tensor(float("-inf")), dist_reduce_fx="max")

    def update(self, preds: Tensor, target: Tensor) -> None:
        top = preds.max(dim=1).values
        self.total += top.sum()
        self.count += top.numel()
        self.largest = torch.maximum(self.largest, top.max())

    def compute(self) -> dict[str, Tensor]:
        return {"mean": self.total / self.count, "max": self.largest}


class HandWritten(LightningModule):
    """A base for the hand-written modules: a linear classifier, no learning (lr 0), so references are exact."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class UpdatesOnly(HandWritten):
    """Updates a validation F1 in the step and logs nothing (a callback or the epoch end may)."""

    def __init__(self) -> None:
        super().__init__()
        self.val_f1 = MulticlassF1Score(NUM_CLASSES)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.val_f1.update(self(x), y)


class ComputeInStep(UpdatesOnly):
    """The seed's bug: compute() logged from the step, never reset."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        self.log("val_f1", self.val_f1.compute())
