"""The seed's bug: compute() logged from the validation step, the metric never reset."""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.net = torch.nn.Linear(features, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_epoch=True)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_f1.update(self(x), y)
        self.log("val_f1", self.val_f1.compute(), on_epoch=True)  # expect: LM102, LM301

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
