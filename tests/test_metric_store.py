"""The metric container: per-dataloader clones, state kept out of checkpoints and out of low precision."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.regression import MeanAbsoluteError

from lightning_metrics_base import MetricStore, flatten_result
from lightning_metrics_base.metric_store import compute_collection


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


class TestMetricStore:
    def test_dataloader_clone_is_fresh(self) -> None:
        store = MetricStore({"val": MetricCollection({"mae": MeanAbsoluteError()})})
        first = store.get("val", 0)
        assert first is not None
        first.update(torch.ones(3), torch.zeros(3))
        second = store.get("val", 2)
        assert second is not None and not second["mae"].update_called
        assert len(store.collections("val")) == 3
        assert store.get("test") is None and not store.has("test")

    def test_state_dict_is_empty_and_loading_ignores_metric_keys(self) -> None:
        store = MetricStore({"val": MetricCollection({"mean": MeanMetric()})})
        store.get("val", 0)["mean"].persistent(True)  # type: ignore[index]
        assert dict(store.state_dict()) == {}
        holder = torch.nn.Module()
        holder.store = store
        holder.load_state_dict({"store.stages.val_metrics.0.mean.mean_value": torch.tensor(1.0)}, strict=True)
        holder.load_state_dict({}, strict=True)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_float_states_stay_float32(self, dtype: torch.dtype) -> None:
        store = MetricStore({"val": MetricCollection({"mae": MeanAbsoluteError(), "acc": MulticlassAccuracy(3)})})
        store.to(dtype)
        val = store.get("val")
        assert val is not None
        assert val["mae"].sum_abs_error.dtype == torch.float32
        assert val["mae"]._defaults["sum_abs_error"].dtype == torch.float32
        assert val["acc"].tp.dtype == torch.int64
        val.reset()
        assert val["mae"].sum_abs_error.dtype == torch.float32
        store.to(torch.float64)  # a wider cast is kept
        assert val["mae"].sum_abs_error.dtype == torch.float64


class TestFlattenResult:
    def test_nested_dict_and_labels(self) -> None:
        scalars, kept = flatten_result("val/x", {"a": torch.tensor(1.0), "b": {"c": torch.tensor([1.0, 2.0])}})
        assert set(scalars) == {"val/x/a", "val/x/b/c/0", "val/x/b/c/1"}
        assert set(kept) == {"val/x/a", "val/x/b/c"}

    def test_labels_of_wrong_length_fall_back_to_indices(self) -> None:
        scalars, _ = flatten_result("val/x", torch.tensor([1.0, 2.0]), sep="_", labels=["only"])
        assert set(scalars) == {"val/x_0", "val/x_1"}

    def test_python_numbers_and_bad_types(self) -> None:
        assert float(flatten_result("val/n", 3)[0]["val/n"]) == 3.0
        with pytest.raises(TypeError, match=r"val/s: cannot log a metric result of type str"):
            flatten_result("val/s", "text")
