"""A Callback that keeps its own metric and logs through pl_module.log."""

from lightning.pytorch.callbacks import Callback
from torchmetrics.classification import MulticlassF1Score


class F1Logger(Callback):
    def __init__(self, num_classes: int = 5):
        self.f1 = MulticlassF1Score(num_classes)
        self.batch_f1 = MulticlassF1Score(num_classes)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        logits = pl_module(x)
        self.f1.update(logits, y)
        pl_module.log("val_f1_cb", self.f1.compute())  # expect: LM102
        pl_module.log("val_f1_batch", self.batch_f1(logits, y))  # expect: LM101

    def on_validation_epoch_start(self, trainer, pl_module):
        self.f1.reset()
