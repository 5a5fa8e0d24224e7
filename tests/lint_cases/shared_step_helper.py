"""One helper for every stage, metrics found by name, functional and scikit-learn values."""

import lightning as L
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn
from torchmetrics.classification import MulticlassAUROC
from torchmetrics.functional.classification import multiclass_accuracy


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Linear(features, num_classes)
        self.train_auroc = MulticlassAUROC(num_classes)
        self.val_auroc = MulticlassAUROC(num_classes)

    def forward(self, x):
        return self.net(x)

    def _shared_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        auroc = getattr(self, f"{stage}_auroc")
        self.log(f"{stage}_auroc", auroc(logits, y), on_epoch=True)  # expect: LM101
        acc = multiclass_accuracy(logits, y, num_classes=self.num_classes)
        self.log(f"{stage}_acc", acc, on_epoch=True)  # expect: LM101
        self.log(f"{stage}_loss", loss, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")
        x, y = batch
        preds = self(x).argmax(dim=1)
        self.log("val_f1_sklearn", f1_score(y.cpu(), preds.cpu(), average="macro"))  # expect: LM101

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
