"""One sort per class for exact curves: metrics that compute the same curves from one state sort once.

Every result is identical (``torch.equal``) to each metric's own compute; the sorts are counted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryPrecisionRecallCurve,
    BinaryROC,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassPrecisionRecallCurve,
    MulticlassRecallAtFixedPrecision,
    MulticlassROC,
    MultilabelAUROC,
    MultilabelAveragePrecision,
)

from lightning_metrics_base._internals.torchmetrics import shared_curves
from lightning_metrics_base.update.compute_groups import group_by_settings
from lightning_metrics_base.update.sync import compute_collection

CURVES = importlib.import_module("torchmetrics.functional.classification.precision_recall_curve")
ROC = importlib.import_module("torchmetrics.functional.classification.roc")

Case = tuple[Callable[[], dict[str, Metric]], Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]], int]
CASES: dict[str, Case] = {
    "multiclass, every average": (
        lambda: {
            "auroc": MulticlassAUROC(5),
            "auroc_weighted": MulticlassAUROC(5, average="weighted"),
            "ap": MulticlassAveragePrecision(5),
            "ap_none": MulticlassAveragePrecision(5, average=None),
            "roc": MulticlassROC(5),
            "pr": MulticlassPrecisionRecallCurve(5),
            "recall_at": MulticlassRecallAtFixedPrecision(5, min_precision=0.3),
        },
        lambda g: (torch.randn(40, 5, generator=g), torch.randint(0, 5, (40,), generator=g)),
        5,
    ),
    "multiclass, ties and an absent class": (
        lambda: {"auroc": MulticlassAUROC(4), "ap": MulticlassAveragePrecision(4)},
        lambda g: (torch.randint(0, 3, (30, 4), generator=g).float(), torch.randint(0, 3, (30,), generator=g)),
        4,
    ),
    "binary": (
        lambda: {
            "auroc": BinaryAUROC(),
            "ap": BinaryAveragePrecision(),
            "roc": BinaryROC(),
            "pr": BinaryPrecisionRecallCurve(),
        },
        lambda g: (torch.rand(50, generator=g), torch.randint(0, 2, (50,), generator=g)),
        1,
    ),
    "multilabel": (
        lambda: {"auroc": MultilabelAUROC(3), "ap": MultilabelAveragePrecision(3, average="micro")},
        lambda g: (torch.rand(30, 3, generator=g), torch.randint(0, 2, (30, 3), generator=g)),
        4,  # three labels, then one micro curve over every (sample, label) pair
    ),
}


def same(result: Any, expected: Any) -> bool:
    if isinstance(expected, torch.Tensor):
        alike = isinstance(result, torch.Tensor) and result.dtype == expected.dtype and result.shape == expected.shape
        return alike and torch.equal(result.nan_to_num(nan=-7.0), expected.nan_to_num(nan=-7.0))  # NaN where NaN
    if isinstance(expected, (tuple, list)):
        return len(result) == len(expected) and all(same(a, b) for a, b in zip(result, expected, strict=True))
    return bool(result == expected)


@pytest.mark.parametrize("name", list(CASES))
def test_results_are_each_metric_s_own_and_each_curve_is_sorted_once(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, batch, distinct_curves = CASES[name]
    generator = torch.Generator().manual_seed(0)
    batches = [batch(generator) for _ in range(3)]
    ours, theirs = group_by_settings(MetricCollection(make())), make()
    for preds, target in batches:
        ours.update(preds, target)
        for metric in theirs.values():
            metric.update(preds, target)
    expected = {key: metric.compute() for key, metric in theirs.items()}

    calls: list[int] = []
    original = CURVES._binary_clf_curve

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(CURVES, "_binary_clf_curve", counted)
    monkeypatch.setattr(ROC, "_binary_clf_curve", counted)
    computed = compute_collection(ours)
    for key, value in expected.items():
        assert same(computed[key][0], value), key
    assert len(calls) == distinct_curves
    assert CURVES._binary_clf_curve is counted and ROC._binary_clf_curve is counted  # put back as found


def test_inputs_that_differ_are_not_shared() -> None:
    generator = torch.Generator().manual_seed(1)
    first, other = MulticlassAUROC(3), MulticlassAveragePrecision(3)
    first.update(torch.randn(20, 3, generator=generator), torch.arange(20) % 3)
    other.update(torch.randn(20, 3, generator=generator), torch.arange(20) % 3)
    with shared_curves():
        values = first.compute(), other.compute()
    assert torch.equal(values[0], first.compute()) and torch.equal(values[1], other.compute())


def test_the_bound_on_kept_curves_only_costs_sorts() -> None:
    generator = torch.Generator().manual_seed(2)
    auroc, ap = MulticlassAUROC(4), MulticlassAveragePrecision(4)
    preds, target = torch.randn(25, 4, generator=generator), torch.randint(0, 4, (25,), generator=generator)
    auroc.update(preds, target)
    ap.update(preds, target)
    with shared_curves(max_bytes=0):
        values = auroc.compute(), ap.compute()
    assert torch.equal(values[0], auroc.compute()) and torch.equal(values[1], ap.compute())


def test_an_error_inside_puts_torchmetrics_back() -> None:
    original = CURVES._binary_clf_curve
    with pytest.raises(RuntimeError, match="inside"), shared_curves():
        assert CURVES._binary_clf_curve is not original
        raise RuntimeError("inside")
    assert CURVES._binary_clf_curve is original and ROC._binary_clf_curve is original


def test_a_curve_changed_in_place_by_its_reader_is_computed_again() -> None:
    generator = torch.Generator().manual_seed(3)
    preds, target = torch.rand(30, generator=generator), torch.randint(0, 2, (30,), generator=generator)
    with shared_curves():
        first = CURVES._binary_clf_curve(preds, target)
        expected = tuple(tensor.clone() for tensor in first)
        first[1].mul_(0)  # a reader that changes the curve it got
        again = CURVES._binary_clf_curve(preds, target)
    assert all(torch.equal(a, b) for a, b in zip(again, expected, strict=True))


def test_curves_made_in_inference_mode_are_handed_on_as_copies() -> None:
    generator = torch.Generator().manual_seed(4)
    preds, target = torch.rand(30, generator=generator), torch.randint(0, 2, (30,), generator=generator)
    with torch.inference_mode(), shared_curves():
        first = CURVES._binary_clf_curve(preds, target)
        expected = tuple(tensor.clone() for tensor in first)
        first[1].mul_(0)  # no version to tell: the kept curve is a copy
        again = CURVES._binary_clf_curve(preds, target)
    assert all(torch.equal(a, b) for a, b in zip(again, expected, strict=True))
