"""Tiny real models, data and a recording logger shared by the tests (module level, so they pickle)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning import Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

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


class ReleaseProcessGroup(Callback):
    """Destroys the gloo process group when a `ddp_spawn` worker is done with it.

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
    if options.get("strategy") == "ddp_spawn":
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
