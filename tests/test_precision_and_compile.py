"""Low precision never reaches metric state; a compiled model logs the same exact values."""

from __future__ import annotations

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
from torch.utils.data import TensorDataset
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score
from torchmetrics.regression import MeanAbsoluteError

from lightning_metrics_base import MetricAwareModule


class Affine(torch.nn.Module):
    """``x @ weight + bias`` by elementwise products: torch 2.1's CPU has no float16 matrix product."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(features))
        self.bias = torch.nn.Parameter(torch.tensor(100.0))

    def forward(self, x: Tensor) -> Tensor:
        return ((x * self.weight).sum(-1) + self.bias).unsqueeze(-1)


class Hundreds(MetricAwareModule):
    """Predicts values around 100: where a bf16 running sum has a resolution of whole units."""

    def __init__(self) -> None:
        super().__init__({"mae": MeanAbsoluteError()}, stages=("val", "test"))
        self.net = Affine(4)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(preds, target)


def hundreds_data() -> TensorDataset:
    generator = torch.Generator().manual_seed(61)
    x = torch.randn(2000, 4, generator=generator)
    return TensorDataset(x, 100.0 + 3.0 * torch.randn(2000, generator=generator))


@pytest.mark.parametrize(("precision", "dtype"), [("bf16-true", torch.bfloat16), ("16-true", torch.float16)])
def test_true_low_precision_keeps_metric_state_in_float32(precision: str, dtype: torch.dtype) -> None:
    data = hundreds_data()
    model = Hundreds()
    trainer = make_trainer(precision=precision)
    (tested,) = trainer.test(model, loader(data, batch_size=50), verbose=False)

    # the reference sees exactly what the module saw: inputs, targets and outputs in `dtype`
    x, y = data.tensors
    with torch.no_grad():
        preds = model.net.to(dtype)(x.to(dtype)).squeeze(-1)
    expected = float((preds.double() - y.to(dtype).double()).abs().mean())
    assert tested["test/mae"] == pytest.approx(expected, rel=1e-5)
    state = model.test_metrics["mae"].sum_abs_error  # type: ignore[index]
    assert state.dtype == torch.float32
    assert model.net.weight.dtype == dtype


def test_bf16_state_would_drift() -> None:
    """The trap avoided above: the same metric, its state cast to bf16 as `module.to(bf16)` does, drifts."""
    x, y = hundreds_data().tensors
    model = Hundreds().to(torch.bfloat16)
    with torch.no_grad():
        preds, target = model(x.bfloat16()), y.bfloat16()
    expected = float((preds.double() - target.double()).abs().mean())
    naive = MeanAbsoluteError().to(torch.bfloat16)
    for start in range(0, 2000, 50):
        naive.update(preds[start : start + 50], target[start : start + 50])
    assert naive.sum_abs_error.dtype == torch.bfloat16
    assert abs(float(naive.compute()) - expected) / expected > 1e-3
    assert model.test_metrics["mae"].sum_abs_error.dtype == torch.float32  # type: ignore[index]


def test_bf16_mixed_is_exact() -> None:
    data = hundreds_data()
    model = Hundreds()
    (tested,) = make_trainer(precision="bf16-mixed").test(model, loader(data, batch_size=50), verbose=False)
    x, y = data.tensors
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        preds = model(x)
    assert tested["test/mae"] == pytest.approx(float((preds.double() - y.double()).abs().mean()), rel=1e-5)


def test_compiled_model_logs_exact_values() -> None:
    train, val = classification_data(200, seed=62), classification_data(150, seed=63)
    model = Classifier(lr=0.0, log_train_step=True)
    trainer = make_trainer(max_epochs=2)
    trainer.fit(torch.compile(model, backend="eager"), loader(train, batch_size=32), loader(val, batch_size=32))
    for stage, dataset in (("train", train), ("val", val)):
        preds, target = predict_all(model, dataset)
        assert float(trainer.callback_metrics[f"{stage}/acc"]) == pytest.approx(
            float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES)), abs=1e-6
        )
        assert float(trainer.callback_metrics[f"{stage}/f1"]) == pytest.approx(
            float(multiclass_f1_score(preds, target, num_classes=NUM_CLASSES, average="macro")), abs=1e-6
        )
        assert float(trainer.callback_metrics[f"{stage}/loss"]) == pytest.approx(
            float(F.cross_entropy(preds, target)), abs=1e-5
        )


def test_to_torchscript_works_as_for_a_plain_module() -> None:
    model = Classifier(track_best=("acc",), log_train_step=True)
    data = loader(classification_data(64, seed=392), batch_size=16)
    make_trainer().fit(model, data, data)
    scripted = model.to_torchscript()
    x = torch.randn(4, 16)
    assert torch.allclose(scripted(x), model(x))  # type: ignore[operator]
