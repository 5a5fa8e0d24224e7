"""Every name the module logs is reserved: a second source of one name is refused, naming both."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    NUM_CLASSES,
    Classifier,
    RecordingLogger,
    classification_data,
    loader,
    make_trainer,
)
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.wrappers import (
    ClasswiseWrapper,
)


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
