"""Each function of the two `*_internals.py` files, against the installed torchmetrics and Lightning.

CI runs this file at the lowest and the latest versions the package declares: when a release moves a
private name, a test here fails and names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import Classifier, classification_data, loader, make_trainer
from lightning import LightningModule
from lightning.pytorch.callbacks import Callback
from torchmetrics import MetricCollection
from torchmetrics.aggregation import MaxMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score, MulticlassPrecision
from torchmetrics.regression import MeanSquaredError, PearsonCorrCoef
from torchmetrics.utilities.data import dim_zero_sum
from torchmetrics.wrappers import ClasswiseWrapper, MinMaxMetric

from lightning_metrics_base._internals import lightning as lightning_internals
from lightning_metrics_base._internals import torchmetrics as internals

PACKAGE = Path(internals.__file__).parents[1]


def grouped() -> MetricCollection:
    collection = MetricCollection(
        {"acc": MulticlassAccuracy(3), "precision": MulticlassPrecision(3), "f1": MulticlassF1Score(3)}
    )
    internals.set_compute_groups(collection, [["acc", "precision"], ["f1"]])
    return collection


class TestTorchmetricsInternals:
    def test_state_defaults(self) -> None:
        assert set(internals.state_defaults(MulticlassAccuracy(4))) == {"tp", "fp", "tn", "fn"}

    def test_runtime_attributes_are_what_a_run_changes(self) -> None:
        # a metric that was updated, called and computed differs from a fresh one only in these
        fresh, used = MinMaxMetric(MulticlassAccuracy(4)), MinMaxMetric(MulticlassAccuracy(4))
        used(torch.randn(8, 4), torch.randint(0, 4, (8,)))
        used.update(torch.randn(8, 4), torch.randint(0, 4, (8,)))
        used.compute()

        def plain(metric: Any) -> dict[str, Any]:
            return {name: value for name, value in vars(metric).items() if isinstance(value, (bool, int, float))}

        changed = {
            name
            for before, after in ((fresh, used), (fresh._base_metric, used._base_metric))
            for name, value in plain(after).items()
            if plain(before).get(name) != value
        }
        assert "_update_count" in changed  # the child's: the wrapper counts nothing itself
        assert all(name.startswith(internals.RUNTIME_ATTRIBUTE_PREFIXES) for name in changed), changed

    def test_set_compute_groups_and_read_them_back(self) -> None:
        collection = grouped()
        assert internals.compute_groups(collection) == [["acc", "precision"], ["f1"]]
        collection.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        members = dict(collection.items(keep_base=True, copy_state=False))
        assert members["precision"].tp is members["acc"].tp  # only the group's first metric was updated
        assert members["f1"].tp is not members["acc"].tp and members["f1"].update_count == 1

    def test_groups_are_never_merged_from_states(self) -> None:
        collection = MetricCollection({"acc": MulticlassAccuracy(3), "top2": MulticlassAccuracy(3, top_k=2)})
        internals.set_compute_groups(collection, [["acc"], ["top2"]])
        collection.update(torch.tensor([[1.5, -0.3, -2.2], [0.6, -1.1, -1.4]]), torch.tensor([0, 0]))
        assert internals.compute_groups(collection) == [["acc"], ["top2"]]

    def test_a_collection_without_groups_keeps_none(self) -> None:
        collection = MetricCollection({"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3)}, compute_groups=False)
        internals.set_compute_groups(collection, [["acc", "f1"]])
        assert internals.compute_groups(collection) == [["acc"], ["f1"]]

    def test_relink_group_states(self) -> None:
        collection = grouped()
        members = dict(collection.items(keep_base=True, copy_state=False))
        members["precision"].tp = members["precision"].tp.clone()  # broken apart, as a gather does
        internals.relink_group_states(collection)
        assert members["precision"].tp is members["acc"].tp

    def test_relink_group_states_after_updates_new_or_in_place(self) -> None:
        collection = grouped()
        members = dict(internals.members(collection))
        collection.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        internals.relink_group_states(collection)
        assert members["precision"].tp is members["acc"].tp and members["precision"].update_count == 1
        members["acc"].update(torch.tensor([2]), torch.tensor([2]))  # stat scores: new state tensors
        assert members["precision"].tp is not members["acc"].tp
        internals.relink_group_states(collection)
        assert members["precision"].tp is members["acc"].tp and members["precision"].update_count == 2
        shared = members["acc"].tp
        shared += 1  # a state changed in place stays shared
        internals.relink_group_states(collection)
        assert members["precision"].tp is shared and torch.equal(members["f1"].tp, torch.tensor([1, 1, 1]))

    def test_members_leaves_group_states_as_they_are(self) -> None:
        collection = grouped()
        apart = dict(internals.members(collection))
        assert list(apart) == list(collection.keys(keep_base=True))
        apart["precision"].tp = apart["precision"].tp.clone()
        internals.members(collection)  # unlike items() and values(), no relink
        assert apart["precision"].tp is not apart["acc"].tp
        collection.values(copy_state=False)
        assert apart["precision"].tp is apart["acc"].tp

    @pytest.mark.parametrize(
        "make",
        [lambda: MulticlassAccuracy(3), lambda: PearsonCorrCoef(), lambda: MulticlassAUROC(3), lambda: MaxMetric()],
    )
    def test_reset_in_place_is_reset(self, make: Any) -> None:
        fed = {
            MulticlassAccuracy: (torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]]), torch.tensor([1, 2])),
            PearsonCorrCoef: (torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 2.0])),
            MulticlassAUROC: (torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]]), torch.tensor([1, 2])),
            MaxMetric: (torch.tensor([3.0, 5.0]),),
        }
        in_place, plain = make(), make()
        inputs = fed[type(in_place)]
        for metric in (in_place, plain):
            metric.update(*inputs)
            metric.compute()
        held = {name: getattr(in_place, name) for name in internals.state_defaults(in_place)}
        internals.reset_in_place(in_place)
        plain.reset()
        for name in internals.state_defaults(plain):
            expected, got = getattr(plain, name), getattr(in_place, name)
            assert type(got) is type(expected) and (got == [] if isinstance(got, list) else torch.equal(got, expected))
            if isinstance(got, list) or held[name].shape == expected.shape:  # else a new tensor, as reset gives
                assert got is held[name]  # the same objects: members sharing them keep sharing them
        assert in_place.update_count == 0 and not in_place.update_called
        for metric in (in_place, plain):
            metric.update(*inputs)
        assert torch.equal(in_place.compute(), plain.compute())  # nothing cached survives

    def test_reset_in_place_of_a_metric_with_its_own_reset_is_its_reset(self) -> None:
        in_place, plain = MinMaxMetric(MulticlassAccuracy(3)), MinMaxMetric(MulticlassAccuracy(3))
        for wrapper, reset in ((in_place, internals.reset_in_place), (plain, MinMaxMetric.reset)):
            wrapper.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
            wrapper.compute()
            reset(wrapper)  # the wrapper resets its child
            wrapper.update(torch.tensor([2, 2]), torch.tensor([2, 2]))
        got, expected = in_place.compute(), plain.compute()
        assert {key: float(value) for key, value in got.items()} == {
            key: float(value) for key, value in expected.items()
        }
        assert float(got["raw"]) == 1.0

    def test_unwrapped_compute_is_compute_before_its_squeeze(self) -> None:
        metric = MulticlassAccuracy(3, average=None)
        metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
        assert torch.equal(internals.unwrapped_compute(metric), metric.compute())
        total = SumMetric()
        total.update(torch.tensor([2.0, 3.0]))
        assert float(internals.unwrapped_compute(total)) == float(total.compute()) == 5.0
        assert total.compute().ndim == 0

    def test_invalidate_cached_results(self) -> None:
        metric = MeanSquaredError()
        metric.update(torch.ones(2), torch.zeros(2))
        first = metric.compute()
        metric.update(torch.zeros(2), torch.zeros(2))  # a plain update invalidates the cache too
        internals.invalidate_cached_results([metric])
        assert float(metric.compute()) != float(first)

    def test_state_reductions(self) -> None:
        assert set(internals.state_reductions(MeanSquaredError())) == {dim_zero_sum}
        assert dim_zero_sum not in internals.state_reductions(PearsonCorrCoef())[:1]

    def test_sync_requested_and_is_synced(self) -> None:
        metric = MulticlassAccuracy(4)
        assert internals.sync_requested(metric) and not internals.sync_requested(
            MulticlassAccuracy(4, sync_on_compute=False)
        )
        internals.set_sync_requested(metric, False)
        assert not internals.sync_requested(metric)
        metric.update(torch.eye(4), torch.arange(4))
        metric.sync(should_sync=True, distributed_available=lambda: False)
        assert internals.is_synced(metric) is False  # nothing to gather on one process

    def test_dtype(self) -> None:
        metric = MeanSquaredError()
        internals.set_dtype(metric, torch.float64)
        assert internals.dtype_of(metric) == torch.float64
        metric.set_dtype(torch.float32)  # the public setter writes what dtype_of reads
        assert internals.dtype_of(metric) == torch.float32

    def test_reductions_by_state(self) -> None:
        assert internals.reductions_by_state(MeanSquaredError()) == {
            "sum_squared_error": dim_zero_sum,
            "total": dim_zero_sum,
        }

    def test_count_update(self) -> None:
        metric = MeanSquaredError()
        metric.sum_squared_error += 4.0  # a state changed without `update`
        metric.total += 2
        internals.count_update(metric)
        assert metric.update_count == 1 and float(metric.compute()) == 2.0

    def test_classwise_keys(self) -> None:
        wrapper = ClasswiseWrapper(MulticlassAccuracy(3, average=None), labels=["a", "b", "c"])
        wrapper.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
        assert internals.classwise_keys(wrapper, 3) == list(wrapper.compute())


class Records(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
        self.seen.append(("step", lightning_internals.batches_that_stepped(trainer)))
        self.seen.append(("updates", lightning_internals.should_update_logs(trainer)))


class TestLightningInternals:
    def test_steps_and_log_cadence(self) -> None:
        records = Records()
        trainer = make_trainer(max_epochs=2, callbacks=[records], log_every_n_steps=2)
        trainer.fit(Classifier(), loader(classification_data(96, seed=3), batch_size=32))
        steps = [value for kind, value in records.seen if kind == "step"]
        assert steps == [0, 1, 2, 3, 4, 5]  # the step Lightning logs this batch's values at
        updates = [value for kind, value in records.seen if kind == "updates"]
        assert updates == [step % 2 == 1 for step in steps]  # every `log_every_n_steps`
        assert lightning_internals.epoch_end_step(trainer, "train") == 5  # the train epoch's values are one back
        assert lightning_internals.epoch_end_step(trainer, "val") == 6

    def test_hook_name_attribute(self) -> None:
        hook_name = lightning_internals.HOOK_NAME_ATTRIBUTE

        class Sees(Classifier):
            def training_step(self, batch: Any, batch_idx: int) -> Any:
                self.seen.append(lightning_internals.current_hook(self))
                return super().training_step(batch, batch_idx)

        # a plain instance attribute (no class attribute or descriptor, not a parameter, buffer or module)
        plain = LightningModule()
        assert hook_name in vars(plain) and vars(plain)[hook_name] is None and not hasattr(LightningModule, hook_name)
        model = Sees()
        model.seen = []
        make_trainer(max_epochs=1).fit(model, loader(classification_data(64, seed=5), batch_size=32))
        assert model.seen == ["training_step", "training_step"]
        assert lightning_internals.current_hook(model) is None and vars(model)[hook_name] is None

    def test_hparams_initial_is_what_loggers_receive(self) -> None:
        class Saves(Classifier):
            def __init__(self, lr: float = 0.05) -> None:
                super().__init__(lr=lr)
                self.save_hyperparameters()

        model = Saves(lr=0.5)
        lightning_internals.hparams_initial(model)["lr"] = 0.25
        assert model.hparams_initial["lr"] == 0.25 and model.hparams["lr"] == 0.5

    def test_sync_advice_cache(self) -> None:
        cache = lightning_internals.sync_advice_cache()
        assert isinstance(cache, set)
        from lightning.pytorch.utilities.warnings import PossibleUserWarning  # noqa: F401 - the cache's users

    def test_takes_suffixed_names(self) -> None:
        class LogsSuffixed(Classifier):
            def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
                self.log("mine/dataloader_idx_0", 1.0, add_dataloader_idx=False)

        data = loader(classification_data(32, seed=4), batch_size=32)
        try:
            make_trainer().validate(LogsSuffixed(), data, verbose=False)
            taken = True
        except Exception as err:  # Lightning's MisconfigurationException
            assert "dataloader_idx" in str(err)
            taken = False
        assert lightning_internals.takes_suffixed_names() is taken

    @pytest.mark.parametrize(
        ("version", "taken"), [("2.5.3rc1", True), ("2.5.2", False), ("2.10.0", True), ("2.6.6.post1", True)]
    )
    def test_takes_suffixed_names_reads_the_version_as_a_version(
        self, version: str, taken: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import lightning

        monkeypatch.setattr(lightning, "__version__", version)
        assert lightning_internals.takes_suffixed_names() is taken

    def test_no_other_file_touches_a_private_name(self) -> None:
        import re

        private = re.compile(
            r"\.(_reductions|_computed|_merge_compute_groups|_state_is_copy|_enable_compute_groups|_groups_checked"
            r"|_compute_groups_create_state_ref|_init_compute_groups|_to_sync|_is_synced|_defaults|_dtype"
            r"|_convert_output|_logger_connector|_batches_that_stepped|_hparams_initial|warning_cache"
            r"|_update_count|_forward_cache|_current_fx_name|fit_loop\.epoch_loop)\b"
        )
        offenders = [
            f"{path.name}:{number}"
            for path in sorted(PACKAGE.rglob("*.py"))
            if "_internals" not in path.relative_to(PACKAGE).parts
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if private.search(line)
        ]
        assert offenders == []
