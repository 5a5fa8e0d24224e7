"""The metric container: per-dataloader clones, state kept out of checkpoints and out of low precision."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC
from torchmetrics.regression import MeanAbsoluteError

from lightning_metrics_base._internals.torchmetrics import state_defaults
from lightning_metrics_base.configuration.heads import Heads
from lightning_metrics_base.report.errors import MetricComputeError, MetricUpdateError
from lightning_metrics_base.update.metric_store import MetricStore


class TestMetricStore:
    def test_dataloader_clone_is_fresh(self) -> None:
        store = MetricStore({"val": Heads.of(MetricCollection({"mae": MeanAbsoluteError()}))})
        first = store.get("val", 0)
        assert first is not None
        first.update(torch.ones(3), torch.zeros(3))
        second = store.get("val", 2)
        assert second is not None and not second["mae"].update_called
        assert len(store.heads_per_dataloader("val")) == 3
        assert store.get("test") is None and not store.has("test")

    def test_read_feeds_the_buffered_batches_first(self) -> None:
        store = MetricStore({"val": Heads.of(MetricCollection({"mae": MeanAbsoluteError()}))}, buffer_batches=4)
        store.update("val", 0, torch.ones(3), torch.zeros(3))  # the first batch is fed at once
        store.update("val", 0, 3 * torch.ones(3), torch.zeros(3))
        buffered = store.get("val", 0)
        assert buffered is not None and buffered["mae"].update_count == 1  # the second is still in the buffer
        read = store.read("val")
        assert read is buffered and read["mae"].update_count == 2
        assert float(read["mae"].compute()) == 2.0

    def test_flushing_one_stage_makes_no_copy_for_another_stages_dataloaders(self) -> None:
        metrics = MetricCollection({"mae": MeanAbsoluteError()})
        store = MetricStore({"val": Heads.of(metrics), "test": Heads.of(metrics.clone())}, buffer_batches=4)
        for _ in range(2):
            store.update("test", 2, torch.ones(3), torch.zeros(3))  # the test stage's third dataloader
        store.flush("val")
        assert len(store.heads_per_dataloader("val")) == 1  # val has one dataloader: flushing it creates nothing
        assert len(store.heads_per_dataloader("test")) == 3

    def test_state_dict_is_empty_and_loading_ignores_metric_keys(self) -> None:
        store = MetricStore({"val": Heads.of(MetricCollection({"mean": MeanMetric()}))})
        store.get("val", 0)["mean"].persistent(True)  # type: ignore[index]
        assert dict(store.state_dict()) == {}
        holder = torch.nn.Module()
        holder.store = store
        holder.load_state_dict({"store.stages.val_metrics.0.mean.mean_value": torch.tensor(1.0)}, strict=True)
        holder.load_state_dict({}, strict=True)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_float_states_stay_float32(self, dtype: torch.dtype) -> None:
        store = MetricStore(
            {"val": Heads.of(MetricCollection({"mae": MeanAbsoluteError(), "acc": MulticlassAccuracy(3)}))}
        )
        store.to(dtype)
        val = store.get("val")
        assert val is not None
        assert val["mae"].sum_abs_error.dtype == torch.float32
        assert state_defaults(val["mae"])["sum_abs_error"].dtype == torch.float32
        assert val["acc"].tp.dtype == torch.int64
        val.reset()
        assert val["mae"].sum_abs_error.dtype == torch.float32
        store.to(torch.float64)  # a wider cast is kept
        assert val["mae"].sum_abs_error.dtype == torch.float64

    def test_losses_are_sample_weighted_and_reset_per_stage(self) -> None:
        store = MetricStore({})
        store.add_loss("val", 0, {"loss": torch.tensor(1.0), "kl": torch.tensor(0.5)}, 3)
        store.add_loss("val", 0, {"loss": torch.tensor(3.0), "kl": torch.tensor(1.5)}, 1)
        store.add_loss("val", 1, {"loss": torch.tensor(7.0)}, 2)
        store.add_loss("train", 0, {"loss": torch.tensor(2.0)}, 2)
        assert store.pending("val") == [0, 1]
        values = store.compute_epoch("val", 0, reduce=lambda tensor: tensor * 2)  # two identical processes
        assert float(values.losses["loss"]) == pytest.approx(1.5) and float(values.losses["kl"]) == pytest.approx(0.75)
        assert values.metrics == {} and store.pending("val") == [1]
        store.reset("val")
        assert store.pending("val") == [] and store.compute_epoch("val", 1).losses == {}
        assert float(store.compute_epoch("train", 0).losses["loss"]) == 2.0

    def test_update_and_compute_name_the_failing_metric(self) -> None:
        store = MetricStore(
            {"val": Heads.of(MetricCollection({"acc": MulticlassAccuracy(3), "auroc": MulticlassAUROC(3)}))}
        )
        with pytest.raises(MetricUpdateError, match=r"val metric 'acc' failed to update \(dataloader 1\)"):
            store.update("val", 1, torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))
        store.reset("val")
        store.update("val", 0, torch.tensor([[0.2, 0.3, 0.5]]), torch.tensor([1]))
        store.get("val", 0)["auroc"].compute = lambda: 1 / 0  # type: ignore[index]
        with pytest.raises(MetricComputeError, match=r"val metric 'auroc' failed to compute .*\(dataloader 0\)"):
            store.compute_epoch("val", 0)

    def test_step_values_come_from_the_batch_alone(self) -> None:
        store = MetricStore({"train": Heads.of(MetricCollection({"mae": MeanAbsoluteError()}))}, step_values=True)
        assert store.update("train", 0, torch.ones(2), torch.zeros(2), step_values=False) is None
        step = store.update("train", 0, torch.full((2,), 3.0), torch.zeros(2), step_values=True)
        assert step is not None and float(step["mae"][0]) == 3.0
        assert float(store.compute_epoch("train", 0).metrics["mae"][0]) == 2.0
