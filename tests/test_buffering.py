"""Buffered updates: the same values as batch-by-batch updates, fewer update calls, whole state whenever read."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    NUM_CLASSES,
    Classifier,
    MeanAndMax,
    RecordingLogger,
    classification_data,
    classification_metrics,
    default_metrics,
    full_data_accuracy,
    loader,
    make_trainer,
    predict_all,
)
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_average_precision,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_stat_scores,
)
from torchmetrics.functional.regression import mean_absolute_error, mean_squared_error, pearson_corrcoef, r2_score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, R2Score
from torchmetrics.wrappers import MinMaxMetric

from lightning_metrics_base import MetricUpdateError
from lightning_metrics_base.update.buffering import UpdateBuffer, buffers_exactly, normalization


def values(model: Classifier, dataloaders: Any, **trainer: Any) -> dict[str, Tensor]:
    make_trainer(**trainer).validate(model, dataloaders, verbose=False)
    return dict(model.epoch_metrics)


class TestSameValues:
    def test_classification_and_curves_against_the_whole_data(self) -> None:
        first, second = classification_data(333, seed=501), classification_data(150, seed=502)  # uneven batches
        dataloaders = [loader(first, batch_size=16), loader(second, batch_size=7)]
        buffered = Classifier({"val": classification_metrics()}, lr=0.0)
        unbuffered = Classifier({"val": classification_metrics()}, lr=0.0, buffer_batches=1)
        unbuffered.load_state_dict(buffered.state_dict())
        got, plain = values(buffered, dataloaders), values(unbuffered, dataloaders)
        assert set(got) == set(plain)
        for name in got:  # integer states exactly, float ones up to rounding
            assert torch.allclose(got[name].double(), plain[name].double(), rtol=1e-5, atol=1e-7), name
        for index, dataset in enumerate((first, second)):
            preds, target = predict_all(buffered, dataset)
            suffix = f"/dataloader_idx_{index}"
            stats = multiclass_stat_scores(preds, target, num_classes=NUM_CLASSES, average=None)
            assert torch.equal(got[f"val/stats{suffix}"], stats)
            confmat = multiclass_confusion_matrix(preds, target, num_classes=NUM_CLASSES)
            assert torch.equal(got[f"val/confmat{suffix}"], confmat)
            auroc = multiclass_auroc(preds, target, num_classes=NUM_CLASSES, thresholds=None)
            assert float(got[f"val/auroc{suffix}"]) == pytest.approx(float(auroc), abs=1e-6)
            ap = multiclass_average_precision(preds, target, num_classes=NUM_CLASSES, thresholds=None)
            assert float(got[f"val/ap{suffix}"]) == pytest.approx(float(ap), abs=1e-6)

    def test_regression(self) -> None:
        from helpers import Regressor, regression_data

        data = regression_data(301, seed=503)
        model = Regressor()
        model.val_metrics.add_metrics({"r2": R2Score(), "pearson": PearsonCorrCoef()})  # type: ignore[union-attr]
        logged = make_trainer().validate(model, loader(data, batch_size=8), verbose=False)[0]
        preds, target = predict_all(model, data)
        preds = preds.squeeze(-1)
        assert logged["val/mse"] == pytest.approx(float(mean_squared_error(preds, target)), rel=1e-5)
        assert logged["val/mae"] == pytest.approx(float(mean_absolute_error(preds, target)), rel=1e-5)
        assert logged["val/r2"] == pytest.approx(float(r2_score(preds, target)), rel=1e-5)
        assert logged["val/pearson"] == pytest.approx(float(pearson_corrcoef(preds, target)), rel=1e-5)


class CountsUpdates(Classifier):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            {
                "val": {
                    "acc": MulticlassAccuracy(NUM_CLASSES),
                    "f1": MulticlassF1Score(NUM_CLASSES),
                    "pearson_like": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES)),
                }
            },
            lr=0.0,
            **kwargs,
        )
        self.counts: dict[str, int] = {}

    def on_validation_epoch_end(self) -> None:
        val = self.val_metrics
        assert val is not None
        members = dict(val.items(keep_base=True, copy_state=False))  # `val["acc"]` would copy the shared state
        self.counts = {"acc": members["acc"].update_count, "wrapped": members["pearson_like"]._base_metric.update_count}
        self.groups = [sorted(group) for group in val.compute_groups.values()]
        self.shared = members["acc"].tp is members["f1"].tp


class TestUpdateCalls:
    def test_eligible_metrics_buffered_the_others_not(self) -> None:
        model = CountsUpdates()
        data = classification_data(40 * 8, seed=504)
        make_trainer().validate(model, loader(data, batch_size=8), verbose=False)
        # 40 batches: the first fed directly (bad data fails at once), then buffers of 16, 16 and 7
        assert model.counts == {"acc": 4, "wrapped": 40}  # a wrapper is updated every batch
        # the compute groups come from the settings: accuracy and F1 share one update from the first batch
        assert ["acc", "f1"] in model.groups and model.shared

    def test_buffer_batches_one_turns_it_off(self) -> None:
        model = CountsUpdates(buffer_batches=1)
        make_trainer().validate(model, loader(classification_data(80, seed=505), batch_size=8), verbose=False)
        assert model.counts == {"acc": 10, "wrapped": 10}

    def test_the_memory_bound_flushes_earlier(self) -> None:
        class SmallBuffers(CountsUpdates):
            buffer_bytes = 2 * (8 * 8 + 8 * 8)  # two batches of class indices (taken from the logits) and labels

        model = SmallBuffers()
        make_trainer().validate(model, loader(classification_data(80, seed=506), batch_size=8), verbose=False)
        assert model.counts["acc"] == 6  # the first batch directly, then four buffers of two and the last batch
        assert float(model.epoch_metrics["val/acc"]) == pytest.approx(
            full_data_accuracy(model, classification_data(80, seed=506)), abs=1e-6
        )

    def test_batches_of_more_than_half_the_bound_are_fed_directly(self) -> None:
        class Tight(CountsUpdates):
            buffer_bytes = 2 * (8 * 8 + 8 * 8) - 1  # two batches of indices and labels do not fit

        model = Tight()
        data = classification_data(80, seed=507)
        make_trainer().validate(model, loader(data, batch_size=8), verbose=False)
        assert model.counts["acc"] == 10  # every batch, as without buffering
        assert float(model.epoch_metrics["val/acc"]) == pytest.approx(full_data_accuracy(model, data), abs=1e-6)
        buffer, collection = UpdateBuffer(batches=16, max_bytes=Tight.buffer_bytes), MetricCollection(default_metrics())
        for _ in range(2):
            buffer.add(collection, torch.randn(8, NUM_CLASSES), torch.randint(0, NUM_CLASSES, (8,)))
        assert len(buffer) == 0 and buffer.nbytes == 0  # fed at once, never copied into the buffer

    def test_bad_buffer_batches(self) -> None:
        with pytest.raises(ValueError, match=r"`buffer_batches` to be an integer of at least 1"):
            Classifier(buffer_batches=0)


class MixedReadings(Classifier):
    """Feeds a binary metric probabilities on even batches and logits on odd ones."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__({"val": {"acc": BinaryAccuracy(), "auroc": BinaryAUROC()}}, lr=0.0, **kwargs)
        self.calls = 0

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        self.calls += 1
        score = preds[:, 0] - preds[:, 1]
        return (score.sigmoid() if self.calls % 2 else score), (target == 0).long()


def test_logits_and_probabilities_are_read_per_batch_as_torchmetrics_does() -> None:
    data = loader(classification_data(256, seed=507), batch_size=16)
    buffered, plain = MixedReadings(), MixedReadings(buffer_batches=1)
    plain.load_state_dict(buffered.state_dict())
    got, expected = values(buffered, data), values(plain, data)
    assert float(got["val/acc"]) == float(expected["val/acc"])
    assert float(got["val/auroc"]) == pytest.approx(float(expected["val/auroc"]), abs=1e-6)


def test_the_normalization_decision_is_made_per_batch() -> None:
    probabilities, logits = torch.tensor([0.9, 0.2, 0.6]), torch.tensor([-2.0, 3.0, 0.5])
    target = torch.tensor([1, 0, 0])
    metric, reference = BinaryAccuracy(), BinaryAccuracy()
    buffer = UpdateBuffer(batches=8)
    collection = MetricCollection({"acc": metric})
    for preds in (probabilities, probabilities, logits, probabilities):
        buffer.add(collection, preds, target)
        reference.update(preds, target)
    buffer.flush(collection)
    assert float(metric.compute()) == float(reference.compute())
    concatenated = BinaryAccuracy()
    concatenated.update(torch.cat([probabilities, probabilities, logits, probabilities]), target.repeat(4))
    assert float(concatenated.compute()) != float(reference.compute())  # what a naive buffer would log


class TestEligibility:
    def test_rules(self) -> None:
        assert buffers_exactly(MeanSquaredError()) and buffers_exactly(MulticlassAUROC(3))
        assert not buffers_exactly(PearsonCorrCoef()) and not buffers_exactly(MinMaxMetric(MeanAbsoluteError()))
        assert normalization(BinaryAUROC()) == "sigmoid" and normalization(MeanSquaredError()) is None


class ReadsStateEveryStep(Classifier):
    """A user's own step reads the collection's state after every update."""

    def __init__(self) -> None:
        super().__init__({"train": {"acc": MulticlassAccuracy(NUM_CLASSES, average="micro")}}, lr=0.0)
        self.seen: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        self.update_metrics("train", logits, y)
        acc = self.train_metrics["acc"]  # type: ignore[index]
        self.seen.append(int(acc.tp.sum() + acc.fn.sum()))
        return F.cross_entropy(logits, y)


def test_state_read_through_stage_metrics_is_whole_at_any_time() -> None:
    model = ReadsStateEveryStep()
    make_trainer().fit(model, loader(classification_data(100, seed=508), batch_size=8))
    assert model.seen == [min(8 * (step + 1), 100) for step in range(13)]


class FailsOnce(Classifier):
    def __init__(self) -> None:
        super().__init__(lr=0.0)
        self.fail = True

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        if self.fail and batch_idx == 3:
            raise RuntimeError("interrupted")
        return super().validation_step(batch, batch_idx, dataloader_idx)


def test_an_interrupted_run_leaks_nothing_into_the_next() -> None:
    data = classification_data(96, seed=509)
    model = FailsOnce()
    with pytest.raises(RuntimeError, match="interrupted"):
        make_trainer().validate(model, loader(data, batch_size=8), verbose=False)
    model.fail = False
    logged = make_trainer().validate(model, loader(data, batch_size=8), verbose=False)[0]
    assert logged["val/acc"] == pytest.approx(full_data_accuracy(model, data), abs=1e-6)


class BadLastBatch(Classifier):
    """The last, smaller batch carries a label the metric does not know."""

    def __init__(self) -> None:
        super().__init__({"val": {"acc": MulticlassAccuracy(NUM_CLASSES)}}, lr=0.0)

    def metric_inputs(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        if len(target) == 6:
            target = torch.full_like(target, NUM_CLASSES + 3)
        return preds, target


def test_a_failing_buffered_update_names_the_failing_batch() -> None:
    data = classification_data(70, seed=510)  # batches of 16, 16, 16, 16 and 6
    with pytest.raises(MetricUpdateError, match=r"val metric 'acc' failed to update .*preds of shape \(6, 5\)"):
        make_trainer().validate(BadLastBatch(), loader(data, batch_size=16), verbose=False)


class TestClassIndices:
    """Multiclass stat scores and confusion matrices read logits as class indices: taken once per batch."""

    def segmentation(self, seed: int) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(seed)
        logits = torch.randn(4, NUM_CLASSES, 6, 6, generator=generator)
        target = torch.randint(0, NUM_CLASSES, (4, 6, 6), generator=generator)
        target[:, 0, 0] = 255  # ignored pixels
        return logits, target

    def metrics(self) -> MetricCollection:
        from torchmetrics.classification import MulticlassJaccardIndex

        return MetricCollection(
            {
                "iou": MulticlassJaccardIndex(NUM_CLASSES, ignore_index=255),
                "confmat": MulticlassConfusionMatrix(NUM_CLASSES, ignore_index=255),
                "acc": MulticlassAccuracy(NUM_CLASSES, ignore_index=255, multidim_average="global"),
                # reads the logits, after dropping the ignored pixels: updated every batch, not buffered
                "auroc": MulticlassAUROC(NUM_CLASSES, thresholds=50, ignore_index=255),
            }
        )

    def test_values_equal_unbuffered_ones_exactly(self) -> None:
        from lightning_metrics_base.update.compute_groups import group_by_settings

        buffered, plain = group_by_settings(self.metrics()), group_by_settings(self.metrics())
        buffer = UpdateBuffer(batches=4)
        batches = [self.segmentation(seed) for seed in range(9)]
        for logits, target in batches:
            buffer.add(buffered, logits, target)
            plain.update(logits, target)
        buffer.flush(buffered)
        got, expected = buffered.compute(), plain.compute()
        for name in expected:
            assert torch.allclose(got[name].double(), expected[name].double(), atol=1e-7), name
        assert all(torch.equal(got[name], expected[name]) for name in ("iou", "confmat", "acc"))
        logits = torch.cat([logits for logits, _ in batches])
        target = torch.cat([target for _, target in batches])
        reference = multiclass_confusion_matrix(logits, target, num_classes=NUM_CLASSES, ignore_index=255)
        assert torch.equal(got["confmat"], reference)

    def test_batches_that_do_not_go_together_keep_exact_values(self) -> None:
        from lightning_metrics_base.update.compute_groups import group_by_settings

        buffered, plain = group_by_settings(self.metrics()), group_by_settings(self.metrics())
        buffer = UpdateBuffer(batches=4)
        for seed in range(7):
            logits, target = self.segmentation(seed)
            if seed % 3 == 1:  # another image width: a new block
                logits, target = logits[..., :4], target[..., :4]
            buffer.add(buffered, logits, target)
            plain.update(logits, target)
        buffer.flush(buffered)
        got, expected = buffered.compute(), plain.compute()
        assert all(torch.equal(got[name], expected[name]) for name in ("iou", "confmat", "acc"))

        scalars, reference = MetricCollection({"mse": MeanSquaredError()}), MeanSquaredError()
        buffer = UpdateBuffer(batches=4)
        for value in range(5):  # 0-d tensors do not concatenate: fed as they come
            buffer.add(scalars, torch.tensor(float(value)), torch.tensor(2.0))
            reference.update(torch.tensor(float(value)), torch.tensor(2.0))
        buffer.flush(scalars)
        assert torch.equal(scalars.compute()["mse"], reference.compute())

    def test_the_buffer_holds_indices_not_logits(self) -> None:
        from lightning_metrics_base.update.compute_groups import group_by_settings

        collection = group_by_settings(self.metrics())
        buffer = UpdateBuffer(batches=16)
        for seed in range(3):
            buffer.add(collection, *self.segmentation(seed))
        assert len(buffer) == 2  # the first batch is fed directly
        # room for 16 batches of 4 x 6 x 6 class indices and labels (int64), and nothing else: the AUROC
        # takes its logits directly (4 x 5 x 6 x 6 floats a batch)
        assert buffer.nbytes == 16 * 4 * (6 * 6 * 8 + 6 * 6 * 8)
        assert normalization(collection["iou"]) == "labels"
        assert normalization(MulticlassAccuracy(NUM_CLASSES, top_k=2)) is None  # top-k needs the logits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64])
def test_class_indices_are_argmax_ties_and_nan_included(dtype: torch.dtype) -> None:
    from lightning_metrics_base.update.buffering import class_indices

    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (64, 7, 5, 5), generator=generator).to(dtype)  # many ties
    if dtype.is_floating_point:
        logits[0, 3, 0, 0], logits[1, :, 1, 1], logits[2, 2, 2, 2] = float("nan"), float("nan"), float("inf")
        logits[3, :, 3, 3] = -float("inf")
    assert torch.equal(class_indices(logits), logits.argmax(dim=1))
    assert torch.equal(class_indices(logits[:, :, 0, 0]), logits[:, :, 0, 0].argmax(dim=1))


class SmallLimit(Classifier):
    large_state_bytes = 1000  # a tiny limit, so a small validation set passes it


def test_a_state_that_grows_with_every_sample_gets_one_notice_per_fit() -> None:
    metrics = {"val": {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=None), "acc": MulticlassAccuracy(NUM_CLASSES)}}
    model = SmallLimit(metrics, lr=0.0)
    data = loader(classification_data(200, seed=520), batch_size=32)
    with pytest.warns(UserWarning) as record:
        make_trainer(max_epochs=2).fit(model, data, data)
    notices = [str(warning.message) for warning in record if "grows with every sample" in str(warning.message)]
    # 200 samples x (5 float32 scores + 1 int64 label) = 5,600 bytes, gathered on each of 1 process
    assert len(notices) == 1 and "val metric 'auroc' keeps 5.5 KiB" in notices[0]
    assert "5.5 KiB on each of 1" in notices[0] and "thresholds=200" in notices[0]
    assert float(model.epoch_metrics["val/auroc"]) == pytest.approx(
        float(multiclass_auroc(*predict_all(model, classification_data(200, seed=520)), num_classes=NUM_CLASSES)),
        abs=1e-6,
    )


class CountsCurveUpdates(Classifier):
    def on_validation_epoch_end(self) -> None:
        val = self.val_metrics
        assert val is not None
        self.auroc_updates = dict(val.items(keep_base=True, copy_state=False))["auroc"].update_count


def test_binned_multiclass_curves_are_counted_per_block_and_stay_exact() -> None:
    metrics = {"auroc": MulticlassAUROC(NUM_CLASSES, thresholds=20), "acc": MulticlassAccuracy(NUM_CLASSES)}
    buffered = CountsCurveUpdates({"val": metrics}, lr=0.0)
    plain = Classifier({"val": metrics}, lr=0.0, buffer_batches=1)
    plain.load_state_dict(buffered.state_dict())
    data = loader(classification_data(200, seed=530), batch_size=16)
    got, expected = values(buffered, data), values(plain, data)
    assert float(got["val/auroc"]) == float(expected["val/auroc"]) and float(got["val/acc"]) == float(
        expected["val/acc"]
    )
    # counted in one pass (curve_counts), so one update per block: the epoch's first batch, then the other 12
    assert buffered.auroc_updates == 2


class CountedAccuracy(MulticlassAccuracy):
    """Counts the update calls of every instance (the train metric and its per-step twin)."""

    calls = 0

    def update(self, preds: Tensor, target: Tensor) -> None:
        CountedAccuracy.calls += 1
        super().update(preds, target)


class StepValues(Classifier):
    """Per-step train values over sums (stat scores), lists of samples (exact AUROC, AP), a max state, a wrapper."""

    def __init__(self, **kwargs: Any) -> None:
        metrics = {
            **classification_metrics(),
            "counted": CountedAccuracy(NUM_CLASSES, top_k=2),  # its own compute group
            "meanmax": MeanAndMax(),
            "minmax": MinMaxMetric(MulticlassAccuracy(NUM_CLASSES)),
        }
        super().__init__({"train": metrics}, lr=0.0, prog_bar=(), **kwargs)


class OneElement(Metric):
    """A sum whose result has one element but one dimension: torchmetrics' compute squeezes it."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros(1), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        self.total += (preds.argmax(dim=1) == target).sum()

    def compute(self) -> Tensor:
        return self.total


def test_step_values_are_squeezed_as_compute_squeezes_them() -> None:
    data = classification_data(40, seed=532)
    model = Classifier({"train": {"hits": OneElement()}}, lr=0.0, log_train_step=True, prog_bar=())
    logger = RecordingLogger()
    make_trainer(logger=logger, log_every_n_steps=1, limit_val_batches=0).fit(model, loader(data, batch_size=16))
    preds, target = predict_all(model, data)
    hits = (preds.argmax(dim=1) == target).float()
    assert logger.values("train/hits_step") == [float(hits[i : i + 16].sum()) for i in range(0, 40, 16)]
    assert float(model.epoch_metrics["train/hits"]) == float(hits.sum())


class TestMergedStepValues:
    """Per-step values come from the batch's own update, which is merged into the epoch's state."""

    DATA = classification_data(16 * 23 + 5, seed=520)  # uneven last batch

    def fit(self, model: StepValues, every: int) -> RecordingLogger:
        logger = RecordingLogger()
        make_trainer(logger=logger, log_every_n_steps=every, limit_val_batches=0).fit(
            model, loader(self.DATA, batch_size=16)
        )
        return logger

    @pytest.mark.parametrize("every", [1, 3])
    def test_epoch_values_equal_unbuffered_ones_exactly(self, every: int) -> None:
        merged, plain = StepValues(log_train_step=True), StepValues(buffer_batches=1)
        plain.load_state_dict(merged.state_dict())
        self.fit(merged, every), self.fit(plain, every)
        assert set(merged.epoch_metrics) == set(plain.epoch_metrics)
        for name, value in plain.epoch_metrics.items():  # the same updates in the same order: bit for bit
            assert torch.equal(merged.epoch_metrics[name], value), name
        preds, target = predict_all(merged, self.DATA)
        whole = multiclass_auroc(preds, target, num_classes=NUM_CLASSES, thresholds=None)
        assert float(merged.epoch_metrics["train/auroc"]) == pytest.approx(float(whole), abs=1e-6)
        assert torch.equal(
            merged.epoch_metrics["train/confmat"], multiclass_confusion_matrix(preds, target, num_classes=NUM_CLASSES)
        )

    def test_step_values_are_each_batch_own_and_one_update_per_step(self) -> None:
        model = StepValues(log_train_step=True)
        CountedAccuracy.calls = 0
        logger = self.fit(model, every=1)
        batches = len(loader(self.DATA, batch_size=16))
        assert CountedAccuracy.calls == batches  # the twin's update counts for the epoch too
        preds, target = predict_all(model, self.DATA)
        expected = [
            float(multiclass_auroc(preds[i : i + 16], target[i : i + 16], num_classes=NUM_CLASSES, thresholds=None))
            for i in range(0, len(target), 16)
        ]
        assert logger.values("train/auroc_step") == pytest.approx(expected, abs=1e-6)
        assert len(logger.values("train/minmax/raw_step")) == batches  # a wrapper's step values too
        # a compute group's members (accuracy, F1 share the stat scores reset in place each step)
        for name, functional in (("acc", multiclass_accuracy), ("f1", multiclass_f1_score)):
            per_batch = [
                float(functional(preds[i : i + 16], target[i : i + 16], num_classes=NUM_CLASSES))
                for i in range(0, len(target), 16)
            ]
            assert logger.values(f"train/{name}_step") == pytest.approx(per_batch, abs=1e-6), name
