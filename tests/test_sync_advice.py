"""Lightning's sync advice: marked as said for the module's names, the marks taken back exactly."""

from __future__ import annotations

import pickle

from lightning_metrics_base.sync_advice import SilencedSyncAdvice, advice_cache, sync_advice


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
