"""Computing a collection with one gather per compute group, and the torchmetrics private APIs it relies on."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.wrappers import ClasswiseWrapper, MinMaxMetric

from lightning_metrics_base.sync import compute_collection, has_children


def four(**kwargs: object) -> MetricCollection:
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(4),
            "precision": MulticlassPrecision(4),
            "recall": MulticlassRecall(4),
            "f1": MulticlassF1Score(4),
            "auroc": MulticlassAUROC(4, thresholds=None),
        },
        **kwargs,  # type: ignore[arg-type]
    )


def feed(collection: MetricCollection, batches: int = 3) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(batches):
        preds = torch.randn(20, 4, generator=generator).softmax(dim=1)
        collection.update(preds, torch.randint(0, 4, (20,), generator=generator))


@pytest.mark.parametrize(
    "options", [{}, {"compute_groups": False}, {"prefix": "p_"}, {"compute_groups": [["acc", "f1"]]}]
)
def test_compute_collection_equals_collection_compute(options: dict[str, object]) -> None:
    collection = four(**options)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        preds = torch.randn(20, 4, generator=generator).softmax(dim=1)
        collection.update(preds, torch.randint(0, 4, (20,), generator=generator))
    ours = compute_collection(collection)
    reference = collection.compute()
    assert set(ours) == set(reference)
    for name, (value, _) in ours.items():
        assert torch.allclose(value, reference[name])
    # the state is untouched and still shared: one more update moves every member the same way
    collection.update(torch.eye(4), torch.arange(4))
    after = compute_collection(collection)
    assert torch.allclose(
        after[f"{options.get('prefix', '')}acc"][0], collection.compute()[f"{options.get('prefix', '')}acc"]
    )


def test_wrappers_and_their_groups_compute_like_torchmetrics() -> None:
    collection = MetricCollection(
        {
            "per_class": MulticlassAccuracy(4, average=None),
            "classwise": ClasswiseWrapper(MulticlassAccuracy(4, average=None)),
            "minmax": MinMaxMetric(MulticlassAccuracy(4)),
        }
    )
    feed(collection)
    ours = compute_collection(collection)
    reference = collection.compute()
    assert torch.equal(ours["per_class"][0], reference["per_class"])
    for key, value in ours["classwise"][0].items():  # the collection flattens the wrapper's dict result
        assert torch.equal(value, reference[key])
    assert has_children(collection["classwise"]) and not has_children(collection["per_class"])


def test_compute_errors_go_through_the_factory() -> None:
    collection = MetricCollection({"acc": MulticlassAccuracy(4)})
    feed(collection, 1)
    collection["acc"].compute = lambda: 1 / 0  # type: ignore[method-assign]
    with pytest.raises(KeyError, match="acc"):
        compute_collection(collection, lambda name, err: KeyError(name))


class TestPrivateTorchmetricsAPIs:
    """Each private name `sync.py` relies on, behaving as it relies on it."""

    def test_groups_checked_and_state_refs(self) -> None:
        collection = four()
        assert collection._groups_checked is False
        feed(collection, 1)
        assert collection._groups_checked is True
        assert {"acc", "precision", "recall", "f1"} in [set(group) for group in collection.compute_groups.values()]
        metrics = dict(collection.items(keep_base=True, copy_state=False))
        metrics["f1"].tp = metrics["f1"].tp.clone()  # break the sharing, as a gather does
        collection._compute_groups_create_state_ref()
        assert metrics["f1"].tp is metrics["acc"].tp

    def test_to_sync_is_synced_and_defaults(self) -> None:
        metric = MulticlassAccuracy(4)
        assert metric._to_sync is True and MulticlassAccuracy(4, sync_on_compute=False)._to_sync is False
        assert set(metric._defaults) == {"tp", "fp", "tn", "fn"}
        metric.update(torch.eye(4), torch.arange(4))
        metric.sync(should_sync=True, distributed_available=lambda: False)
        assert metric._is_synced is False  # nothing to gather on one process: the module computes plainly
