"""Trainer options that change which batches an epoch sees: every value stays the metric over those batches.

The model's weights stay fixed (learning rate 0) so that the reference is the metric over the very
batches the run fed, computed at once by `torchmetrics.functional`. Batches of 32 over 330 and 150
samples: uneven last batches, and more than `buffer_batches` batches in the train epoch.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import NUM_CLASSES, Classifier, classification_data, loader, make_trainer, predict_all
from torch import Tensor
from torch.utils.data import TensorDataset
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

TRAIN, VAL = classification_data(330, seed=41), classification_data(150, seed=42)


def reference(model: torch.nn.Module, dataset: TensorDataset, samples: int | None = None) -> dict[str, float]:
    mode = model.training
    preds, target = predict_all(model, dataset)  # in eval mode
    model.train(mode)
    preds, target = preds[:samples], target[:samples]
    return {
        "acc": float(multiclass_accuracy(preds, target, num_classes=NUM_CLASSES)),
        "f1": float(multiclass_f1_score(preds, target, num_classes=NUM_CLASSES, average="macro")),
    }


def assert_logged(logged: dict[str, Any], stage: str, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert float(logged[f"{stage}/{name}"]) == pytest.approx(value, abs=1e-6), (stage, name)


def fixed_model(**kwargs: Any) -> Classifier:
    torch.manual_seed(0)
    return Classifier(lr=0.0, **kwargs)


@pytest.mark.parametrize(
    ("options", "train_samples", "val_samples"),
    [
        ({"max_steps": 3, "max_epochs": -1}, 96, None),  # stops in the middle of the epoch
        ({"accumulate_grad_batches": 3, "max_epochs": 2}, None, None),
        ({"check_val_every_n_epoch": 2, "max_epochs": 3, "num_sanity_val_steps": 2}, None, None),
        ({"fast_dev_run": True}, 32, 32),  # one batch of each
        ({"limit_train_batches": 4, "limit_val_batches": 2}, 128, 64),
        ({"inference_mode": False, "num_sanity_val_steps": 2}, None, None),
    ],
    ids=["max_steps", "accumulate", "val_every_2_epochs", "fast_dev_run", "limits", "no_inference_mode"],
)
def test_values_are_over_the_batches_the_run_fed(
    options: dict[str, Any], train_samples: int | None, val_samples: int | None
) -> None:
    model = fixed_model(log_train_step=True)
    trainer = make_trainer(**options)
    trainer.fit(model, loader(TRAIN, 32), loader(VAL, 32))
    assert_logged(model.epoch_metrics, "train", reference(model, TRAIN, train_samples))
    if "max_steps" in options:  # the epoch ended before its validation
        assert "val/acc" not in model.epoch_metrics
    else:
        assert_logged(model.epoch_metrics, "val", reference(model, VAL, val_samples))


def test_no_validation_batches_logs_no_validation_value() -> None:
    model = fixed_model()
    trainer = make_trainer(limit_val_batches=0)
    trainer.fit(model, loader(TRAIN, 32), loader(VAL, 32))
    assert not [name for name in trainer.callback_metrics if name.startswith("val/")]
    assert_logged(trainer.callback_metrics, "train", reference(model, TRAIN))


class FailsOnce(Classifier):
    """Raises in the fifth train step of its first fit, as a bad batch or an interrupted run would."""

    failed = False

    def forward(self, x: Tensor) -> Tensor:
        if not self.failed and self.trainer.training and self.trainer.fit_loop.epoch_loop.batch_idx == 4:
            self.failed = True
            raise RuntimeError("a bad batch")
        return super().forward(x)


def test_a_fit_after_a_failed_one_starts_clean() -> None:
    torch.manual_seed(0)
    model = FailsOnce(lr=0.0, log_train_step=True)
    with pytest.raises(RuntimeError, match="a bad batch"):
        make_trainer(num_sanity_val_steps=2).fit(model, loader(TRAIN, 32), loader(VAL, 32))
    trainer = make_trainer(num_sanity_val_steps=2)
    trainer.fit(model, loader(TRAIN, 32), loader(VAL, 32))
    assert_logged(trainer.callback_metrics, "train", reference(model, TRAIN))
    assert_logged(trainer.callback_metrics, "val", reference(model, VAL))


@pytest.mark.parametrize("inference_mode", [True, False])
def test_validate_and_test_after_fit_under_either_grad_mode(inference_mode: bool) -> None:
    # a fit leaves its states as tensors made under inference mode; a run without it must still update them
    model = fixed_model()
    make_trainer(num_sanity_val_steps=2).fit(model, loader(TRAIN, 32), loader(VAL, 32))
    trainer = make_trainer(inference_mode=inference_mode)
    validated = trainer.validate(model, loader(VAL, 32), verbose=False)
    tested = [trainer.test(model, loader(data, 32), verbose=False) for data in (VAL, TRAIN)]
    assert validated[0]["val/acc"] == pytest.approx(reference(model, VAL)["acc"], abs=1e-6)
    assert tested[0][0]["test/f1"] == pytest.approx(reference(model, VAL)["f1"], abs=1e-6)
    assert tested[1][0]["test/f1"] == pytest.approx(reference(model, TRAIN)["f1"], abs=1e-6)
    refit = make_trainer(inference_mode=inference_mode)
    refit.fit(model, loader(TRAIN, 32), loader(VAL, 32))
    assert_logged(refit.callback_metrics, "val", reference(model, VAL))
