"""Count collective calls under DDP (two CPU processes, gloo): inside steps, and outside (epoch ends).

Metric state should be synced once per compute group per epoch, never per step. Accuracy, macro
precision, recall and F1 of one task form one compute group of 4 states; torchmetrics gathers each
state with a barrier and two all_gathers (sizes, then data). Lightning's own collectives (the DDP
forward's broadcasts, the loss sync, the fit-loop's checks) are the same for every variant.

    python benchmarks/count_collectives.py
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning import Callback, LightningModule, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overhead import VARIANTS, data, make_trainer, metric_set

_COLLECTIVES = ("all_gather", "all_reduce", "broadcast", "barrier", "all_gather_object", "reduce", "gather")


class CountCollectives(Callback):
    """Wraps torch.distributed's collectives in each process and reports counts per phase."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.phase = "outside steps"

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for name in _COLLECTIVES:
            original = getattr(dist, name)

            def counted(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                self.counts[f"{self.phase}:{_name}"] += 1
                return _original(*args, **kwargs)

            setattr(dist, name, counted)

    def on_train_batch_start(self, *args: Any) -> None:
        self.phase = "in train steps"

    def on_train_batch_end(self, *args: Any) -> None:
        self.phase = "outside steps"

    def on_validation_batch_start(self, *args: Any) -> None:
        self.phase = "in val steps"

    def on_validation_batch_end(self, *args: Any) -> None:
        self.phase = "outside steps"

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_rank == 0:
            epochs = trainer.current_epoch
            summary = ", ".join(f"{key} {value / epochs:g}" for key, value in sorted(self.counts.items()))
            print(f"RESULT {type(pl_module).__name__}: per epoch: {summary}", flush=True)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning leaves a spawned worker's gloo group to the interpreter's exit, where tearing it
        # down aborts the worker now and then; release it while the worker is fully alive.
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def main(variants: tuple[str, ...] = ("ours", "ours_step", "lean", "best")) -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    for variant in variants:
        model = VARIANTS[variant](metric_set(4), False)
        trainer = make_trainer(devices=2, strategy="ddp_spawn", max_epochs=2, callbacks=[CountCollectives()])
        print(f"-- {variant}", flush=True)
        trainer.fit(model, data(1024, 0), data(256, 1))


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("ours", "ours_step", "lean", "best"))
