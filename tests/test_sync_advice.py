"""Lightning's sync advice: marked as said for the module's names, the marks taken back exactly."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import torch
from helpers import (
    Classifier,
    classification_data,
    loader,
    make_trainer,
)
from lightning.pytorch.callbacks import Callback

from lightning_metrics_base.report.sync_advice import SilencedSyncAdvice, advice_cache, sync_advice


def test_silence_marks_once_and_restore_takes_back_only_its_own_marks() -> None:
    cache = advice_cache()
    assert cache is not None  # where Lightning keeps what it has said
    said_before = sync_advice("user/value")
    cache.add(said_before)  # Lightning already said this one
    try:
        before = set(cache)
        silenced = SilencedSyncAdvice()
        for name in ("val/acc", "val/acc", "user/value"):
            silenced.silence(name)
        assert cache - before == {sync_advice("val/acc")}
        silenced.restore()
        assert cache == before and said_before in cache  # what was said before stays said
        silenced.restore()  # a second restore changes nothing
        assert cache == before
    finally:
        cache.discard(said_before)


def test_a_pickled_copy_holds_no_marks() -> None:
    silenced = SilencedSyncAdvice()
    silenced.silence("val/f1")
    try:
        copy = pickle.loads(pickle.dumps(silenced))
        copy.restore()  # the copy's restore cannot take back marks made by the original
        assert sync_advice("val/f1") in (advice_cache() or set())
    finally:
        silenced.restore()
    assert sync_advice("val/f1") not in (advice_cache() or set())


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
