"""Metrics shared between stages, held in plain containers, built per batch, moved by hand, global."""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy, MulticlassF1Score

SCORE = BinaryAccuracy()  # expect: LM206


class Model(L.LightningModule):
    threshold_metric = BinaryAccuracy(threshold=0.3)  # expect: LM206

    def __init__(self, num_classes: int = 5, extra=MulticlassF1Score(5)):  # expect: LM206
        super().__init__()
        self.net = torch.nn.Linear(16, num_classes)
        self.accuracy = MulticlassAccuracy(num_classes).cuda()  # expect: LM204
        self.by_stage = {"train": MulticlassF1Score(num_classes), "val": MulticlassF1Score(num_classes)}  # expect: LM202
        shared = {"acc": MulticlassAccuracy(num_classes), "f1": MulticlassF1Score(num_classes)}
        self.train_metrics = MetricCollection(shared, prefix="train_")
        self.val_metrics = MetricCollection(shared, prefix="val_")  # expect: LM201

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.accuracy.update(logits, y)  # expect: LM201
        self.log("train_acc", self.accuracy)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.accuracy.update(logits, y)  # expect: LM201
        self.log("val_acc", self.accuracy)
        f1 = MulticlassF1Score(5)  # expect: LM203
        f1.update(logits, y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
