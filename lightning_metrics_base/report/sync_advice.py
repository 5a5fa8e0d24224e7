"""Lightning's ``sync_dist=True`` advice, kept from the module's own epoch values while a `Trainer` runs it.

Under DDP Lightning advises ``self.log(name, ..., sync_dist=True)`` for every epoch value logged
without it, after the epoch-end hooks return, where no ``catch_warnings`` block can surround it. The
module's epoch values are synced already (each metric state is gathered once), so the advice is wrong
for them, and following it would cost one collective per value.

Lightning says each such advice once per process: it keeps the messages said in a cache and skips
any message found there. `SilencedSyncAdvice` puts the advice for the module's names into that cache
before they are logged and takes out exactly the messages it put there at the trainer's
``teardown``. Python's ``warnings`` filters are never touched. Should a Lightning release word the
advice differently or keep its cache elsewhere, the advice simply shows again.
"""

from __future__ import annotations

from typing import Any

from lightning_metrics_base._face import LIGHTNING, Face
from lightning_metrics_base._internals.lightning import sync_advice_cache as advice_cache


def sync_advice(name: str) -> str:
    """Lightning's advice for the epoch value ``name`` logged without ``sync_dist=True``, word for word.

    Examples:
        >>> sync_advice("val/acc")[:60]
        "It is recommended to use `self.log('val/acc', ..., sync_dist"
    """
    return (
        f"It is recommended to use `self.log({name!r}, ..., sync_dist=True)`"
        " when logging on epoch level in distributed setting to accumulate the metric across devices."
    )


class SilencedSyncAdvice:
    """Marks Lightning's advice for given names as said, and takes back exactly those marks on `restore`.

    Examples:
        >>> cache = advice_cache()
        >>> before = set(cache)
        >>> silenced = SilencedSyncAdvice()
        >>> silenced.silence("val/acc")
        >>> sync_advice("val/acc") in cache
        True
        >>> silenced.restore()
        >>> cache == before
        True
    """

    def __init__(self, face: Face = LIGHTNING) -> None:
        self._added: set[str] = set()
        self._face = face

    def silence(self, name: str) -> None:
        """Keep Lightning from advising ``sync_dist=True`` for the logged name ``name``."""
        message = sync_advice(name)
        if message in self._added:
            return
        cache = advice_cache(self._face)
        if cache is not None and message not in cache:  # a message said before stays said
            cache.add(message)
            self._added.add(message)

    def restore(self) -> None:
        """Take back every mark made here: Lightning's cache is as it was before."""
        cache = advice_cache(self._face)
        if cache is not None:
            cache.difference_update(self._added)
        self._added.clear()

    def __getstate__(self) -> dict[str, Any]:
        # the marks belong to the process that made them; a pickled copy (ddp_spawn) starts with none
        return {"_added": set(), "_face": self._face}
