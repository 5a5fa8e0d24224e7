"""Compute and reset in the step: every logged value is one batch's F1, averaged by Lightning.

The fix logs the object and drops the reset, so Lightning computes the F1 over the epoch; the
metric used in two hooks (`val_auroc`) cannot be fixed safely and keeps its finding.
"""

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAUROC, MulticlassF1Score


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.net = torch.nn.Linear(features, num_classes)
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.val_auroc = MulticlassAUROC(num_classes)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_f1.update(logits, y)
        self.log("val_f1", self.val_f1.compute(), on_epoch=True)  # expect: LM102
        self.val_f1.reset()
        self.val_auroc.update(logits, y)
        self.log("val_auroc", self.val_auroc.compute())  # expect: LM102
        self.val_auroc.reset()

    def on_validation_epoch_end(self):
        print("last batch AUROC state size:", len(self.val_auroc.preds))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
