"""Two more fixable shapes: a forward value bound to a name then logged, and a Callback's compute()."""

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torchmetrics.classification import MulticlassF1Score


class Model(L.LightningModule):
    def __init__(self, num_classes: int = 5, features: int = 16):
        super().__init__()
        self.net = torch.nn.Linear(features, num_classes)
        self.val_f1 = MulticlassF1Score(num_classes)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        f1 = self.val_f1(self(x), y)
        self.log("val_f1", f1)  # expect: LM101

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class F1Callback(Callback):
    def __init__(self, num_classes: int = 5):
        self.f1 = MulticlassF1Score(num_classes)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        with torch.no_grad():
            self.f1.update(pl_module(batch[0]), batch[1])
        pl_module.log("val_f1_cb", self.f1.compute())  # expect: LM102, LM301
