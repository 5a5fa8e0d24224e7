"""Every config form builds independent per-stage collections; every bad input fails early and names its key."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import torch
from helpers import (
    NUM_CLASSES,
    Classifier,
    classification_data,
    default_metrics,
    full_data_accuracy,
    loader,
    make_trainer,
)
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.wrappers import (
    ClasswiseWrapper,
    MetricTracker,
)

from lightning_metrics_base.configuration.config import build_metrics
from lightning_metrics_base.configuration.specs import instantiate_spec

TRACKER = r"metrics\[.*'acc'\]: MetricTracker is not supported here: .* Pass the metric it wraps instead"


class Undirected(MeanSquaredError):
    higher_is_better = None


def metric_ids(built: dict[str, MetricCollection]) -> list[int]:
    return [id(metric) for collection in built.values() for metric in collection.values(copy_state=False)]


class TestConfigForms:
    def test_flat_dict_gives_each_stage_its_own_copy(self) -> None:
        acc = MulticlassAccuracy(num_classes=3)
        built = build_metrics({"acc": acc})
        assert set(built) == {"train", "val", "test"}
        ids = metric_ids(built)
        assert len(set(ids)) == 3 and id(acc) not in ids

    def test_collection_is_cloned_per_stage(self) -> None:
        collection = MetricCollection({"acc": MulticlassAccuracy(num_classes=3), "f1": MulticlassF1Score(3)})
        built = build_metrics(collection, stages=("val", "test"))
        assert set(built) == {"val", "test"}
        assert set(built["val"].keys()) == {"acc", "f1"}
        assert len(set(metric_ids(built))) == 4

    def test_per_stage_dict_with_collections_and_dicts(self) -> None:
        built = build_metrics(
            {"train": MetricCollection({"acc": MulticlassAccuracy(3)}), "val": {"mse": MeanSquaredError()}}
        )
        assert set(built) == {"train", "val"}
        assert isinstance(built["val"]["mse"], MeanSquaredError)

    @pytest.mark.parametrize(
        "spec",
        [
            {"class_path": "torchmetrics.classification.MulticlassAccuracy", "init_args": {"num_classes": 4}},
            {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": 4}},
            {"_target_": "torchmetrics.classification.MulticlassAccuracy", "num_classes": 4},
            {"_target_": "MulticlassAccuracy", "num_classes": 4},
        ],
    )
    def test_spec_forms(self, spec: dict[str, Any]) -> None:
        built = build_metrics({"acc": spec})
        metric = built["val"]["acc"]
        assert isinstance(metric, MulticlassAccuracy) and metric.num_classes == 4
        assert built["train"]["acc"] is not metric

    def test_nested_spec_builds_a_wrapper(self) -> None:
        spec = {
            "class_path": "ClasswiseWrapper",
            "init_args": {
                "metric": {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": 2, "average": None}},
                "labels": ["cat", "dog"],
            },
        }
        metric = instantiate_spec(spec)
        assert isinstance(metric, ClasswiseWrapper) and isinstance(metric.metric, MulticlassAccuracy)

    def test_modules_never_share_metric_objects(self) -> None:
        metrics = {"acc": MulticlassAccuracy(num_classes=NUM_CLASSES)}
        first, second = Classifier(metrics), Classifier(metrics)
        for stage in ("train_metrics", "val_metrics", "test_metrics"):
            assert getattr(first, stage)["acc"] is not getattr(second, stage)["acc"]
        assert first.val_metrics["acc"] is not first.test_metrics["acc"]  # type: ignore[index]
        assert all(module is not metrics["acc"] for module in first.modules())

    def test_metrics_are_registered_submodules(self) -> None:
        model = Classifier()
        assert any(module is model.val_metrics for module in model.modules())
        model.to(torch.float64)
        assert model.val_metrics["acc"].tp.dtype == torch.int64  # type: ignore[index]

    def test_none_and_empty(self) -> None:
        assert build_metrics(None) == {}
        assert build_metrics({}) == {}
        assert build_metrics({"val": None, "test": {"acc": MulticlassAccuracy(3)}}).keys() == {"test"}


class TestBadInput:
    @pytest.mark.parametrize(
        ("metrics", "error", "match"),
        [
            ([MulticlassAccuracy(3)], TypeError, r"`metrics`.*list"),
            ({"acc": 3}, TypeError, r"metrics\['acc'\].*int"),
            ({"acc": MulticlassAccuracy}, TypeError, r"metrics\['acc'\].*class MulticlassAccuracy.*instance"),
            ({"valid": {"acc": MulticlassAccuracy(3)}}, ValueError, r"'valid'.*'train', 'val', 'test'"),
            ({"val": [MulticlassAccuracy(3)]}, TypeError, r"metrics\['val'\].*list"),
            ({"": MulticlassAccuracy(3)}, ValueError, r"non-empty"),
            ({"val.acc": MulticlassAccuracy(3)}, ValueError, r"metrics\['val.acc'\].*'\.'"),
            ({"update": MulticlassAccuracy(3)}, ValueError, r"metrics\['update'\].*clashes"),
            ({"acc": {"class_path": "torchmetrics.NoSuchMetric"}}, ImportError, r"metrics\['acc'\].*NoSuchMetric"),
            ({"acc": {"class_path": "NoSuchMetric"}}, ImportError, r"metrics\['acc'\].*NoSuchMetric"),
            ({"acc": {"class_path": "nosuchpackage.Metric"}}, ImportError, r"metrics\['acc'\]"),
            ({"acc": {"class_path": "torch.nn.Linear"}}, TypeError, r"metrics\['acc'\].*not a torchmetrics Metric"),
            (
                {"acc": {"class_path": "MulticlassAccuracy", "init_args": {"num_clases": 3}}},
                ValueError,
                r"metrics\['acc'\].*MulticlassAccuracy.*did you mean 'num_classes'",
            ),
            (
                {"acc": {"class_path": "MulticlassAccuracy", "init_args": {"num_classes": -1}}},
                ValueError,
                r"metrics\['acc'\].*MulticlassAccuracy",
            ),
            (
                {"acc": {"class_path": "MulticlassAccuracy", "args": {"num_classes": 3}}},
                ValueError,
                r"metrics\['acc'\].*unexpected spec keys \['args'\]",
            ),
            (
                {"acc": {"class_path": "MulticlassAccuracy", "_target_": "MulticlassAccuracy"}},
                ValueError,
                r"metrics\['acc'\].*not both",
            ),
            ({"val": {"acc": {"class_path": 3}}}, TypeError, r"metrics\['val'\]\['acc'\].*non-empty string"),
            ({"acc": MetricTracker(MulticlassAccuracy(3))}, TypeError, TRACKER),
            (
                {"acc": {"class_path": "MetricTracker", "init_args": {"metric": MulticlassAccuracy(3)}}},
                TypeError,
                TRACKER,
            ),
            ({"val": {"acc": {"_target_": "torchmetrics.wrappers.MetricTracker"}}}, TypeError, TRACKER),
        ],
    )
    def test_construction_errors_name_the_key(self, metrics: Any, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            Classifier(metrics)

    def test_unknown_stage_in_stages(self) -> None:
        with pytest.raises(ValueError, match=r"stages: unknown stage 'validation'"):
            Classifier(stages=("train", "validation"))
        with pytest.raises(TypeError, match=r"`stages`"):
            Classifier(stages="val")

    def test_bad_options(self) -> None:
        with pytest.raises(ValueError, match=r"prog_bar: 'auc'"):
            Classifier(prog_bar=("auc",))
        with pytest.raises(ValueError, match=r"track_best: 'auc'"):
            Classifier(track_best=("auc",))
        with pytest.raises(ValueError, match=r"log_sep"):
            Classifier(log_sep="")
        with pytest.raises(TypeError, match=r"loss_fn"):
            Classifier(loss_fn="mse")  # type: ignore[arg-type]

    def test_a_single_string_is_not_a_sequence_of_names(self) -> None:
        with pytest.raises(TypeError, match=r"Expected `prog_bar` to be a sequence of names such as \('acc',\)"):
            Classifier(prog_bar="acc")
        with pytest.raises(TypeError, match=r"Expected `track_best` to be a sequence of names such as \('loss',\)"):
            Classifier(track_best="loss")

    def test_the_best_loss_needs_no_validation_metrics(self) -> None:
        for metrics in ({"train": default_metrics()}, {}):
            model = Classifier(metrics, track_best=("loss",))
            train, val = classification_data(64, seed=40), classification_data(48, seed=41)
            make_trainer(max_epochs=2).fit(model, loader(train, 32), loader(val, 16))
            assert set(model.best_values) == {"val/loss_best"}

    def test_track_best_needs_a_direction(self) -> None:
        with pytest.raises(ValueError, match=r"track_best: metric 'mse' \(Undirected\) does not say whether higher"):
            Classifier({"mse": Undirected()}, track_best=("mse",))

    def test_update_metrics_names_the_stages(self) -> None:
        with pytest.raises(ValueError, match=r"update_metrics: unknown stage 'valid'; the stages are train, val, test"):
            Classifier().update_metrics("valid", torch.zeros(2, NUM_CLASSES), torch.zeros(2, dtype=torch.long))


class TestOutputsConfig:
    def test_output_names(self) -> None:
        from lightning_metrics_base.configuration.config import check_outputs

        with pytest.raises(TypeError, match=r"`outputs` to be a non-empty sequence"):
            check_outputs("cls")
        with pytest.raises(ValueError, match=r"outputs: 'a/b' cannot contain"):
            check_outputs(["a/b"])
        with pytest.raises(ValueError, match=r"names an output twice"):
            check_outputs(["a", "a"])

    def test_metrics_per_output(self) -> None:
        from lightning_metrics_base.configuration.config import build_output_metrics

        with pytest.raises(TypeError, match=r"With `outputs`, expected `metrics` to be a dict keyed by output"):
            build_output_metrics(MetricCollection({"acc": MulticlassAccuracy(3)}), ("cls",))
        with pytest.raises(ValueError, match=r"mixes stages and outputs"):
            build_output_metrics({"val": {"cls": {}}, "cls": {"acc": MulticlassAccuracy(3)}}, ("cls",))
        with pytest.raises(TypeError, match=r"metrics\['val'\]: expected a dict keyed by output"):
            build_output_metrics({"val": MetricCollection({"acc": MulticlassAccuracy(3)})}, ("cls",))


class Name(str, enum.Enum):
    ACC = "acc"
    F1 = "f1"


class Stage(str, enum.Enum):
    VAL = "val"


def test_str_enum_keys_are_taken_as_their_values() -> None:
    metrics = {
        Stage.VAL: {Name.ACC: MulticlassAccuracy(NUM_CLASSES), Name.F1: MulticlassF1Score(NUM_CLASSES)},
    }
    data = classification_data(64, seed=370)
    model = Classifier(metrics, lr=0.0, track_best=(Name.ACC,), prog_bar=(Name.F1,))
    trainer = make_trainer()
    trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
    assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(full_data_accuracy(model, data), abs=1e-6)
    assert {"val/acc", "val/f1", "val/acc_best"} <= set(trainer.callback_metrics)
    assert all(type(name) is str for name in model.val_metrics)  # type: ignore[union-attr]
