"""Epoch-end traps: a mean of batch values, compute without reset, two ways of logging, sync_dist."""

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.net = torch.nn.Linear(16, num_classes)
        self.iou = MulticlassJaccardIndex(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes)
        self.val_acc = MulticlassAccuracy(num_classes)
        self.batch_ious = []
        self.losses = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.losses.append(loss.detach())
        return loss

    def on_train_epoch_end(self):
        self.log("train_loss", torch.stack(self.losses).mean())  # a loss averaged from outputs: fine
        self.losses.clear()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.batch_ious.append(self.iou(logits, y))
        self.val_acc.update(logits, y)
        self.log("val_acc", self.val_acc, sync_dist=True)  # expect: LM303

    def on_validation_epoch_end(self):
        self.log("val_iou", np.mean([float(v) for v in self.batch_ious]))  # expect: LM103
        self.batch_ious.clear()
        self.log("val_acc_again", self.val_acc.compute())  # expect: LM302

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_acc.update(self(x), y)

    def on_test_epoch_end(self):
        print(self.test_acc.compute())  # one test epoch: nothing spans epochs

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
