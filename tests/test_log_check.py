"""`MetricLogCheck` on hand-written LightningModules: the numbers it reports, and that it changes nothing."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    ComputeInStep,
    HandWritten,
    UpdatesOnly,
    classification_data,
    loader,
    make_trainer,
)
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_precision

from lightning_metrics_base import MetricLogCheck

TRAIN, VAL = classification_data(200, seed=61), classification_data(130, seed=62)


class ForwardOnEpoch(HandWritten):
    def __init__(self) -> None:
        super().__init__()
        self.train_f1 = MulticlassF1Score(NUM_CLASSES)
        self.val_acc = MulticlassAccuracy(NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.log("train_f1", self.train_f1(logits, y), on_epoch=True)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", self.val_acc(self(x), y))


class DocsPattern(HandWritten):
    """torchmetrics' documented pattern: update in the step, the Metric object to self.log."""

    def __init__(self) -> None:
        super().__init__()
        self.train_acc, self.val_acc = MulticlassAccuracy(NUM_CLASSES), MulticlassAccuracy(NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=True)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.val_acc.update(self(x), y)
        self.log("val_acc", self.val_acc)


class SharedMetric(HandWritten):
    def __init__(self) -> None:
        super().__init__()
        self.acc = MulticlassAccuracy(NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.acc.update(logits, y)
        self.log("train_acc", self.acc)
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.acc.update(self(x), y)
        self.log("val_acc", self.acc)


class CollectionForward(HandWritten):
    def __init__(self) -> None:
        super().__init__()
        metrics = MetricCollection(
            {"f1": MulticlassF1Score(NUM_CLASSES), "precision": MulticlassPrecision(NUM_CLASSES)}
        )
        self.val_metrics = metrics.clone(prefix="val_")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log_dict(self.val_metrics(self(x), y))


Outputs = collections.namedtuple("Outputs", ["logits", "aux"])


class AccuracyOfOutputs(MulticlassAccuracy):
    """A metric fed the model's namedtuple of outputs, the way torchvision's models return them."""

    def update(self, preds: Any, target: Tensor) -> None:
        super().update(preds.logits, target)


class NamedTupleForward(HandWritten):
    def __init__(self) -> None:
        super().__init__()
        self.val_acc = AccuracyOfOutputs(NUM_CLASSES)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_acc", self.val_acc(Outputs(logits, logits * 2), y))


class CallbackLogs(Callback):
    """A Callback that logs the module's metric, computed in a batch hook."""

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        pl_module.log("val_f1_cb", pl_module.val_f1.compute())


def fit(
    model: L.LightningModule, check: bool = True, epochs: int = 2, **kwargs: Any
) -> tuple[dict[str, float], list[str], Any]:
    torch.manual_seed(0)
    checker = MetricLogCheck()
    callbacks = [checker] if check else []
    trainer = make_trainer(max_epochs=epochs, callbacks=[*kwargs.pop("callbacks", []), *callbacks], **kwargs)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(model, loader(TRAIN, batch_size=32), loader(VAL, batch_size=32))
    notes = [str(w.message) for w in record if "MetricLogCheck" in str(w.message) or ": logged " in str(w.message)]
    return {name: float(value) for name, value in trainer.callback_metrics.items()}, notes, checker


def reference(model: L.LightningModule, dataset: Any, function: Any) -> float:
    with torch.no_grad():
        return float(function(model(dataset.tensors[0]), dataset.tensors[1], num_classes=NUM_CLASSES))


def reported(notes: list[str], name: str) -> tuple[float, float]:
    (note,) = [note for note in notes if note.startswith(f"{name}: logged")]
    match = re.match(rf"{re.escape(name)}: logged ([\d.]+), over the epoch ([\d.]+) \(", note)
    assert match, note
    return float(match.group(1)), float(match.group(2))


class TestReportedNumbers:
    def test_compute_in_step(self) -> None:
        metrics, notes, checker = fit(ComputeInStep(), epochs=1)  # the warning gives the first epoch's numbers
        logged, over_epoch = reported(notes, "val_f1")
        (row,) = [row for row in checker.results if row[0] == "val_f1"]
        assert row[1] == metrics["val_f1"] and logged == pytest.approx(row[1], abs=1e-4)
        assert over_epoch == pytest.approx(row[2], abs=1e-4)
        (note,) = [note for note in notes if note.startswith("val_f1: logged")]
        assert "running value" in note and "pass the Metric object to self.log" in note

    def test_compute_in_step_against_the_whole_data(self) -> None:
        model = ComputeInStep()
        _, notes, checker = fit(model)
        truth = reference(model, VAL, multiclass_f1_score)
        (row,) = [row for row in checker.results if row[0] == "val_f1"]
        assert row[2] == pytest.approx(truth, abs=1e-6) and abs(row[1] - truth) > 1e-3
        assert any("is never reset" in note and "self.val_f1" in note for note in notes)

    def test_forward_values_logged_per_epoch(self) -> None:
        model = ForwardOnEpoch()
        metrics, notes, checker = fit(model)
        results = {name: (logged, truth) for name, logged, truth in checker.results}
        assert results["train_f1"][1] == pytest.approx(reference(model, TRAIN, multiclass_f1_score), abs=1e-6)
        assert results["val_acc"][1] == pytest.approx(reference(model, VAL, multiclass_accuracy), abs=1e-6)
        assert results["train_f1"][0] == metrics["train_f1_epoch"] and results["val_acc"][0] == metrics["val_acc"]
        assert {note.split(":")[0] for note in notes if ": logged" in note} == {"train_f1", "val_acc"}
        assert sum(note.startswith("val_acc: logged") for note in notes) == 1  # once per name per fit

    def test_a_collection_logged_with_log_dict(self) -> None:
        model = CollectionForward()
        _, notes, checker = fit(model)
        results = {name: truth for name, _, truth in checker.results}
        assert results["val_f1"] == pytest.approx(reference(model, VAL, multiclass_f1_score), abs=1e-6)
        assert results["val_precision"] == pytest.approx(reference(model, VAL, multiclass_precision), abs=1e-6)
        assert {"val_f1", "val_precision"} <= {note.split(":")[0] for note in notes}

    def test_a_metric_fed_a_namedtuple(self) -> None:
        model = NamedTupleForward()
        metrics, notes, checker = fit(model)
        (row,) = checker.results
        assert row[0] == "val_acc" and row[1] == metrics["val_acc"]
        assert row[2] == pytest.approx(reference(model, VAL, multiclass_accuracy), abs=1e-6)
        assert any(note.startswith("val_acc: logged") for note in notes)

    def test_a_callback_that_logs(self) -> None:
        model = UpdatesOnly()
        _, notes, checker = fit(model, callbacks=[CallbackLogs()])
        (row,) = checker.results
        assert row[0] == "val_f1_cb" and row[2] == pytest.approx(reference(model, VAL, multiclass_f1_score), abs=1e-6)
        assert any(note.startswith("val_f1_cb: logged") for note in notes)


class TestNoFalseAlarm:
    def test_the_documented_pattern_gets_no_warning(self) -> None:
        _, notes, checker = fit(DocsPattern())
        assert notes == [] and checker.results == []

    def test_a_metric_aware_module_gets_no_warning(self) -> None:
        _, notes, checker = fit(Classifier(log_train_step=True))
        assert notes == [] and checker.results == []


def test_a_metric_shared_by_two_stages() -> None:
    _, notes, _ = fit(SharedMetric())
    shared = [note for note in notes if "updated in" in note]
    assert len(shared) == 1 and "self.acc (MulticlassAccuracy) is updated in train and val" in shared[0]


@pytest.mark.parametrize("model", [ComputeInStep, ForwardOnEpoch, CollectionForward, DocsPattern])
def test_logged_values_are_identical_with_and_without_the_callback(model: type[L.LightningModule]) -> None:
    torch.manual_seed(1)
    first = model()
    second = model()
    second.load_state_dict(first.state_dict())
    with_check, _, _ = fit(first)
    without, _, _ = fit(second, check=False)
    assert with_check == without and with_check


def test_everything_installed_is_removed_after_the_fit_and_after_an_error() -> None:
    model = ComputeInStep()
    fit(model)
    # torchmetrics keeps its own per-instance `update` and `compute` wrappers; ours are gone
    assert "log" not in vars(model) and not {"forward", "reset"} & set(vars(model.val_f1))
    assert {vars(model.val_f1)[name].__name__ for name in ("update", "compute")} == {"update", "compute"}

    class Fails(ComputeInStep):
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            super().validation_step(batch, batch_idx)
            if batch_idx == 2:
                raise RuntimeError("boom")

    failing = Fails()
    with pytest.raises(RuntimeError, match="boom"):
        fit(failing)
    assert "log" not in vars(failing) and vars(failing.val_f1)["update"].__name__ == "update"


def test_the_summary_lists_every_checked_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        _, _, checker = fit(ForwardOnEpoch())
    text = checker.summary()
    assert text.splitlines()[1].split() == ["name", "logged", "over", "the", "epoch", "difference"]
    assert {line.split()[0] for line in text.splitlines()[2:]} == {"train_f1", "val_acc"}
    assert "MetricLogCheck: the values logged from metrics in steps" in caplog.text


def test_under_torch_compile() -> None:
    model = ForwardOnEpoch()
    compiled = torch.compile(model)
    _, notes, checker = fit(compiled)  # type: ignore[arg-type]
    assert {name for name, _, _ in checker.results} == {"train_f1", "val_acc"}
    assert any(note.startswith("val_acc: logged") for note in notes)


DDP_SCRIPT = """
import json, sys, warnings
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
from helpers import classification_data, loader, make_trainer, NUM_CLASSES
from helpers import ComputeInStep
from torchmetrics.functional.classification import multiclass_f1_score
from lightning_metrics_base import MetricLogCheck

torch.manual_seed(0)
model, checker = ComputeInStep(), MetricLogCheck()
trainer = make_trainer(max_epochs=1, strategy="ddp", devices=2, callbacks=[checker])
val = classification_data(128, seed=62)
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    trainer.fit(model, loader(classification_data(128, seed=61), batch_size=16), loader(val, batch_size=16))
notes = [str(w.message) for w in record if ": logged" in str(w.message)]
with torch.no_grad():
    truth = float(multiclass_f1_score(model(val.tensors[0]), val.tensors[1], num_classes=NUM_CLASSES))
# each process writes its own file: two processes printing to one pipe interleave their lines
report = {{"notes": len(notes), "truth": truth, "results": checker.results}}
Path(f"rank_{{trainer.global_rank}}.json").write_text(json.dumps(report))
"""


@pytest.mark.slow
def test_under_two_process_ddp(tmp_path: Path) -> None:
    script = tmp_path / "ddp_check.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank_{rank}.json").read_text()) for rank in (0, 1)]
    for report in reports:
        ((name, _, over_epoch),) = report["results"]
        assert name == "val_f1" and over_epoch == pytest.approx(report["truth"], abs=1e-5)  # over both processes
    assert [report["notes"] for report in reports] == [1, 0]  # one warning, from rank 0


def test_is_a_callback_export() -> None:
    import lightning_metrics_base

    assert isinstance(MetricLogCheck(), Callback) and "MetricLogCheck" in lightning_metrics_base.__all__
    assert isinstance(MulticlassF1Score(3), Metric)


class ComputeAndResetInStep(HandWritten):
    """compute() logged and the metric reset in every step: each value is one batch's F1."""

    def __init__(self) -> None:
        super().__init__()
        self.val_f1 = MulticlassF1Score(NUM_CLASSES)
        self.train_f1 = MulticlassF1Score(NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.train_f1.update(logits, y)
        self.train_f1.reset()
        return F.cross_entropy(logits, y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.val_f1.update(self(x), y)
        self.log("val_f1", self.val_f1.compute(), on_epoch=True)
        self.val_f1.reset()
        self.train_f1.update(self(x), y)  # the train metric fed in validation too, but reset every step
        self.train_f1.reset()


class TestArguments:
    @pytest.mark.parametrize(
        ("options", "named"), [({"rtol": "a"}, "rtol"), ({"atol": -1.0}, "atol"), ({"rtol": True}, "rtol")]
    )
    def test_bad_tolerances_are_refused_when_built_naming_the_argument(
        self, options: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(TypeError, match=rf"MetricLogCheck\({named}=.*{named} is a tolerance"):
            MetricLogCheck(**options)

    def test_the_class_instead_of_an_instance_says_so(self) -> None:
        try:
            trainer = make_trainer(callbacks=[MetricLogCheck])  # type: ignore[list-item]
        except ValueError as err:  # Lightning 2.2 checks its callbacks when the Trainer is built: its own message
            assert "Expected a parent" in str(err)
            return
        with pytest.raises(
            TypeError, match=r"as a class; give it an instance: `Trainer\(callbacks=\[MetricLogCheck\(\)\]\)`"
        ):
            trainer.fit(ComputeInStep(), loader(TRAIN, batch_size=32), loader(VAL, batch_size=32))


class TestMessagesSayWhatTheCodeDoes:
    def test_a_step_that_resets_logs_a_per_batch_value_and_nothing_mixes(self) -> None:
        model = ComputeAndResetInStep()
        _, notes, checker = fit(model)
        (note,) = [note for note in notes if note.startswith("val_f1: logged")]
        assert "per-batch value (the step resets the metric)" in note and "running value" not in note
        (row,) = [row for row in checker.results if row[0] == "val_f1"]
        assert row[2] == pytest.approx(reference(model, VAL, multiclass_f1_score), abs=1e-6)
        (shared,) = [note for note in notes if "updated in train and val" in note]
        assert "nothing mixes today" in shared and "each epoch value mixes" not in shared


@pytest.mark.parametrize("run", ["validate", "test"])
def test_the_summary_is_printed_after_validate_and_test(run: str, caplog: pytest.LogCaptureFixture) -> None:
    model = ComputeInStep()

    def test_step(batch: Any, batch_idx: int) -> None:
        model.validation_step(batch, batch_idx)

    model.test_step = test_step  # type: ignore[method-assign]
    trainer = make_trainer(callbacks=[MetricLogCheck()])
    with caplog.at_level("INFO"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(trainer, run)(model, loader(VAL, batch_size=32), verbose=False)
    assert "MetricLogCheck: the values logged from metrics in steps" in caplog.text
    assert "val_f1" in caplog.text.split("MetricLogCheck: the values logged")[1]
