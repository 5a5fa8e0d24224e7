"""What a step hands the module: sample counts, loss parts, detached inputs, a model's outputs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    classification_data,
    loader,
    make_trainer,
    predict_all,
)
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy

from lightning_metrics_base import MetricAwareModule
from lightning_metrics_base.batch import BatchHooks, check_model_outputs, loss_parts, samples_in
from lightning_metrics_base.update.trees import detach


class Hooks(BatchHooks):
    pass


class TestBatchHooks:
    def test_defaults(self) -> None:
        hooks = Hooks()
        assert hooks.unpack_batch([1, 2]) == (1, 2)
        assert hooks.metric_inputs("p", "t") == ("p", "t")
        assert hooks.count_samples({"y": torch.zeros(4)}) == 4
        hooks.loss_fn = F.l1_loss
        assert float(hooks.compute_loss(torch.ones(2), torch.zeros(2))) == 1.0  # type: ignore[arg-type]

    def test_errors_name_the_class_and_the_hook_to_override(self) -> None:
        with pytest.raises(TypeError, match=r"Hooks.unpack_batch expects an `\(inputs, target\)` pair, but got a"):
            Hooks().unpack_batch((1, 2, 3))
        with pytest.raises(TypeError, match=r"but got a int\. Override `unpack_batch"):
            Hooks().unpack_batch(7)
        with pytest.raises(NotImplementedError, match=r"Hooks has no loss: implement `compute_loss"):
            Hooks().compute_loss(1, 2)
        with pytest.raises(TypeError, match=r"Hooks.count_samples cannot count"):
            Hooks().count_samples(object())

    def test_a_loss_module_is_a_submodule_and_is_called(self) -> None:
        module = MetricAwareModule(None, loss_fn=torch.nn.L1Loss())
        assert dict(module.named_children())["loss_fn"] is module.loss_fn
        assert float(module.compute_loss(torch.ones(3), torch.zeros(3))) == 1.0  # type: ignore[arg-type]


class TestBatchHelpers:
    def test_samples_in(self) -> None:
        assert samples_in(torch.zeros(())) == 1
        assert samples_in((torch.zeros(6), torch.zeros(6, 2))) == 6
        with pytest.raises(TypeError, match=r"Mine.count_samples cannot count the samples of a str target"):
            samples_in("x", "Mine")

    def test_loss_parts(self) -> None:
        loss = torch.tensor(1.0)
        assert loss_parts(loss) == {"loss": loss}
        with pytest.raises(ValueError, match=r"without 'loss' \(keys: \['a', 'b'\]\)"):
            loss_parts({"b": loss, "a": loss})
        weight = torch.ones((), requires_grad=True)
        (total,) = loss_parts({"loss": torch.tensor([3.0]) * weight}).values()
        assert total.shape == () and total.requires_grad
        total.backward()
        assert float(weight.grad) == 3.0  # type: ignore[arg-type]
        for wrong, shown in ((None, "NoneType"), (0.5, "float"), (torch.ones(2), r"a tensor of shape \(2,\)")):
            with pytest.raises(TypeError, match=rf"compute_loss returned {shown} as the loss, which must be a tensor"):
                loss_parts(wrong)

    def test_detach_reaches_inside_containers(self) -> None:
        x = torch.ones(2, requires_grad=True) * 2
        detached = detach({"a": [x, (x,)], "b": x})
        assert not detached["a"][0].requires_grad and not detached["a"][1][0].requires_grad
        assert not detached["b"].requires_grad and isinstance(detached["a"][1], tuple)

    def test_model_outputs(self) -> None:
        check_model_outputs({"a": 1, "b": 2}, {"a": 1, "b": 2}, ("a", "b"))
        check_model_outputs(torch.zeros(1), torch.zeros(1), None)  # a single-output model: nothing to check
        with pytest.raises(ValueError, match=r"the target is a Tensor, but `outputs=\('a',\)` needs a dict"):
            check_model_outputs({"a": 1}, torch.zeros(1), ("a",))


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
