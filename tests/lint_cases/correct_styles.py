"""Correct modules in other styles: ModuleDict per stage, configure_metrics(), aliases, epoch-end compute."""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


class TaskModule(L.LightningModule):
    """torchgeo-style: metrics built in configure_metrics(), one collection per stage."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Linear(16, num_classes)
        self.configure_metrics()

    def configure_metrics(self):
        metrics = MetricCollection({"acc": MulticlassAccuracy(self.num_classes), "f1": MulticlassF1Score(self.num_classes)})
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.train_metrics(logits, y)
        self.log_dict(self.train_metrics)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_metrics.update(self.net(x), y)
        self.log_dict(self.val_metrics)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_metrics.update(self.net(x), y)

    def on_test_epoch_end(self):
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()


class PerStage(L.LightningModule):
    """Metrics in an nn.ModuleDict per stage; a plain dict that only aliases registered metrics."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(16, 5)
        self.metrics = nn.ModuleDict({"train_acc": MulticlassAccuracy(5), "val_acc": MulticlassAccuracy(5)})
        self.by_stage = {"train": self.metrics["train_acc"], "val": self.metrics["val_acc"]}
        self.val_outputs = []

    def _step(self, batch, stage):
        x, y = batch
        logits = self.net(x)
        metric = self.metrics[f"{stage}_acc"]
        metric.update(logits, y)
        self.log(f"{stage}_acc", metric, on_epoch=True)
        return F.cross_entropy(logits, y)

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        loss = self._step(batch, "val")
        self.val_outputs.append(loss)
        return loss

    def on_validation_epoch_end(self):
        self.log("val_loss_mean", torch.stack(self.val_outputs).mean())
        self.val_outputs.clear()
