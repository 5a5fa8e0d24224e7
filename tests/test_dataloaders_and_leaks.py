"""Several dataloaders never share state; nothing leaks between epochs, stages, runs or the sanity check."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from helpers import (
    NUM_CLASSES,
    Classifier,
    RecordingLogger,
    classification_data,
    full_data_accuracy,
    loader,
    make_trainer,
    predict_all,
)
from torch.utils.data import TensorDataset
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from lightning_metrics_base._internals.lightning import takes_suffixed_names


def reference(model: torch.nn.Module, dataset: TensorDataset, limit: int | None = None) -> dict[str, float]:
    preds, target = predict_all(model, dataset)
    preds, target = preds[:limit], target[:limit]
    return {
        "acc": float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES)),
        "f1": float(multiclass_f1_score(preds, target, num_classes=NUM_CLASSES, average="macro")),
    }


class TestSeveralDataloaders:
    def test_each_val_loader_has_its_own_state(self) -> None:
        first, second = classification_data(200, seed=21), classification_data(130, seed=22)
        model = Classifier()
        trainer = make_trainer(max_epochs=2, num_sanity_val_steps=2)
        trainer.fit(model, loader(first, shuffle=True), [loader(first, batch_size=32), loader(second, batch_size=48)])
        metrics = trainer.callback_metrics
        for index, dataset in enumerate((first, second)):
            expected = reference(model, dataset)
            for name in ("acc", "f1"):
                assert float(metrics[f"val/{name}/dataloader_idx_{index}"]) == pytest.approx(expected[name], abs=1e-6)
        assert "val/acc" not in metrics
        val_accuracies = [
            module for name, module in model.named_modules() if ".val_metrics." in name and name.endswith(".acc")
        ]
        assert len(val_accuracies) == 2 and val_accuracies[0] is not val_accuracies[1]

    def test_two_test_runs_with_two_loaders_are_exact_both_times(self) -> None:
        first, second = classification_data(150, seed=23), classification_data(90, seed=24)
        model = Classifier()
        loaders = [loader(first, batch_size=64), loader(second, batch_size=64)]
        runs = [make_trainer().test(model, loaders, verbose=False) for _ in range(2)]
        for results in runs:
            for index, dataset in enumerate((first, second)):
                expected = reference(model, dataset)
                assert results[index][f"test/acc/dataloader_idx_{index}"] == pytest.approx(expected["acc"], abs=1e-6)
                assert results[index][f"test/f1/dataloader_idx_{index}"] == pytest.approx(expected["f1"], abs=1e-6)


class SkipsEverything(Classifier):
    """A user step that returns early: the stage sees batches but its metrics never get an update."""

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        return None


class TestNoLeaks:
    def test_limit_batches_counts_only_the_batches_seen(self) -> None:
        train, val = classification_data(320, seed=25), classification_data(320, seed=26)
        model = Classifier(lr=0.0)
        trainer = make_trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=2, num_sanity_val_steps=1)
        trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=32))
        assert float(trainer.callback_metrics["train/acc"]) == pytest.approx(
            reference(model, train, 96)["acc"], abs=1e-6
        )
        assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(reference(model, val, 64)["acc"], abs=1e-6)

    def test_sanity_check_state_is_discarded(self) -> None:
        train, val = classification_data(64, seed=27), classification_data(200, seed=28)
        model = Classifier(lr=0.0)
        logger = RecordingLogger()
        trainer = make_trainer(max_epochs=1, num_sanity_val_steps=3, logger=logger)
        trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=16))
        assert logger.values("val/acc") == pytest.approx([reference(model, val)["acc"]], abs=1e-6)

    def test_validate_then_test_then_fit_do_not_mix_stages(self) -> None:
        data_a, data_b = classification_data(100, seed=29), classification_data(100, seed=30)
        model = Classifier(lr=0.0)
        (validated,) = make_trainer().validate(model, loader(data_a), verbose=False)
        (tested,) = make_trainer().test(model, loader(data_b), verbose=False)
        assert validated["val/acc"] == pytest.approx(reference(model, data_a)["acc"], abs=1e-6)
        assert tested["test/acc"] == pytest.approx(reference(model, data_b)["acc"], abs=1e-6)

    def test_stage_without_updates_logs_nothing_and_does_not_warn(self) -> None:
        data = classification_data(64, seed=31)
        trainer = make_trainer()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.test(SkipsEverything(), loader(data, batch_size=32), verbose=False)
        assert not any("compute" in str(warning.message) for warning in caught)
        assert not any(name.startswith("test/") for name in trainer.callback_metrics)

    def test_empty_dataloader_logs_nothing(self) -> None:
        empty = TensorDataset(torch.zeros(0, 16), torch.zeros(0, dtype=torch.long))
        trainer = make_trainer()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.test(Classifier(), loader(empty), verbose=False)
        assert not any("compute" in str(warning.message) for warning in caught)
        assert not any(torch.isnan(value).any() for value in trainer.callback_metrics.values())


class TestSeveralDataloadersResults:
    def test_each_dataloader_returns_and_prints_only_its_own_values(self, capsys: pytest.CaptureFixture[str]) -> None:
        first, second = classification_data(96, seed=310), classification_data(64, seed=311)
        model = Classifier(lr=0.0)
        results = make_trainer().test(model, [loader(first, batch_size=32), loader(second, batch_size=32)])
        assert len(results) == 2
        for index, (result, dataset) in enumerate(zip(results, (first, second), strict=True)):
            assert set(result) == {f"test/{name}/dataloader_idx_{index}" for name in ("acc", "f1", "loss")}
            expected = full_data_accuracy(model, dataset)
            assert result[f"test/acc/dataloader_idx_{index}"] == pytest.approx(expected, abs=1e-6)
        printed = capsys.readouterr().out
        row = next(line for line in printed.splitlines() if "test/acc" in line)
        shown = [float(token) for token in row.replace("│", " ").replace("|", " ").split()[1:]]
        assert shown == pytest.approx([full_data_accuracy(model, d) for d in (first, second)], abs=1e-4)

    def test_values_logged_in_validation_dataloaders_stay_apart(self) -> None:
        first, second = classification_data(64, seed=312), classification_data(96, seed=313)
        model = Classifier(lr=0.0, track_best=("acc",))
        trainer = make_trainer()
        results = trainer.validate(model, [loader(first, batch_size=32), loader(second, batch_size=48)])
        assert "val/acc/dataloader_idx_1" not in results[0] and "val/acc/dataloader_idx_0" not in results[1]
        assert results[1]["val/acc/dataloader_idx_1"] == pytest.approx(full_data_accuracy(model, second), abs=1e-6)


class Unsized(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """A dataset without a length: Lightning cannot know which batch is its last."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.dataset = dataset

    def __iter__(self) -> Any:
        return iter(self.dataset)


@pytest.mark.parametrize("unsized", [0, 1])
def test_several_dataloaders_one_without_a_length(unsized: int) -> None:
    datasets = [classification_data(96, seed=320), classification_data(70, seed=321)]
    loaders = [loader(dataset, batch_size=32) for dataset in datasets]
    loaders[unsized] = torch.utils.data.DataLoader(Unsized(datasets[unsized]), batch_size=32)
    model = Classifier(lr=0.0)
    if not takes_suffixed_names():  # Lightning before 2.5.3 refuses the names: said before any batch
        with pytest.raises(ValueError, match=rf"val dataloader {unsized} has no length: .*`limit_val_batches`"):
            make_trainer().validate(model, loaders, verbose=False)
        return
    results = make_trainer().validate(model, loaders, verbose=False)
    for index, dataset in enumerate(datasets):
        expected = reference(model, dataset)
        for name in ("acc", "f1"):
            assert results[index][f"val/{name}/dataloader_idx_{index}"] == pytest.approx(expected[name], abs=1e-6)
    # Lightning copies values logged at the epoch end (the unsized dataloader's) into every result
    assert results[1 - unsized][f"val/acc/dataloader_idx_{unsized}"] == pytest.approx(
        reference(model, datasets[unsized])["acc"], abs=1e-6
    )
