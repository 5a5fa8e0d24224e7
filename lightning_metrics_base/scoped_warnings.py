"""Warning filters that live only while a `Trainer` runs the module, then are taken back exactly."""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Any


class ScopedIgnores:
    """Adds ``ignore`` filters one message at a time and removes exactly those entries on `clear`.

    Lightning advises ``sync_dist=True`` for every epoch value logged under DDP, at a point (after
    the epoch-end hooks return) that no ``catch_warnings`` block can surround. The module's epoch
    values are already synced, so the advice is wrong for them: it is silenced for their names only,
    from the first time each is logged until the trainer's ``teardown``, and the user's program
    finds ``warnings.filters`` as it was.

    Examples:
        >>> import warnings
        >>> before = list(warnings.filters)
        >>> quiet = ScopedIgnores()
        >>> quiet.ignore_sync_advice("val/acc")
        >>> len(warnings.filters) == len(before) + 1
        True
        >>> quiet.clear()
        >>> warnings.filters == before
        True
    """

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}

    def ignore_sync_advice(self, name: str) -> None:
        """Silence Lightning's ``sync_dist=True`` advice for the logged name ``name``."""
        if name in self._entries:
            return
        pattern = rf"It is recommended to use `self\.log\({re.escape(repr(name))}, \.\.\., sync_dist=True\)`"
        warnings.filterwarnings("ignore", message=pattern)
        self._entries[name] = warnings.filters[0]

    def clear(self) -> None:
        """Remove every filter added here."""
        for entry in self._entries.values():
            with contextlib.suppress(ValueError):
                warnings.filters.remove(entry)  # type: ignore[attr-defined]
        if self._entries:
            mutated = getattr(warnings, "_filters_mutated", None)  # invalidates the once-registries
            if mutated is not None:
                mutated()
        self._entries.clear()

    def __getstate__(self) -> dict[str, Any]:
        # filters belong to the process that added them; a pickled copy (ddp_spawn) starts empty
        return {"_entries": {}}
