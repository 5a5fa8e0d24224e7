"""What `MetricLogCheck` costs: the same hand-written fit with and without the callback, side by side.

A tiny linear classifier with two metrics (the seed's compute-in-step F1 and a forward accuracy),
trained on random data in one process, one thread. Runs alternate in a shuffled order after a
warm-up; the ratio is taken within each round. Reported: the median ratio with min and max.

    python benchmarks/bench_log_check.py             # 7 rounds
    python benchmarks/bench_log_check.py --quick     # 2 rounds at a tiny size
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from lightning_metrics_base import MetricLogCheck


class HandWritten(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(32, 10)
        self.train_acc = MulticlassAccuracy(10)
        self.val_f1 = MulticlassF1Score(10)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        self.log("train_acc", self.train_acc(logits, y), on_epoch=True)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.val_f1.update(self.net(x), y)
        self.log("val_f1", self.val_f1.compute())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def run(check: bool, samples: int) -> float:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(samples, 32), torch.randint(0, 10, (samples,)))
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        callbacks=[MetricLogCheck()] if check else [],
    )
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(HandWritten(), DataLoader(data, batch_size=32), DataLoader(data, batch_size=32))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, samples = (2, 256) if args.quick else (7, 4096)
    torch.set_num_threads(1)
    run(True, samples), run(False, samples)  # warm-up
    ratios = []
    for _ in range(rounds):
        order = [True, False]
        random.shuffle(order)
        times = {check: run(check, samples) for check in order}
        ratios.append(times[True] / times[False])
    print(
        f"with MetricLogCheck / without: {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max"
        f" {max(ratios):.2f}, {rounds} rounds, {samples} samples, 2 epochs, CPU time)"
    )


if __name__ == "__main__":
    main()
