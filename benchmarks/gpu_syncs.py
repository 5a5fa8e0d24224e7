"""Host-device synchronisations and fit time on a GPU: ours (buffered), ours (unbuffered), lean and bare.

Every synchronisation the CUDA runtime is asked for (a `.item()`, a `bincount`, a data-dependent
shape, an input check in torchmetrics) stalls the GPU until it has caught up. The script counts them
per fit with `torch.cuda.set_sync_debug_mode("warn")`, which warns once per synchronising call, and
times the same fits. The model is a small MLP (so per-step overheads show), batch 256, 64 training
and 64 validation steps.

    python benchmarks/gpu_syncs.py            # needs a CUDA device; prints what it measured
    python benchmarks/gpu_syncs.py --rounds 5

On a machine without CUDA it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overhead import Bare, Lean, Ours, make_trainer, metric_set

NUM_FEATURES, NUM_CLASSES, HIDDEN = 32, 10, 256


class MLP(torch.nn.Sequential):
    def __init__(self) -> None:
        super().__init__(torch.nn.Linear(NUM_FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, NUM_CLASSES))


def variants() -> dict[str, Any]:
    def with_mlp(module: LightningModule) -> LightningModule:
        module.net = MLP()
        return module

    return {
        "ours": lambda: with_mlp(Ours(metric_set(4))),
        "ours_unbuffered": lambda: with_mlp(Ours(metric_set(4), buffer_batches=1)),
        "lean": lambda: with_mlp(Lean(metric_set(4))),
        "bare": lambda: with_mlp(Bare()),
    }


class GpuBatches:
    """Batches already on the GPU, so that data loading adds no transfer of its own."""

    def __init__(self, batches: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(batches * 256, NUM_FEATURES, generator=generator).cuda()
        y = torch.randint(0, NUM_CLASSES, (batches * 256,), generator=generator).cuda()
        self.batches = [(x[i : i + 256], y[i : i + 256]) for i in range(0, len(y), 256)]

    def __iter__(self) -> Any:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def fit_once(make: Any, train: GpuBatches, val: GpuBatches) -> tuple[float, int]:
    """Seconds of `trainer.fit` and the number of synchronising calls it made."""
    model = make()
    trainer = make_trainer(accelerator="gpu", devices=1, max_epochs=1)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            started = time.perf_counter()
            trainer.fit(model, train, val)
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchronizing" in str(warning.message).lower() for warning in caught)
    return elapsed, syncs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 0
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    train, val = GpuBatches(64, 0), GpuBatches(64, 1)
    makers = variants()
    for make in makers.values():  # warm-up: CUDA context, kernels, allocator
        fit_once(make, train, val)
    times: dict[str, list[float]] = {name: [] for name in makers}
    syncs: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, make in makers.items():
            elapsed, count = fit_once(make, train, val)
            times[name].append(elapsed)
            syncs[name] = count
    print(f"device: {torch.cuda.get_device_name()}; MLP {NUM_FEATURES}-{HIDDEN}-{NUM_CLASSES}, batch 256, 64+64 steps")
    for name in makers:
        print(f"{name:16s} syncs per fit {syncs[name]:5d}   fit seconds (median) {statistics.median(times[name]):.3f}")
    metric_syncs = {name: syncs[name] - syncs["bare"] for name in makers}
    print(f"metric-caused syncs, ours / lean: {metric_syncs['ours']} / {metric_syncs['lean']}")
    for top in ("ours", "ours_unbuffered"):
        ratios = [t / lean for t, lean in zip(times[top], times["lean"], strict=True)]
        print(f"fit time {top} / lean: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
