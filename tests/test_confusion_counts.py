"""One count per block for every metric of one confusion matrix: states identical to each metric's own updates."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryCohenKappa,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryJaccardIndex,
    BinaryMatthewsCorrCoef,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
    BinaryStatScores,
    MulticlassAccuracy,
    MulticlassCohenKappa,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassFBetaScore,
    MulticlassJaccardIndex,
    MulticlassMatthewsCorrCoef,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
    MulticlassStatScores,
    MultilabelAccuracy,
    MultilabelConfusionMatrix,
    MultilabelF1Score,
    MultilabelJaccardIndex,
    MultilabelPrecision,
    MultilabelStatScores,
)

from lightning_metrics_base._internals.torchmetrics import ConfusionCounts, counts_from_confusion, state_defaults
from lightning_metrics_base.update.buffering import UpdateBuffer
from lightning_metrics_base.update.compute_groups import group_by_settings

C = 5


def every_kind(ignore_index: int | None) -> dict[str, Metric]:
    options = {"ignore_index": ignore_index}
    return {
        "acc_macro": MulticlassAccuracy(C, **options),
        "acc_micro": MulticlassAccuracy(C, average="micro", **options),
        "acc_weighted": MulticlassAccuracy(C, average="weighted", **options),
        "precision_none": MulticlassPrecision(C, average=None, **options),
        "recall": MulticlassRecall(C, **options),
        "dice": MulticlassF1Score(C, **options),
        "f2": MulticlassFBetaScore(2.0, num_classes=C, **options),
        "specificity_micro": MulticlassSpecificity(C, average="micro", **options),
        "stat_scores": MulticlassStatScores(C, **options),
        "jaccard": MulticlassJaccardIndex(C, **options),
        "kappa": MulticlassCohenKappa(C, **options),
        "mcc": MulticlassMatthewsCorrCoef(C, **options),
        "confmat": MulticlassConfusionMatrix(C, **options),
    }


def batches(ignore_index: int | None, shape: tuple[int, ...], seed: int) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for rows in (4, 4, 3, 4, 1):  # an uneven one too
        logits = torch.randn(rows, C, *shape, generator=generator)
        target = torch.randint(0, C, (rows, *shape), generator=generator)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=generator) < 0.2] = ignore_index
        out.append((logits, target))
    return out


def assert_fed_together_as_alone(
    kinds: Callable[[], dict[str, Metric]], fed: list[tuple[Tensor, Tensor]], buffer_batches: int
) -> None:
    """A collection of ``kinds()`` fed through an `UpdateBuffer`, and each metric of ``kinds()`` by itself:
    the same states (dtypes included) and values; unbuffered, the same update counts too."""
    collection = group_by_settings(MetricCollection(kinds()))
    alone = kinds()
    buffer = UpdateBuffer(batches=buffer_batches)
    for preds, target in fed:
        buffer.add(collection, preds, target)
        for metric in alone.values():
            metric.update(preds, target)
    buffer.flush(collection)
    ours = dict(collection.items(keep_base=True, copy_state=False))
    for name, metric in alone.items():
        for state in state_defaults(metric):
            mine, expected = getattr(ours[name], state), getattr(metric, state)
            assert mine.dtype == expected.dtype and torch.equal(mine, expected), (name, state)
        assert torch.equal(ours[name].compute().nan_to_num(-3.0), metric.compute().nan_to_num(-3.0)), name
        if buffer_batches == 1:  # one update per batch, as fed by itself
            assert ours[name].update_count == metric.update_count == len(fed), name
        else:
            assert 1 <= ours[name].update_count <= metric.update_count, name


@pytest.mark.parametrize("ignore_index", [None, 0, 255, -1])
@pytest.mark.parametrize("buffer_batches", [1, 3])
@pytest.mark.parametrize("shape", [(), (3, 4)])
def test_states_and_results_equal_each_metric_fed_by_itself(
    ignore_index: int | None, buffer_batches: int, shape: tuple[int, ...]
) -> None:
    fed = batches(ignore_index, shape, seed=len(shape) + buffer_batches)
    assert_fed_together_as_alone(lambda: every_kind(ignore_index), fed, buffer_batches)


def test_one_bincount_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchmetrics.utilities.data as data

    calls: list[int] = []
    original = data._bincount

    def counted(x: Tensor, minlength: int | None = None) -> Tensor:
        calls.append(x.numel())
        return original(x, minlength)

    monkeypatch.setattr(data, "_bincount", counted)
    # the stat scores' and confusion matrix's own modules hold their own reference: patched too, so that
    # a count the package failed to share would be seen
    for module in ("stat_scores", "confusion_matrix"):
        functional = __import__(f"torchmetrics.functional.classification.{module}", fromlist=["_bincount"])
        monkeypatch.setattr(functional, "_bincount", counted)
    collection = group_by_settings(MetricCollection(every_kind(None)))
    buffer = UpdateBuffer(batches=4)
    block = batches(None, (3, 4), seed=9)[:4]
    for preds, target in block:
        buffer.add(collection, preds, target)
    buffer.flush(collection)
    # the first batch directly, then three in one block: one count each
    assert calls == [block[0][1].numel(), sum(target.numel() for _, target in block[1:])]


def test_counts_are_lent_only_to_metrics_of_one_confusion_matrix() -> None:
    assert counts_from_confusion(MulticlassAccuracy(3)) and counts_from_confusion(MulticlassJaccardIndex(3))
    assert not counts_from_confusion(MulticlassAccuracy(3, top_k=2))
    assert not counts_from_confusion(MulticlassAccuracy(3, multidim_average="samplewise"))

    class OwnUpdate(MulticlassAccuracy):
        def update(self, preds: Tensor, target: Tensor) -> None:
            super().update(preds, target)

    assert not counts_from_confusion(OwnUpdate(3))
    counts = ConfusionCounts(torch.tensor([0, 1]), torch.tensor([0, 2]))
    assert not counts.serves(OwnUpdate(3)) and counts.serves(MulticlassRecall(3))


def test_the_count_is_not_lent_outside_its_block() -> None:
    from torchmetrics.classification import MulticlassStatScores as Scores

    before = Scores.update.__globals__["_multiclass_stat_scores_update"]
    counts = ConfusionCounts(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]))
    metric = MulticlassAccuracy(3)
    with pytest.raises(RuntimeError, match="inside"), counts.lent_to(metric):
        raise RuntimeError("inside")
    assert Scores.update.__globals__["_multiclass_stat_scores_update"] is before


def binary_kinds(ignore_index: int | None) -> dict[str, Metric]:
    options = {"ignore_index": ignore_index}
    return {
        "acc": BinaryAccuracy(**options),
        "precision": BinaryPrecision(**options),
        "recall_low": BinaryRecall(threshold=0.3, **options),
        "f1": BinaryF1Score(**options),
        "specificity": BinarySpecificity(**options),
        "stat_scores": BinaryStatScores(**options),
        "confmat": BinaryConfusionMatrix(**options),
        "jaccard": BinaryJaccardIndex(**options),
        "kappa": BinaryCohenKappa(**options),
        "mcc": BinaryMatthewsCorrCoef(**options),
    }


def multilabel_kinds(ignore_index: int | None) -> dict[str, Metric]:
    options = {"ignore_index": ignore_index}
    return {
        "acc": MultilabelAccuracy(3, **options),
        "f1_micro": MultilabelF1Score(3, average="micro", **options),
        "precision_none": MultilabelPrecision(3, average=None, threshold=0.7, **options),
        "stat_scores": MultilabelStatScores(3, **options),
        "confmat": MultilabelConfusionMatrix(3, **options),
        "jaccard": MultilabelJaccardIndex(3, **options),
    }


def two_by_two_batches(task: str, ignore_index: int | None, scores: str, seed: int) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    shape = (3,) if task == "binary" else (3, 2)  # binary with a trailing dimension; 3 labels by 2 positions
    out = []
    for rows in (5, 5, 2, 5):
        target = torch.randint(0, 2, (rows, *shape), generator=generator)
        if scores == "logits":
            preds = torch.randn(rows, *shape, generator=generator) * 3
        elif scores == "probabilities":
            preds = torch.rand(rows, *shape, generator=generator)
        else:
            preds = torch.randint(0, 2, (rows, *shape), generator=generator)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=generator) < 0.2] = ignore_index
        out.append((preds, target))
    return out


@pytest.mark.parametrize("task", ["binary", "multilabel"])
@pytest.mark.parametrize("ignore_index", [None, -1])
@pytest.mark.parametrize("scores", ["logits", "probabilities", "labels"])
@pytest.mark.parametrize("buffer_batches", [1, 3])
def test_binary_and_multilabel_states_equal_each_metric_fed_by_itself(
    task: str, ignore_index: int | None, scores: str, buffer_batches: int
) -> None:
    kinds = binary_kinds if task == "binary" else multilabel_kinds
    fed = two_by_two_batches(task, ignore_index, scores, seed=buffer_batches)
    assert_fed_together_as_alone(lambda: kinds(ignore_index), fed, buffer_batches)


def test_binary_metrics_of_one_threshold_share_one_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchmetrics.utilities.data as data

    from lightning_metrics_base.update.buffering import _update_groups

    calls: list[int] = []
    original = data._bincount

    def counted(x: Tensor, minlength: int | None = None) -> Tensor:
        calls.append(int(minlength or 0))
        return original(x, minlength)

    monkeypatch.setattr(data, "_bincount", counted)
    confusion = __import__("torchmetrics.functional.classification.confusion_matrix", fromlist=["_bincount"])
    monkeypatch.setattr(confusion, "_bincount", counted)
    collection = group_by_settings(MetricCollection(binary_kinds(None)))
    preds, target = two_by_two_batches("binary", None, "probabilities", seed=1)[0]
    _update_groups(collection, [[name] for name in collection.keys(keep_base=True)], preds, target)
    # threshold 0.5 (every metric but one) and threshold 0.3: two counts of four cells for ten metrics
    assert calls == [4, 4]
