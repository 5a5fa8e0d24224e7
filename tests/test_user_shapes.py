"""Any class a user writes and any output a model returns: exact values, or an error; never a silent loss."""

from __future__ import annotations

import collections
import dataclasses
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    NUM_FEATURES,
    Classifier,
    FigureLogger,
    classification_data,
    default_metrics,
    full_data_accuracy,
    loader,
    make_trainer,
    predict_all,
)
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_auroc
from torchmetrics.retrieval import RetrievalMAP
from transformers.modeling_outputs import SequenceClassifierOutput

from lightning_metrics_base import MetricAwareModule, MetricUpdateError
from lightning_metrics_base._internals.lightning import HOOK_NAME_ATTRIBUTE

TRAIN, VAL = classification_data(200, seed=900), classification_data(150, seed=901)


def fit(model: MetricAwareModule, epochs: int = 2, **kwargs: Any) -> Any:
    trainer = make_trainer(max_epochs=epochs, **kwargs)
    trainer.fit(model, loader(TRAIN, batch_size=32), loader(VAL, batch_size=32))
    return trainer


# ---------------------------------------------------------------- 1. mixins and class chains


class Observed(Classifier):
    """Accuracy and F1, and a confusion matrix whose figure goes to the logger once per epoch end."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__({**default_metrics(), "confmat": MulticlassConfusionMatrix(NUM_CLASSES)}, **kwargs)


class ImageLoggingMixin:
    """A mixin as users write them: its own epoch-end hook, no `super()`, reading the epoch's values."""

    seen: list[float]

    def on_validation_epoch_end(self) -> None:
        self.seen.append(float(self.epoch_metrics["val/acc"]))  # type: ignore[attr-defined]


class MixinFirst(ImageLoggingMixin, Observed):
    def __init__(self) -> None:
        super().__init__(track_best=("acc",))
        self.seen = []


class PoliteMixin:
    def on_validation_epoch_end(self) -> None:
        self.seen.append(-1.0)  # type: ignore[attr-defined]
        super().on_validation_epoch_end()  # type: ignore[misc]


class Parent(Observed):
    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.seen.append(float(self.epoch_metrics["val/acc"]))


class Child(Parent):
    def on_validation_epoch_end(self) -> None:  # no super(): the parent's hook and its work are skipped by Python
        self.seen.append(float(self.epoch_metrics["val/acc"]))


class MixinOverChain(PoliteMixin, Parent):
    def __init__(self) -> None:
        super().__init__()
        self.seen = []


class ChildOfChain(Child):
    def __init__(self) -> None:
        super().__init__()
        self.seen = []


class MixinAfter(Observed, ImageLoggingMixin):
    """A mixin after the base: the base's hook comes first in the MRO, as with a plain LightningModule."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = []


@pytest.mark.parametrize("cls", [MixinFirst, MixinOverChain, ChildOfChain, MixinAfter])
def test_every_class_shape_logs_exact_values_and_does_the_work_once(cls: type[Classifier]) -> None:
    model, logger = cls(), FigureLogger()
    trainer = fit(model, epochs=2, logger=logger)
    reference = full_data_accuracy(model, VAL)
    assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(reference, abs=1e-6)
    # the epoch end's work (compute, figures, log) runs once per hook call, never twice
    assert [key for key, _, _ in logger.titles].count("val/confmat") == 2
    assert [key for key, _, _ in logger.titles].count("train/confmat") == 2
    values = [value for value in model.seen if value >= 0]  # type: ignore[attr-defined]
    if cls is not MixinAfter:
        assert len(values) == 2 and values[-1] == pytest.approx(reference, abs=1e-6)  # read the epoch's own value


def test_a_mixin_before_the_base_keeps_reset_and_best() -> None:
    model = MixinFirst()
    fit(model, epochs=2)
    per_epoch = model.seen
    assert model.best_values["val/acc_best"] == pytest.approx(max(per_epoch), abs=1e-6)
    # each epoch starts afresh: the second epoch's value is over its own data, not both epochs'
    assert per_epoch[-1] == pytest.approx(full_data_accuracy(model, VAL), abs=1e-6)


# ---------------------------------------------------------------- 2. compute groups from settings


class Logits(MetricAwareModule):
    """The inputs are the logits: the data decides exactly what the metrics see."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            {"acc": MulticlassAccuracy(3, average="macro"), "top2": MulticlassAccuracy(3, top_k=2)},
            loss_fn=F.cross_entropy,
            **kwargs,
        )
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def logits_data() -> TensorDataset:
    # a first batch of two after which torchmetrics' state comparison finds top-1 and top-2 states equal
    first = torch.tensor([[1.5410, -0.2934, -2.1788], [0.5684, -1.0845, -1.3986]])
    generator = torch.Generator().manual_seed(3)
    rest = torch.randn(62, 3, generator=generator)
    target = torch.cat([torch.tensor([0, 0]), torch.randint(0, 3, (62,), generator=generator)])
    return TensorDataset(torch.cat([first, rest]), target)


@pytest.mark.parametrize("options", [{"buffer_batches": 1}, {}, {"log_train_step": True}])
def test_metrics_that_differ_never_share_a_state(options: dict[str, Any]) -> None:
    data = logits_data()
    x, y = data.tensors
    model = Logits(**options)
    trainer = make_trainer(max_epochs=1, log_every_n_steps=1)
    trainer.fit(model, DataLoader(data, batch_size=2), DataLoader(data, batch_size=2))
    top2 = float(multiclass_accuracy(x, y, num_classes=3, top_k=2))
    top1 = float(multiclass_accuracy(x, y, num_classes=3))
    assert top1 != pytest.approx(top2)
    for stage in ("train", "val"):
        assert float(model.epoch_metrics[f"{stage}/top2"]) == pytest.approx(top2, abs=1e-6)
        assert float(model.epoch_metrics[f"{stage}/acc"]) == pytest.approx(top1, abs=1e-6)
    if options.get("log_train_step"):
        step_top2 = float(trainer.logged_metrics["train/top2_step"])  # the last batch's own value
        assert step_top2 == pytest.approx(float(multiclass_accuracy(x[-2:], y[-2:], num_classes=3, top_k=2)))


def test_metrics_that_share_an_update_stay_grouped() -> None:
    model = Classifier(
        {
            "acc": MulticlassAccuracy(NUM_CLASSES),
            "f1": MulticlassF1Score(NUM_CLASSES),
            "top2": MulticlassAccuracy(NUM_CLASSES, top_k=2),
        }
    )
    groups = sorted(sorted(group) for group in model.val_metrics.compute_groups.values())  # type: ignore[union-attr]
    assert groups == [["acc", "f1"], ["top2"]]


# ---------------------------------------------------------------- 3, 4. outputs keep their type, detached

Inception = collections.namedtuple("Inception", ["logits", "aux_logits"])


@dataclasses.dataclass
class DetectorOutput:
    logits: Tensor
    extra: Tensor


class TypedOutputs(MetricAwareModule):
    """`forward` returns `kind` of container; `compute_loss` and `metric_inputs` read it by attribute."""

    def __init__(self, kind: str) -> None:
        super().__init__({"acc": MulticlassAccuracy(NUM_CLASSES)})
        self.kind = kind
        self.net = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.seen: list[tuple[type, bool]] = []

    def forward(self, x: Tensor) -> Any:
        logits = self.net(x)
        if self.kind == "hf":
            return SequenceClassifierOutput(logits=logits)
        if self.kind == "namedtuple":
            return Inception(logits, logits * 2)
        return DetectorOutput(logits, logits.sum(1))

    def compute_loss(self, preds: Any, target: Tensor) -> Tensor:
        return F.cross_entropy(preds.logits, target)

    def metric_inputs(self, preds: Any, target: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "dataclass":
            tensors = [getattr(preds, field.name) for field in dataclasses.fields(preds)]
        else:
            tensors = list(preds.values() if self.kind == "hf" else preds)
        self.seen.append((type(preds), any(tensor.requires_grad for tensor in tensors)))
        return preds.logits, target

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


@pytest.mark.parametrize("kind", ["hf", "namedtuple", "dataclass"])
def test_outputs_reach_metric_inputs_with_their_type_and_detached(kind: str) -> None:
    model = TypedOutputs(kind)
    trainer = fit(model, epochs=1)
    expected = {"hf": SequenceClassifierOutput, "namedtuple": Inception, "dataclass": DetectorOutput}[kind]
    assert {seen_type for seen_type, _ in model.seen} == {expected}
    assert not any(requires_grad for _, requires_grad in model.seen)
    preds, target = predict_all(model, VAL)
    reference = float(multiclass_accuracy(preds.logits, target, num_classes=NUM_CLASSES))
    assert float(trainer.callback_metrics["val/acc"]) == pytest.approx(reference, abs=1e-6)


class Prediction:
    """A model's own result class, neither a container nor a dataclass: nothing can copy it generically."""

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits


class GradSeen(Metric):
    """Counts the inputs it is fed that still require grad (a buffered metric: its state is a sum)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("attached", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.attached += int(preds.requires_grad or target.requires_grad)

    def compute(self) -> Tensor:
        return self.attached


class OpaqueOutputs(MetricAwareModule):
    def __init__(self, wrap: Callable[[Tensor], Any], buffer_batches: int) -> None:
        metrics = {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=None), "attached": GradSeen()}
        super().__init__(metrics, buffer_batches=buffer_batches)
        self.wrap = wrap
        self.net = torch.nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.graph_held: list[bool] = []

    def forward(self, x: Tensor) -> Any:
        return self.wrap(self.net(x))

    def compute_loss(self, preds: Any, target: Tensor) -> Tensor:
        return F.cross_entropy(preds.logits, target)

    def metric_inputs(self, preds: Any, target: Tensor) -> tuple[Tensor, Tensor]:
        return preds.logits, target

    def on_train_epoch_end(self) -> None:
        assert self.train_metrics is not None
        self.graph_held = [state.requires_grad for state in self.train_metrics["auroc"].preds]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


@pytest.mark.parametrize("buffer_batches", [16, 1])
@pytest.mark.parametrize("wrap", [Prediction, lambda logits: types.SimpleNamespace(logits=logits)], ids=["class", "ns"])
def test_tensors_read_out_of_any_object_reach_the_metrics_detached(
    wrap: Callable[[Tensor], Any], buffer_batches: int
) -> None:
    model = OpaqueOutputs(wrap, buffer_batches)
    trainer = fit(model, epochs=1)
    assert model.graph_held and not any(model.graph_held)
    assert float(model.epoch_metrics["train/attached"]) == 0.0
    logits, target = model(VAL.tensors[0]).logits.detach(), VAL.tensors[1]
    reference = float(multiclass_auroc(logits, target, num_classes=NUM_CLASSES, thresholds=None))
    assert float(trainer.callback_metrics["val/auroc"]) == pytest.approx(reference, abs=1e-6)


class AssignsItsOwnCollection(Classifier):
    """Code ported from a hand-written module, which kept its own collection per stage."""

    def __init__(self) -> None:
        super().__init__()
        self.val_metrics = MetricCollection({"auroc": MulticlassAUROC(NUM_CLASSES)})


def test_assigning_a_stage_collection_is_refused_with_what_to_do() -> None:
    with pytest.raises(AttributeError, match=r"`val_metrics` is read-only.*super\(\).__init__\(metrics=\.\.\.\)"):
        AssignsItsOwnCollection()
    model = Classifier()
    for name in (
        "train_metrics",
        "test_metrics",
        "log_sep",
        "buffer_batches",
        "track_best",
        "best_values",
        "prog_bar",
        "log_figures",
    ):
        with pytest.raises(AttributeError, match=f"`{name}` is read-only"):
            setattr(model, name, MetricCollection({"acc": MulticlassAccuracy(NUM_CLASSES)}))
    kept: dict[str, torch.Tensor] = {}
    model.epoch_metrics = kept  # a dict of one's own: the module fills it from then on
    assert model.epoch_metrics is kept
    model.my_metric = MulticlassAccuracy(NUM_CLASSES)  # a metric of the user's own is theirs to keep
    assert isinstance(model.my_metric, MulticlassAccuracy)


def test_the_name_of_the_running_hook_is_set_as_nn_module_sets_it() -> None:
    # Lightning sets it around every hook call; the module writes it without `nn.Module`'s checks
    hook_name = HOOK_NAME_ATTRIBUTE
    model, plain = Classifier(), torch.nn.Module()
    for value in ("training_step", None, "on_train_epoch_end"):
        setattr(model, hook_name, value)
        setattr(plain, hook_name, value)
        assert vars(model)[hook_name] == vars(plain)[hook_name] == value and getattr(model, hook_name) == value
    assert hook_name not in {*model._modules, *model._parameters, *model._buffers}


# ---------------------------------------------------------------- 5. a user's own self.log of a module's name


class LeftoverLog(Classifier):
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        loss = super().validation_step(batch, batch_idx, dataloader_idx)
        self.log("val/acc", 0.5)
        return loss


class OwnNames(Classifier):
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        loss = super().validation_step(batch, batch_idx, dataloader_idx)
        self.log_dict({"val/custom": loss * 2})
        return loss


def test_an_own_log_of_a_module_name_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"'val/acc' is logged by the module \(metric 'acc'\) and by a `self.log` call"
    ):
        fit(LeftoverLog(), epochs=1)


def test_own_logs_of_other_names_work() -> None:
    trainer = fit(OwnNames(), epochs=1)
    assert {"val/custom", "val/acc"} <= set(trainer.callback_metrics)


class OwnTrainingStep(Classifier):
    """A step written by hand logs its own loss: the module logs no train loss then, so nothing clashes."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.update_metrics("train", logits, y)
        self.log("train/loss", loss, on_epoch=True, batch_size=len(y))
        return loss


def test_a_hand_written_step_logs_the_loss_the_module_does_not() -> None:
    trainer = fit(OwnTrainingStep(), epochs=1)
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= set(trainer.callback_metrics)


class LogsInEpochEnd(Classifier):
    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", torch.tensor(0.0))


def test_an_own_log_after_the_module_logged_the_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'val/loss' is logged by the module \(the loss\)"):
        fit(LogsInEpochEnd(), epochs=1)


# ---------------------------------------------------------------- 6, 7. track_best


class NoValidationLoss(Classifier):
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        self.update_metrics("val", self(x), y)


class ClassHits(Metric):
    """A user's metric whose result (hits per class) says nothing of its length at construction."""

    higher_is_better = True

    def __init__(self) -> None:
        super().__init__()
        self.add_state("hits", torch.zeros(NUM_CLASSES), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.hits += torch.bincount(target[preds.argmax(1) == target], minlength=NUM_CLASSES)

    def compute(self) -> Tensor:
        return self.hits


class TestTrackBest:
    def test_a_per_class_metric_is_refused_at_construction(self) -> None:
        with pytest.raises(ValueError, match=r"track_best: 'acc' gives 5 values .* not one number"):
            Classifier({"acc": MulticlassAccuracy(NUM_CLASSES, average=None)}, track_best=("acc",))

    def test_a_non_scalar_result_is_refused_at_the_first_validation_end(self) -> None:
        model = Classifier({"val": {"hits": ClassHits()}}, track_best=("hits",))
        with pytest.raises(ValueError, match=r"track_best: metric 'hits' gives \(5,\), not one number"):
            fit(model, epochs=1, num_sanity_val_steps=1)

    def test_loss_without_a_validation_loss_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"track_best: 'loss' has no validation value"):
            fit(NoValidationLoss(track_best=("loss",)), epochs=1)

    def test_none_means_none(self) -> None:
        model = Classifier(track_best=None)
        fit(model, epochs=1)
        assert model.best_values == {} and model.track_best == ()

    def test_validate_after_fit_never_changes_the_best(self, tmp_path: Path) -> None:
        model = Classifier(track_best=("acc",))
        trainer = fit(model, epochs=2, default_root_dir=tmp_path)
        best = model.best_values["val/acc_best"]
        easy = TensorDataset(VAL.tensors[0], model(VAL.tensors[0]).argmax(1).detach())  # all right: acc 1.0
        result = trainer.validate(model, loader(easy), verbose=False)
        assert result[0]["val/acc"] == pytest.approx(1.0) and "val/acc_best" not in result[0]
        assert model.best_values["val/acc_best"] == best
        trainer.save_checkpoint(tmp_path / "after.ckpt")
        saved = torch.load(tmp_path / "after.ckpt", weights_only=False)
        assert saved["lightning_metrics_base"]["best_values"]["val/acc_best"] == best


# ---------------------------------------------------------------- 10. copies for dataloader 1+


def test_copies_for_more_dataloaders_follow_their_parent_mode() -> None:
    model = Classifier()
    trainer = make_trainer(max_epochs=1, num_sanity_val_steps=2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(model, loader(TRAIN), [loader(VAL), loader(VAL)])
    assert not [str(w.message) for w in record if "eval mode" in str(w.message)]
    collections = [name for name, module in model.named_modules() if isinstance(module, MetricCollection)]
    assert len([name for name in collections if "val_metrics" in name]) == 2  # a copy for dataloader 1
    assert all(module.training == model.training for module in model.modules())


# ---------------------------------------------------------------- 11. loss components


class Components(Classifier):
    def __init__(self, reg: Any) -> None:
        super().__init__()
        self.reg = reg

    def compute_loss(self, preds: Tensor, target: Tensor) -> Any:
        return {"loss": F.cross_entropy(preds, target), "reg": self.reg}


def test_a_number_loss_component_is_logged() -> None:
    trainer = fit(Components(0.5), epochs=1)
    assert float(trainer.callback_metrics["val/loss/reg"]) == pytest.approx(0.5)


@pytest.mark.parametrize("reg", ["high", torch.ones(3)])
def test_a_component_of_another_kind_is_refused_naming_its_key(reg: Any) -> None:
    with pytest.raises(TypeError, match=r"loss component 'reg' as .*; a component must be a 0-d tensor or a"):
        fit(Components(reg), epochs=1)


# ---------------------------------------------------------------- 12. buffered updates fail as early as direct ones


class WrongClasses(Classifier):
    def __init__(self) -> None:
        super().__init__({"acc": MulticlassAccuracy(NUM_CLASSES - 2)})  # the model predicts more classes


class LateBadBatch(Classifier):
    """The seventh train batch holds a label the metric does not know."""

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if self.trainer.training and self.trainer.fit_loop.epoch_loop.batch_idx == 6:
            target = target.clone()
            target[0] = NUM_CLASSES + 3
        return preds, target


def test_a_buffered_metric_that_cannot_take_the_data_fails_on_the_first_batch() -> None:
    with pytest.raises(MetricUpdateError, match=r"^train metric 'acc' failed to update \(dataloader 0\) at batch 0"):
        fit(WrongClasses(), epochs=1)


def test_a_later_failing_batch_is_named() -> None:
    with pytest.raises(MetricUpdateError, match=r"^train metric 'acc' failed to update \(dataloader 0\) at batch 6"):
        fit(LateBadBatch(), epochs=1)


# ---------------------------------------------------------------- 16b. a metric whose update takes more than two inputs


class QueryMAP(RetrievalMAP):
    """Retrieval MAP reading the query of each score from the target, as the docs show."""

    def update(self, preds: Tensor, target: tuple[Tensor, Tensor]) -> None:  # type: ignore[override]
        relevant, queries = target
        super().update(preds, relevant, indexes=queries)


class Ranker(MetricAwareModule):
    def __init__(self, metric: Metric, **kwargs: Any) -> None:
        super().__init__({"map": metric}, **kwargs)
        self.score = torch.nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.score(x).squeeze(-1)

    def unpack_batch(self, batch: Any) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, relevant, queries = batch
        return x, (relevant, queries)

    def compute_loss(self, preds: Tensor, target: tuple[Tensor, Tensor]) -> Tensor:
        return F.binary_cross_entropy_with_logits(preds, target[0].float())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def ranking_data(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return TensorDataset(x, (x[:, 0] + torch.randn(n, generator=generator) > 0.5).long(), torch.arange(n) // 7)


@pytest.mark.parametrize("buffer_batches", [16, 1])
def test_a_metric_reading_extra_inputs_from_the_target_is_exact(buffer_batches: int) -> None:
    train, val = ranking_data(300, seed=902), ranking_data(170, seed=903)
    torch.manual_seed(0)
    model = Ranker(QueryMAP(), buffer_batches=buffer_batches)
    make_trainer(max_epochs=1).fit(model, DataLoader(train, batch_size=16), DataLoader(val, batch_size=32))
    for stage, (x, relevant, queries) in (("train", train.tensors), ("val", val.tensors)):
        reference = RetrievalMAP()
        with torch.no_grad():
            reference.update(model(x), relevant, indexes=queries)
        assert float(model.epoch_metrics[f"{stage}/map"]) == pytest.approx(float(reference.compute()), abs=1e-6)


def test_a_metric_missing_an_input_says_how_to_give_it() -> None:
    data = DataLoader(ranking_data(64, seed=904), batch_size=16)
    with pytest.raises(MetricUpdateError, match=r"'map' failed to update.*indexes.*subclass it"):
        make_trainer().fit(Ranker(RetrievalMAP()), data)


# ---------------------------------------------------------------- 17. Hydra's containers in the hyperparameters


class SavesHparams(Classifier):
    def __init__(self, track_best: Any = ("acc",)) -> None:
        super().__init__(track_best=track_best)
        self.save_hyperparameters()


def test_omegaconf_containers_are_saved_as_plain_ones(tmp_path: Path) -> None:
    from omegaconf import ListConfig

    model = SavesHparams(track_best=ListConfig(["acc"]))
    trainer = fit(model, epochs=1, default_root_dir=tmp_path)
    trainer.save_checkpoint(tmp_path / "hydra.ckpt")
    assert type(model.hparams["track_best"]) is list
    loaded = SavesHparams.load_from_checkpoint(tmp_path / "hydra.ckpt", weights_only=True)
    assert loaded.track_best == ("acc",)


def test_checkpoint_recipe_writes_flat_file_names(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path,
        filename="epoch{epoch}-val_acc{val/acc:.3f}",
        monitor="val/acc",
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    fit(Classifier(), epochs=3, callbacks=[checkpoint], enable_checkpointing=True)
    paths = list(tmp_path.rglob("*"))
    assert [path.parent for path in paths] == [tmp_path] and len(paths) == 1
    assert paths[0].name.startswith("epoch") and "val_acc0." in paths[0].name
