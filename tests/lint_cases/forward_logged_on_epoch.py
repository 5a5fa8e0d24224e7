"""A metric's forward value logged per epoch: Lightning averages the batch values."""

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.net = torch.nn.Linear(features, num_classes)
        self.train_f1 = torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro")
        self.val_f1 = torchmetrics.F1Score(task="multiclass", num_classes=num_classes, average="macro")
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss, on_epoch=True)
        self.log("train_f1", self.train_f1(logits, y), on_step=True, on_epoch=True)  # expect: LM101
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_f1", self.val_f1(logits, y))  # expect: LM101
        acc = self.val_acc(logits, y)
        self.log("val_acc", acc, prog_bar=True)  # expect: LM101

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
