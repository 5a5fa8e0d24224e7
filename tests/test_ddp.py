"""Two CPU processes (gloo): every epoch value equals the full-data value over both ranks' samples."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import NUM_CLASSES, TEACHER, Classifier, classification_data, loader, make_trainer, predict_all
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassStatScores
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_stat_scores
from torchmetrics.wrappers import ClasswiseWrapper, MinMaxMetric

pytestmark = pytest.mark.slow  # `-m "not slow"` leaves these out


def split_difficulty(n: int, seed: int) -> TensorDataset:
    """Even indices (rank 0 under an unshuffled DistributedSampler) keep their labels; odd ones get random labels."""
    x, y = classification_data(n, seed).tensors
    y = y.clone()
    y[1::2] = torch.randint(0, NUM_CLASSES, (n // 2,), generator=torch.Generator().manual_seed(seed))
    return TensorDataset(x, y)


def accuracy(model: torch.nn.Module, dataset: TensorDataset, index: Any = slice(None)) -> float:
    preds, target = predict_all(model, dataset)
    return float(multiclass_accuracy(preds[index], target[index], num_classes=NUM_CLASSES))


def f1(model: torch.nn.Module, dataset: TensorDataset) -> float:
    preds, target = predict_all(model, dataset)
    return float(multiclass_f1_score(preds, target, num_classes=NUM_CLASSES, average="macro"))


@pytest.fixture(scope="module")
def trained() -> tuple[Classifier, TensorDataset, TensorDataset, dict[str, float], dict[str, float]]:
    torch.manual_seed(0)
    train, val = split_difficulty(512, seed=11), split_difficulty(400, seed=12)
    model = Classifier(lr=0.0, track_best=("acc", "loss"))  # frozen: train values are comparable with one reference
    with torch.no_grad():  # start from the teacher, so the easy and the noisy halves score differently
        model.net.weight.copy_(TEACHER.T)
        model.net.bias.zero_()
    trainer = make_trainer(devices=2, strategy="ddp_spawn", max_epochs=2)
    trainer.fit(model, loader(train, batch_size=32, shuffle=True), loader(val, batch_size=32))
    fitted = {name: float(value) for name, value in trainer.callback_metrics.items()}
    tester = make_trainer(devices=2, strategy="ddp_spawn")
    tester.test(model, loader(val, batch_size=48), verbose=False)
    tested = {name: float(value) for name, value in tester.callback_metrics.items()}
    return model, train, val, fitted, tested


class TestDDP:
    def test_data_makes_rank_values_differ(self, trained: Any) -> None:
        model, train, val, *_ = trained
        for dataset in (train, val):
            assert abs(accuracy(model, dataset, slice(0, None, 2)) - accuracy(model, dataset)) > 0.05

    def test_train_val_and_test_values_are_global(self, trained: Any) -> None:
        model, train, val, fitted, tested = trained
        assert fitted["train/acc"] == pytest.approx(accuracy(model, train), abs=1e-6)
        assert fitted["train/f1"] == pytest.approx(f1(model, train), abs=1e-6)
        assert fitted["val/acc"] == pytest.approx(accuracy(model, val), abs=1e-6)
        assert fitted["val/f1"] == pytest.approx(f1(model, val), abs=1e-6)
        assert tested["test/acc"] == pytest.approx(accuracy(model, val), abs=1e-6)
        assert tested["test/f1"] == pytest.approx(f1(model, val), abs=1e-6)

    def test_loss_is_the_global_sample_weighted_mean(self, trained: Any) -> None:
        model, _, val, fitted, tested = trained
        preds, target = predict_all(model, val)
        expected = float(torch.nn.functional.cross_entropy(preds, target))
        assert tested["test/loss"] == pytest.approx(expected, abs=1e-5)
        assert fitted["val/loss"] == pytest.approx(expected, abs=1e-5)

    def test_best_values_are_global(self, trained: Any) -> None:
        model, _, val, fitted, _ = trained
        preds, target = predict_all(model, val)
        assert fitted["val/loss_best"] == pytest.approx(
            float(torch.nn.functional.cross_entropy(preds, target)), abs=1e-5
        )
        assert fitted["val/acc_best"] == pytest.approx(accuracy(model, val), abs=1e-6)


def test_uneven_eval_data_warns_once_naming_sizes() -> None:
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    data = classification_data(301, seed=13)
    sampler = DistributedSampler(data, num_replicas=2, rank=0, shuffle=False)
    padded = DataLoader(data, batch_size=50, sampler=sampler)
    trainer = make_trainer(use_distributed_sampler=False)
    model = Classifier()
    with pytest.warns(UserWarning, match=r"test dataloader 0: its 301 samples .* 2 processes") as record:
        trainer.test(model, padded, verbose=False)
        trainer.test(model, padded, verbose=False)
    assert sum("301 samples" in str(warning.message) for warning in record) == 1


def test_uneven_eval_data_warns_under_real_ddp(capfd: pytest.CaptureFixture[str]) -> None:
    data = classification_data(301, seed=14)
    trainer = make_trainer(devices=2, strategy="ddp_spawn")
    trainer.test(Classifier(), loader(data, batch_size=50), verbose=False)
    err = capfd.readouterr().err
    # rank 0 warns once, naming the dataset size and the number of processes
    assert err.count("test dataloader 0: its 301 samples do not split evenly across 2 processes") == 1


def wrapper_metrics() -> dict[str, Any]:
    return {
        "val": {
            "stats": ClasswiseWrapper(MulticlassStatScores(NUM_CLASSES, average=None)),
            "micro": MulticlassStatScores(NUM_CLASSES, average="micro"),
            "minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES)),
            # a wrapper beside the metric it wraps: torchmetrics may put both in one compute group
            "per_class": MulticlassAccuracy(NUM_CLASSES, average=None),
            "classwise": ClasswiseWrapper(MulticlassAccuracy(NUM_CLASSES, average=None), labels=list("abcde")),
        }
    }


def test_wrappers_are_synced_exactly_once() -> None:
    val = split_difficulty(400, seed=15)
    model = Classifier(wrapper_metrics(), lr=0.0)
    trainer = make_trainer(devices=2, strategy="ddp_spawn")
    trainer.validate(model, loader(val, batch_size=32), verbose=False)
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    preds, target = predict_all(model, val)
    stats = multiclass_stat_scores(preds, target, num_classes=NUM_CLASSES, average=None)
    micro = multiclass_stat_scores(preds, target, num_classes=NUM_CLASSES, average="micro")
    per_class = multiclass_accuracy(preds, target, num_classes=NUM_CLASSES, average=None)
    for cls in range(NUM_CLASSES):
        for index in range(5):  # tp, fp, tn, fn, support: counts, which a double sync would double
            assert logged[f"val/stats/multiclassstatscores_{cls}/{index}"] == float(stats[cls, index])
        assert logged[f"val/per_class/{cls}"] == pytest.approx(float(per_class[cls]), abs=1e-6)
        assert logged[f"val/classwise/multiclassaccuracy_{'abcde'[cls]}"] == pytest.approx(
            float(per_class[cls]), abs=1e-6
        )
    assert [logged[f"val/micro/{index}"] for index in range(5)] == micro.tolist()
    assert int(micro[4]) == len(val)
    assert logged["val/minmax/raw"] == pytest.approx(accuracy(model, val), abs=1e-6)


def test_multi_output_values_are_global() -> None:
    from helpers import TwoHeads, two_head_reference

    val = split_difficulty(400, seed=16)
    model = TwoHeads(lr=0.0)
    trainer = make_trainer(devices=2, strategy="ddp_spawn")
    trainer.validate(model, loader(val, batch_size=32), verbose=False)
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    expected = two_head_reference(model, val)
    for name in ("cls/acc", "cls/f1", "big/acc", "big/auroc", "loss", "loss/cls", "loss/big"):
        assert logged[f"val/{name}"] == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name


def test_buffered_updates_are_exact_over_both_processes_and_two_dataloaders() -> None:
    from helpers import classification_metrics
    from torchmetrics.functional.classification import multiclass_auroc

    first, second = split_difficulty(400, seed=17), split_difficulty(200, seed=18)
    metrics = {**classification_metrics(), "micro": MulticlassStatScores(NUM_CLASSES, average="micro")}
    model = Classifier({"val": metrics}, lr=0.0)
    trainer = make_trainer(devices=2, strategy="ddp_spawn")
    # per process: 200 samples in batches of 24 (the last one of 8), and 100 in batches of 7
    trainer.validate(model, [loader(first, batch_size=24), loader(second, batch_size=7)], verbose=False)
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    for index, dataset in enumerate((first, second)):
        preds, target = predict_all(model, dataset)
        suffix = f"/dataloader_idx_{index}"
        assert logged[f"val/acc{suffix}"] == pytest.approx(accuracy(model, dataset), abs=1e-6)
        auroc = multiclass_auroc(preds, target, num_classes=NUM_CLASSES, thresholds=None)
        assert logged[f"val/auroc{suffix}"] == pytest.approx(float(auroc), abs=1e-6)
        micro = multiclass_stat_scores(preds, target, num_classes=NUM_CLASSES, average="micro")
        assert [logged[f"val/micro/{count}{suffix}"] for count in range(5)] == micro.tolist()  # integer counts
