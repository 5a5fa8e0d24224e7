"""The seams a user touches: wrappers, several dataloaders, reserved names, NaN, targets, hooks, config keys."""

from __future__ import annotations

import enum
import math
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
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
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score
from torchmetrics.functional import mean_squared_error
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.regression import MeanSquaredError
from torchmetrics.wrappers import (
    BootStrapper,
    ClasswiseWrapper,
    MinMaxMetric,
    MultioutputWrapper,
    MultitaskWrapper,
    Running,
)

from lightning_metrics_base import MetricAwareModule
from lightning_metrics_base.specs import instantiate_spec
from lightning_metrics_base.sync_advice import advice_cache, sync_advice


class TaskDicts(Classifier):
    """Feeds the metrics dicts of tasks, as torchmetrics' MultitaskWrapper expects."""

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Any, Any]:
        return {"cls": preds}, {"cls": target}


class OneHot(Classifier):
    """Feeds the metrics class probabilities and one-hot targets: one regression output per class."""

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return preds.softmax(dim=1), F.one_hot(target, NUM_CLASSES).float()


class TestWrappersAreLogged:
    """Wrappers do not count their own updates; a stage holding only wrappers still logs them."""

    def fit(self, model: Classifier, **kwargs: Any) -> tuple[Any, TensorDataset]:
        val = classification_data(150, seed=301)
        trainer = make_trainer(**kwargs)
        trainer.fit(model, loader(classification_data(96, seed=300), batch_size=32), loader(val, batch_size=32))
        return trainer.callback_metrics, val

    def test_min_max_running_bootstrapper(self) -> None:
        model = Classifier(
            {
                "val": {
                    "minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES)),
                    "running": Running(MulticlassAccuracy(NUM_CLASSES), window=2),
                    "boot": BootStrapper(MulticlassAccuracy(NUM_CLASSES), num_bootstraps=4),
                }
            },
            lr=0.0,
        )
        logged, val = self.fit(model)
        preds, target = predict_all(model, val)
        full = full_data_accuracy(model, val)
        assert float(logged["val/minmax/raw"]) == pytest.approx(full, abs=1e-6)
        # the running window is the last two batches of 32, 32, 32, 32, 22: samples 96 on
        assert float(logged["val/running"]) == pytest.approx(
            float(multiclass_accuracy(preds[96:], target[96:], num_classes=NUM_CLASSES)), abs=1e-6
        )
        # the bootstrap mean resamples the whole epoch: close to the accuracy over it, never a batch's
        assert float(logged["val/boot/mean"]) == pytest.approx(full, abs=0.1)

    def test_multitask_wrapper(self) -> None:
        model = TaskDicts({"val": {"mt": MultitaskWrapper({"cls": MulticlassAccuracy(NUM_CLASSES)})}}, lr=0.0)
        logged, val = self.fit(model)
        assert float(logged["val/mt/cls"]) == pytest.approx(full_data_accuracy(model, val), abs=1e-6)

    def test_multioutput_wrapper(self) -> None:
        model = OneHot({"val": {"mo": MultioutputWrapper(MeanSquaredError(), num_outputs=NUM_CLASSES)}}, lr=0.0)
        logged, val = self.fit(model)
        preds, target = predict_all(model, val)
        probs, onehot = preds.softmax(dim=1), F.one_hot(target, NUM_CLASSES).float()
        for index in range(NUM_CLASSES):
            expected = float(mean_squared_error(probs[:, index], onehot[:, index]))
            assert float(logged[f"val/mo/{index}"]) == pytest.approx(expected, rel=1e-5)

    def test_min_max_keeps_its_state_with_per_step_values(self) -> None:
        model = Classifier({"train": {"minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES))}}, lr=0.0)
        model = Classifier(
            {"train": {"minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES))}}, lr=0.0, log_train_step=True
        )
        train = classification_data(96, seed=302)
        trainer = make_trainer(log_every_n_steps=1)
        trainer.fit(model, loader(train, batch_size=32))
        assert float(trainer.callback_metrics["train/minmax/raw"]) == pytest.approx(
            full_data_accuracy(model, train), abs=1e-6
        )
        preds, target = predict_all(model, train)
        last = float(multiclass_accuracy(preds[64:], target[64:], num_classes=NUM_CLASSES))
        assert float(trainer.callback_metrics["train/minmax/raw_step"]) == pytest.approx(last, abs=1e-6)


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


class TestReservedNames:
    @pytest.mark.parametrize(
        ("metrics", "options", "match"),
        [
            ({"loss": MulticlassAccuracy(NUM_CLASSES)}, {}, r"'train/loss' .* both the loss and metric 'loss'"),
            (
                {"acc": MulticlassAccuracy(NUM_CLASSES), "acc_best": MulticlassAccuracy(NUM_CLASSES)},
                {"track_best": ("acc",)},
                r"'val/acc_best' .* both track_best of 'acc' and metric 'acc_best'",
            ),
            (
                {"acc": MulticlassAccuracy(NUM_CLASSES), "acc_step": MulticlassAccuracy(NUM_CLASSES)},
                {"log_train_step": True},
                r"'train/acc_step' .* both metric 'acc' and metric 'acc_step'",
            ),
            (
                {"pc": MulticlassAccuracy(NUM_CLASSES, average=None), "pc/1": MulticlassAccuracy(NUM_CLASSES)},
                {},
                r"'train/pc/1' .* both metric 'pc' and metric 'pc/1'",
            ),
            (
                {
                    "cw": ClasswiseWrapper(MulticlassAccuracy(3, average=None), labels=["a", "b", "c"], prefix="x_"),
                    "cw_x_b": MulticlassAccuracy(NUM_CLASSES),
                },
                {"log_sep": "_"},
                r"'train_cw_x_b' .* both metric 'cw' and metric 'cw_x_b'",
            ),
        ],
    )
    def test_refused_at_construction(self, metrics: dict[str, Any], options: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            Classifier(metrics, **options)

    def test_dict_key_clash_refused_at_first_epoch_end_before_logging(self) -> None:
        from helpers import MeanAndMax

        logger = RecordingLogger()
        model = Classifier({"val": {"top": MeanAndMax(), "top/max": MulticlassAccuracy(NUM_CLASSES)}})
        data = loader(classification_data(64, seed=320), batch_size=32)
        with pytest.raises(ValueError, match=r"'val/top/max' .* both metric 'top/max' and metric 'top'"):
            make_trainer(logger=logger).validate(model, data)
        assert not any(name.startswith("val/") for name in logger.names())


class NaNFirst(MulticlassAccuracy):
    """Accuracy whose first epoch value is NaN."""

    def __init__(self) -> None:
        super().__init__(num_classes=NUM_CLASSES)
        self.epochs_computed = 0

    def compute(self) -> Tensor:
        self.epochs_computed += 1
        return torch.tensor(math.nan) if self.epochs_computed == 1 else super().compute()


def test_nan_never_becomes_nor_blocks_the_best() -> None:
    logger = RecordingLogger()
    model = Classifier({"val": {"x": NaNFirst()}}, lr=0.1, track_best=("x",))
    train, val = classification_data(128, seed=330), classification_data(96, seed=331)
    make_trainer(max_epochs=4, logger=logger).fit(model, loader(train, batch_size=16), loader(val, batch_size=32))
    values = logger.values("val/x")
    assert math.isnan(values[0]) and not any(math.isnan(value) for value in values[1:])
    assert logger.values("val/x_best") == pytest.approx([max(values[1 : i + 1]) for i in range(1, 4)], abs=1e-6)


class DictTarget(Classifier):
    """The target is a dict; its weight in the epoch loss is the number of samples, not of keys."""

    def unpack_batch(self, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        return x, {"label": y, "weight": torch.ones_like(y, dtype=torch.float)}

    def compute_loss(self, preds: Tensor, target: dict[str, Tensor]) -> Tensor:
        return F.cross_entropy(preds, target["label"])

    def metric_inputs(self, preds: Tensor, target: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return preds, target["label"]


def test_epoch_loss_weights_dict_targets_by_samples() -> None:
    val = classification_data(100, seed=340)  # batches of 32, 32, 32 and 4
    model = DictTarget(lr=0.0)
    logged = make_trainer().validate(model, loader(val, batch_size=32))[0]
    preds, target = predict_all(model, val)
    assert logged["val/loss"] == pytest.approx(float(F.cross_entropy(preds, target)), rel=1e-5)
    assert model.count_samples({"label": torch.zeros(7), "weight": torch.zeros(7)}) == 7
    assert model.count_samples([{"boxes": 1}, {"boxes": 2}]) == 2
    with pytest.raises(TypeError, match=r"count_samples.*override `count_samples"):
        model.count_samples("seven")


class LogsInItsOwnHook(Classifier):
    """The patterns users write in their epoch-end hook."""

    def __init__(self) -> None:
        super().__init__(lr=0.0)
        self.read_in_hook: list[float] = []

    def on_validation_epoch_end(self) -> None:
        assert self.val_metrics is not None
        self.read_in_hook.append(float(self.epoch_metrics["val/acc"]))
        self.log("mine/acc_object", self.val_metrics["acc"])
        self.log("mine/acc_computed", self.val_metrics["acc"].compute())
        self.log_dict(self.val_metrics)


def test_user_epoch_hook_logs_true_values_even_in_the_sanity_check() -> None:
    data = classification_data(100, seed=350)
    model = LogsInItsOwnHook()
    trainer = make_trainer(num_sanity_val_steps=2)  # Lightning's default sanity check
    trainer.fit(model, loader(data, batch_size=32), loader(data, batch_size=32))
    expected = full_data_accuracy(model, data)
    for name in ("val/acc", "mine/acc_object", "mine/acc_computed", "acc"):
        assert float(trainer.callback_metrics[name]) == pytest.approx(expected, abs=1e-6), name
    sanity = full_data_accuracy(model, TensorDataset(*data[:64]))
    assert model.read_in_hook == pytest.approx([sanity, expected], abs=1e-6)


class OwnStepWithGraph(Classifier):
    """Feeds `update_metrics` outputs that carry an autograd graph."""

    def __init__(self) -> None:
        super().__init__({"train": {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=None)}})
        self.graph_held: list[bool] = []
        self.samples_held = 0

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.update_metrics("train", logits, y)
        return F.cross_entropy(logits, y)

    def on_train_epoch_end(self) -> None:
        assert self.train_metrics is not None
        states = self.train_metrics["auroc"].preds
        self.graph_held = [state.requires_grad for state in states]
        self.samples_held = sum(len(state) for state in states)


def test_update_metrics_never_keeps_autograd_graphs() -> None:
    model = OwnStepWithGraph()
    make_trainer().fit(model, loader(classification_data(96, seed=360), batch_size=32))
    assert model.samples_held == 96 and model.graph_held and not any(model.graph_held)


def test_misspelt_bare_class_name_gets_did_you_mean() -> None:
    with pytest.raises(ImportError, match=r"no metric class 'MulticlasF1Score'.*Did you mean 'MulticlassF1Score'"):
        instantiate_spec({"class_path": "MulticlasF1Score", "init_args": {"num_classes": 3}})


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


class SeesProgressBar(Callback):
    def __init__(self) -> None:
        self.first_step: dict[str, Any] = {}

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.first_step = dict(trainer.progress_bar_metrics)


def test_train_loss_is_logged_every_step_and_shown_from_the_first() -> None:
    logger, bar = RecordingLogger(), SeesProgressBar()
    train = classification_data(160, seed=380)
    model = Classifier(lr=0.0)
    trainer = make_trainer(logger=logger, log_every_n_steps=1, callbacks=[bar])
    trainer.fit(model, loader(train, batch_size=32))
    preds, target = predict_all(model, train)
    per_step = [float(F.cross_entropy(preds[i : i + 32], target[i : i + 32])) for i in range(0, 160, 32)]
    assert logger.values("train/loss_step") == pytest.approx(per_step, rel=1e-5)
    assert logger.values("train/loss") == pytest.approx([float(F.cross_entropy(preds, target))], rel=1e-5)
    assert "train/loss_step" in bar.first_step


class SeesFilters(Callback):
    def __init__(self) -> None:
        self.before = list(warnings.filters)
        self.same_during_fit: list[bool] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.same_during_fit.append(warnings.filters == self.before)


def test_sync_advice_is_kept_from_the_module_names_without_warning_filters(tmp_path: Any) -> None:
    # a one-process group makes Lightning advise `sync_dist=True` for epoch values logged without it
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path}/group", rank=0, world_size=1)
    try:
        cache_before = set(advice_cache() or ())
        data = loader(classification_data(64, seed=390), batch_size=32)
        during = SeesFilters()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            during.before = list(warnings.filters)
            make_trainer(max_epochs=2, callbacks=[during]).fit(Classifier(), data, data)
            assert warnings.filters == during.before
        advice = [str(w.message) for w in caught if "sync_dist=True" in str(w.message)]
        assert advice == []  # the module's values are synced already: no advice for any of its names
        assert during.same_during_fit == [True, True]  # Python's warning filters untouched, even during the fit
        assert set(advice_cache() or ()) == cache_before  # and Lightning's cache as it was after the fit
    finally:
        torch.distributed.destroy_process_group()


def test_the_advice_is_worded_as_lightning_words_it(tmp_path: Any) -> None:
    class LogsItself(Classifier):
        def on_validation_epoch_end(self) -> None:
            self.log("own/value", torch.tensor(1.0))  # a user's value, logged without sync_dist

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path}/group", rank=0, world_size=1)
    try:
        data = loader(classification_data(64, seed=391), batch_size=32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_trainer().fit(LogsItself(), data, data)
        assert sync_advice("own/value") in [str(w.message) for w in caught]  # a user's own value keeps its advice
    finally:
        advice_cache().discard(sync_advice("own/value"))  # type: ignore[union-attr]
        torch.distributed.destroy_process_group()


def test_to_torchscript_works_as_for_a_plain_module() -> None:
    model = Classifier(track_best=("acc",), log_train_step=True)
    data = loader(classification_data(64, seed=392), batch_size=16)
    make_trainer().fit(model, data, data)
    scripted = model.to_torchscript()
    x = torch.randn(4, 16)
    assert torch.allclose(scripted(x), model(x))  # type: ignore[operator]


class NoLossDict(MetricAwareModule):
    def __init__(self) -> None:
        super().__init__({"acc": MulticlassAccuracy(NUM_CLASSES)})
        self.net = torch.nn.Linear(16, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def compute_loss(self, preds: Tensor, target: Tensor) -> dict[str, Tensor]:
        return {"ce": F.cross_entropy(preds, target)}


def test_loss_dict_without_loss_names_the_keys() -> None:
    data = DataLoader(classification_data(32, seed=391), batch_size=16)
    with pytest.raises(ValueError, match=r"without 'loss' \(keys: \['ce'\]\)"):
        make_trainer().validate(NoLossDict(), data)
