"""The engine alone, with no Lightning and no trainer: fed a `RunView`, it returns what to log.

The face's tests (a real `Trainer`) show the same values reach Lightning; these show the engine decides
them from the run view alone, so a face only carries them out.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_accuracy

from lightning_metrics_base.configuration.config import build_options
from lightning_metrics_base.engine import NO_RUN, MetricEngine


@dataclass
class Run:
    """A `RunView` set by hand."""

    counts: dict[str, Sequence[float]] = field(default_factory=dict)
    attached: bool = True
    logs_this_step: bool = True
    world_size: int = 1
    sanity_checking: bool = False
    fitting: bool = True
    global_zero: bool = True
    takes_suffixed_names: bool = True

    def batch_counts(self, stage: str) -> Sequence[float]:
        return self.counts.get(stage, (1,))

    def dataloaders(self, stage: str) -> object:
        return None

    def sum_across_processes(self) -> Callable[[Tensor], Tensor] | None:
        return None


def engine(metrics: Any, **options: Any) -> MetricEngine:
    log_train_step = options.pop("log_train_step", False)
    large = options.pop("large_state_bytes", 2**28)
    settings: dict[str, Any] = {
        "stages": ("train", "val", "test"),
        "loss_fn": None,
        "log_sep": "/",
        "outputs": None,
        "buffer_batches": 4,
        "prog_bar": ("loss",),
        "track_best": (),
        "log_figures": True,
    }
    settings.update(options)
    return MetricEngine(
        build_options(metrics, **settings),
        log_train_step=log_train_step,
        buffer_bytes=2**24,
        large_state_bytes=large,
    )


def batches(sizes: Sequence[int], seed: int) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 4, generator=generator), torch.randint(0, 4, (size,), generator=generator)) for size in sizes
    ]


def logged(records: Any) -> dict[str, float]:
    return {record.name: float(record.value) for record in records}


def test_a_dataloader_s_values_come_after_its_last_batch_and_equal_the_whole_data_s() -> None:
    run = Run(counts={"val": (3, 2)})
    model = engine({"acc": MulticlassAccuracy(4)})
    data = {0: batches([8, 8, 5], seed=0), 1: batches([6, 3], seed=1)}
    assert model.start_epoch("val", run) == ()
    for idx, loader in data.items():
        for batch_idx, (preds, target) in enumerate(loader):
            model.add_loss("val", idx, {"loss": torch.tensor(float(batch_idx))}, len(target), run)
            assert model.update("val", idx, preds, target, run) == ()
            report = model.end_batch("val", batch_idx, idx, run)
            if batch_idx + 1 < len(loader):
                assert report.records == ()
                continue
            records = {record.name: record for record in report.records}
            assert set(records) == {"val/acc", "val/loss"}  # Lightning adds the suffix to values of a batch hook
            whole = multiclass_accuracy(torch.cat([p for p, _ in loader]), torch.cat([t for _, t in loader]), 4)
            assert torch.equal(records["val/acc"].value, whole)
            sizes = torch.tensor([len(t) for _, t in loader], dtype=torch.float)
            mean_loss = (sizes * torch.arange(len(loader), dtype=torch.float)).sum() / sizes.sum()
            assert float(records["val/loss"].value) == pytest.approx(float(mean_loss))
            assert all(r.on_epoch and not r.on_step and r.add_dataloader_idx for r in records.values())
            assert f"val/acc/dataloader_idx_{idx}" in model.epoch_metrics
    assert model.end_epoch("val", run).records == ()  # both finished from their last batch


def test_at_the_epoch_end_several_dataloaders_are_named_by_the_engine() -> None:
    run = Run(counts={"val": (float("inf"), float("inf"))})
    model = engine({"acc": MulticlassAccuracy(4)})
    model.start_epoch("val", run)
    for idx in (0, 1):
        preds, target = batches([5], seed=idx)[0]
        model.update("val", idx, preds, target, run)
        assert model.end_batch("val", 0, idx, run).records == ()
    records = model.end_epoch("val", run).records
    assert [(r.name, r.add_dataloader_idx) for r in records] == [
        ("val/acc/dataloader_idx_0", False),
        ("val/acc/dataloader_idx_1", False),
    ]
    with pytest.raises(ValueError, match="dataloader 1"):
        engine({"acc": MulticlassAccuracy(4)}).start_epoch(
            "val", Run(counts={"val": (2, float("inf"))}, takes_suffixed_names=False)
        )


@pytest.mark.parametrize(
    ("fitting", "sanity_checking", "offered"), [(True, False, True), (False, False, False), (True, True, False)]
)
def test_best_values_are_offered_only_while_fitting(fitting: bool, sanity_checking: bool, offered: bool) -> None:
    run = Run(fitting=fitting, sanity_checking=sanity_checking)
    model = engine({"acc": MulticlassAccuracy(4)}, track_best=("acc",))
    preds, target = batches([9], seed=2)[0]
    model.start_epoch("val", run)
    model.update("val", 0, preds, target, run)
    values = logged(model.end_epoch("val", run).records)
    assert ("val/acc_best" in values) is offered
    assert model.best.values == ({"val/acc_best": values["val/acc"]} if offered else {})


@pytest.mark.parametrize(
    ("run", "sent"),
    [
        (Run(), True),
        (Run(attached=False), False),
        (Run(sanity_checking=True), False),
        (Run(global_zero=False), False),
    ],
)
def test_figures_are_decided_from_the_run(run: Run, sent: bool) -> None:
    model = engine({"confmat": MulticlassConfusionMatrix(4)}, log_figures=("val",))
    preds, target = batches([9], seed=3)[0]
    model.update("val", 0, preds, target, run)
    report = model.end_epoch("val", run)
    assert [(f.stage, f.tag) for f in report.figures] == ([("val", "val/confmat")] if sent else [])
    assert torch.equal(model.epoch_metrics["val/confmat"], MulticlassConfusionMatrix(4)(preds, target))
    model.update("test", 0, preds, target, run)
    assert model.end_epoch("test", run).figures == ()  # not a stage of `log_figures`


@pytest.mark.parametrize(
    ("prog_bar", "logs_this_step", "expected"), [(("loss",), False, 1), ((), True, 1), ((), False, 0)]
)
def test_the_train_loss_is_logged_on_a_step_whose_values_are_seen(
    prog_bar: tuple[str, ...], logs_this_step: bool, expected: int
) -> None:
    model = engine({"acc": MulticlassAccuracy(4)}, prog_bar=prog_bar)
    records = model.add_loss("train", 0, {"loss": torch.tensor(0.25)}, 4, Run(logs_this_step=logs_this_step))
    assert [(r.name, float(r.value), r.on_step, r.on_epoch, r.batch_size) for r in records] == [
        ("train/loss_step", 0.25, True, False, 4)
    ][:expected]
    assert model.add_loss("val", 0, {"loss": torch.tensor(0.25)}, 4, Run()) == ()


def test_per_step_values_and_the_user_s_own_names() -> None:
    model = engine({"acc": MulticlassAccuracy(4)}, log_train_step=True)
    model.start_run("fit")
    preds, target = batches([7], seed=4)[0]
    records = model.update("train", 0, preds, target, Run())
    assert logged(records) == {"train/acc_step": float(multiclass_accuracy(preds, target, 4))}
    assert model.update("train", 0, preds, target, Run(logs_this_step=False)) == ()
    with pytest.raises(ValueError, match="'train/acc_step' is logged by the module"):
        model.claim_user_name("train/acc_step")
    model.start_run("validate")  # a new run: names change hands
    model.claim_user_name("train/acc_step")


def test_a_large_state_is_noticed_once_per_fit() -> None:
    model = engine({"auroc": MulticlassAUROC(4)}, large_state_bytes=100)
    preds, target = batches([40], seed=5)[0]
    for _ in range(2):
        model.update("val", 0, preds.softmax(-1), target, Run(world_size=2))
        notices = model.end_epoch("val", Run(world_size=2)).notices
    assert notices == ()
    model.start_run("fit")
    model.update("val", 0, preds.softmax(-1), target, Run(world_size=2))
    (notice,) = model.end_epoch("val", Run(world_size=2)).notices
    assert "val metric 'auroc'" in notice and "on each of 2" in notice


def test_without_a_trainer_the_engine_runs_on_no_run() -> None:
    model = engine({"acc": MulticlassAccuracy(4)}, track_best=("acc",))
    preds, target = batches([6], seed=6)[0]
    model.update("val", 0, preds, target, NO_RUN)
    report = model.end_epoch("val", NO_RUN)
    assert logged(report.records) == {"val/acc": float(multiclass_accuracy(preds, target, 4))}  # no best: not a fit
    assert report.figures == ()


def test_the_engine_loads_without_lightning() -> None:
    code = (
        "import sys\n"
        "sys.modules['lightning'] = sys.modules['pytorch_lightning'] = None\n"  # importing either fails
        "import lightning_metrics_base.engine\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
