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

from lightning_metrics_base.update.sync import compute_collection, has_children


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
