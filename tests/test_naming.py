"""Names: every logged name from one place, one source per name, results flattened to scalars."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAccuracy
from torchmetrics.wrappers import ClasswiseWrapper, MultitaskWrapper

from lightning_metrics_base.report.naming import (
    Destination,
    Namer,
    NameRegistry,
    name_epoch_values,
    name_step_values,
    reserve_names,
)
from lightning_metrics_base.report.results import expected_names, flatten_result


class TestNamer:
    def test_every_name_follows_the_separator(self) -> None:
        namer = Namer("_")
        assert namer.epoch("val", "acc") == "val_acc"
        assert namer.loss("test") == "test_loss" and namer.loss("val", "kl") == "val_loss_kl"
        assert namer.best("loss") == "val_loss_best" and namer.step("train_acc") == "train_acc_step"
        assert namer.with_dataloader("val_acc", 2, several=True) == "val_acc/dataloader_idx_2"


class TestRegistry:
    def test_same_source_may_claim_again(self) -> None:
        names = NameRegistry()
        names.claim_all(["val/a", "val/a"], "metric 'a'")
        with pytest.raises(ValueError, match=r"'val/a' would be produced by both metric 'a' and metric 'b'"):
            names.claim("val/a", "metric 'b'")

    def test_reserved_at_construction(self) -> None:
        collections = {"train": MetricCollection({"acc": MulticlassAccuracy(3), "acc_best": MulticlassAccuracy(3)})}
        reserve_names(Namer("/"), collections, (), log_train_step=True)  # acc_best is only a clash with track_best
        with pytest.raises(ValueError, match=r"'val/acc_best' .* track_best of 'acc' and metric 'acc_best'"):
            reserve_names(Namer("/"), {"val": collections["train"]}, ("acc",), log_train_step=False)

    def test_expected_names(self) -> None:
        assert expected_names("val/ml", MultilabelAccuracy(2, average=None), "_") == ["val/ml_0", "val/ml_1"]
        wrapper = MultitaskWrapper({"a": MulticlassAccuracy(3), "b": MulticlassAccuracy(3, average=None)})
        assert expected_names("val/mt", wrapper, "/") == ["val/mt/a", "val/mt/b/0", "val/mt/b/1", "val/mt/b/2"]
        assert expected_names("val/acc", MulticlassAccuracy(3), "/") == ["val/acc"]


class TestClasswiseNames:
    @pytest.mark.parametrize(
        "wrapper",
        [
            ClasswiseWrapper(MulticlassAccuracy(3, average=None)),
            ClasswiseWrapper(MulticlassAccuracy(3, average=None), labels=["cat", "dog", "eel"]),
            ClasswiseWrapper(MulticlassAccuracy(3, average=None), prefix="acc-", postfix="!"),
            ClasswiseWrapper(MulticlassAccuracy(3, average=None), labels=["a", "b", "c"], postfix="_x"),
        ],
    )
    def test_known_at_construction_as_computed(self, wrapper: ClasswiseWrapper) -> None:
        expected = expected_names("val/cw", wrapper, "_")
        assert len(expected) == 3
        wrapper.update(torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
        scalars, _ = flatten_result("val/cw", wrapper.compute(), "_")
        assert expected == list(scalars)

    def test_unknown_count_is_checked_at_compute_time(self) -> None:
        assert expected_names("val/cw", ClasswiseWrapper(MulticlassAccuracy(3)), "/") == ["val/cw"]


class TestNamedValues:
    def test_losses_metrics_and_figures(self) -> None:
        metrics = {
            "acc": (torch.tensor(0.5), MulticlassAccuracy(3)),
            "confmat": (torch.eye(3), MulticlassAccuracy(3)),
        }
        named = name_epoch_values(Namer("/"), NameRegistry(), Destination("val"), {"loss": torch.tensor(1.0)}, metrics)
        assert [(name, source) for name, _, source in named.scalars] == [("val/loss", "loss"), ("val/acc", "acc")]
        assert set(named.kept) == {"val/loss", "val/acc", "val/confmat"}
        assert [tag for tag, _, _ in named.figures] == ["val/confmat"]

    def test_dataloader_suffix_on_what_is_kept_and_drawn(self) -> None:
        metrics = {"confmat": (torch.eye(2, requires_grad=True) * 1, MulticlassAccuracy(3))}
        named = name_epoch_values(
            Namer("/"), NameRegistry(), Destination("val", 1, several=True), {"loss": torch.tensor(0.5)}, metrics
        )
        assert [name for name, _, _ in named.scalars] == ["val/loss"]  # Lightning suffixes what is logged in a batch
        assert set(named.kept) == {"val/loss/dataloader_idx_1", "val/confmat/dataloader_idx_1"}
        assert not named.kept["val/confmat/dataloader_idx_1"].requires_grad
        assert [tag for tag, _, _ in named.figures] == ["val/confmat/dataloader_idx_1"]

    def test_a_dict_key_equal_to_another_metric_is_refused(self) -> None:
        registry = NameRegistry()
        metrics = {"top/max": (torch.tensor(1.0), MulticlassAccuracy(3))}
        name_epoch_values(Namer("/"), registry, Destination("val"), {}, metrics)
        clash = {"top": ({"max": torch.tensor(2.0)}, MulticlassAccuracy(3))}
        with pytest.raises(ValueError, match=r"'val/top/max' .* metric 'top/max' and metric 'top'"):
            name_epoch_values(Namer("/"), registry, Destination("val"), {}, clash)

    def test_step_values(self) -> None:
        values = {"pc": (torch.tensor([0.1, 0.2]), MulticlassAccuracy(2, average=None))}
        named = name_step_values(Namer("/"), NameRegistry(), values)
        assert [name for name, _, _ in named] == ["train/pc/0_step", "train/pc/1_step"]


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


def test_a_step_name_claimed_by_another_source_is_refused() -> None:
    registry = NameRegistry()
    registry.claim("train/acc_step", "metric 'acc_step'")
    with pytest.raises(ValueError, match=r"'train/acc_step' .* metric 'acc_step' and metric 'acc'"):
        name_step_values(Namer("/"), registry, {"acc": (torch.tensor(0.5), MulticlassAccuracy(3))})
