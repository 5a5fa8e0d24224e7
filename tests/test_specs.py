"""Specs to metrics and back."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import Metric
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanSquaredError
from torchmetrics.wrappers import (
    ClasswiseWrapper,
)

from lightning_metrics_base.configuration.specs import (
    config_to_specs,
    hparams_as_specs,
    instantiate_spec,
    metric_to_spec,
)


@pytest.mark.parametrize(
    "metric",
    [
        MulticlassAccuracy(5, average="micro", top_k=2),
        MulticlassF1Score(3, average=None, ignore_index=0),
        BinaryAUROC(thresholds=10),
        MeanSquaredError(squared=False),
        MulticlassAccuracy(3, sync_on_compute=False),
        ClasswiseWrapper(MulticlassAccuracy(3, average=None), labels=["a", "b", "c"], prefix="p_"),
    ],
    ids=lambda metric: type(metric).__name__,
)
def test_metric_to_spec_rebuilds_the_same_metric(metric: Metric) -> None:
    spec = metric_to_spec(metric)
    assert spec is not None
    rebuilt = instantiate_spec(spec)
    assert type(rebuilt) is type(metric) and repr(rebuilt) == repr(metric)
    preds, target = torch.rand(6, 3).softmax(-1), torch.tensor([0, 1, 2, 2, 1, 0])
    if isinstance(metric, MulticlassAccuracy) and metric.num_classes == 3:
        metric.update(preds, target)
        rebuilt.update(preds, target)
        assert torch.equal(metric.compute(), rebuilt.compute())


class Hidden(Metric):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self._kept_as = factor

    def update(self) -> None:
        pass

    def compute(self) -> torch.Tensor:
        return torch.tensor(self._kept_as)


def test_unreadable_arguments_give_none_and_a_warning_message() -> None:
    assert metric_to_spec(Hidden(2.0)) is None
    converted, missed = config_to_specs({"val": {"h": Hidden(2.0), "mse": MeanSquaredError()}})
    assert missed == ["metrics['val']['h']"] and converted["val"]["mse"]["class_path"].endswith("MeanSquaredError")
    _, messages = hparams_as_specs({"metrics": {"h": Hidden(1.0)}, "lr": 0.1})
    assert len(messages) == 1 and "ignore=['metrics']" in messages[0]


def test_hydra_keys_are_not_arguments() -> None:
    metric = instantiate_spec({"_target_": "MulticlassAccuracy", "num_classes": 3, "_convert_": "all"})
    assert isinstance(metric, MulticlassAccuracy)


def test_nested_spec_lists_are_built() -> None:
    from torchmetrics import MetricCollection  # noqa: F401  (a list argument of specs, as in BootStrapper-like wrappers)

    spec = {
        "class_path": "ClasswiseWrapper",
        "init_args": {
            "metric": {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": 2, "average": None}},
            "labels": ["x", "y"],
        },
    }
    assert instantiate_spec(spec).labels == ["x", "y"]


def test_misspelt_bare_class_name_gets_did_you_mean() -> None:
    with pytest.raises(ImportError, match=r"no metric class 'MulticlasF1Score'.*Did you mean 'MulticlassF1Score'"):
        instantiate_spec({"class_path": "MulticlasF1Score", "init_args": {"num_classes": 3}})
