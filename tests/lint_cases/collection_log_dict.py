"""A MetricCollection cloned per stage with a prefix, its forward output logged with log_dict."""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassPrecision, MulticlassRecall


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.net = torch.nn.Linear(features, num_classes)
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes),
                "precision": MulticlassPrecision(num_classes),
                "recall": MulticlassRecall(num_classes),
            }
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log_dict(self.train_metrics(logits, y))  # per step only: no finding
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log_dict(self.val_metrics(self(x), y))  # expect: LM101

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
