"""Hooks whose work no subclass can disable, whatever class shape it comes in.

A base class marks its hook methods with `module_work` and calls `keep_work` from
``__init_subclass__``. `keep_work` looks at what the subclass's MRO resolves for each kept hook: where
that is not the base's own method (an override in the subclass, in a parent or in a mixin placed
before the base, with or without ``super()``), it installs a wrapper on the subclass that runs the
base's work first and then the resolved hook. The work runs exactly once per hook call: a ``super()``
call that reaches the base method (or an outer wrapper) while the work of that call is done skips it.

This file composes functions; it decides nothing about what the work is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

Hook = TypeVar("Hook", bound=Callable[..., Any])

_MARK = "_runs_module_work"


def module_work(hook: Hook) -> Hook:
    """Mark a base class's hook method as the work that `keep_work` keeps; skipped when already done in this call.

    The instance needs a ``_hooks_in_progress`` set (the names of the kept hooks running now).

    Examples:
        >>> class Base:
        ...     def __init__(self):
        ...         self._hooks_in_progress, self.calls = set(), []
        ...     @module_work
        ...     def on_epoch_end(self):
        ...         self.calls.append("work")
        >>> base = Base(); base.on_epoch_end(); base.calls
        ['work']
    """
    name = hook.__name__

    @functools.wraps(hook)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if name not in self._hooks_in_progress:
            return hook(self, *args, **kwargs)
        return None

    setattr(run, _MARK, True)
    return run  # type: ignore[return-value]


def keep_work(cls: type, base: type, names: Iterable[str]) -> None:
    """Make each hook of ``names`` that ``cls`` resolves to something other than ``base``'s method run its work first.

    Call it from ``base.__init_subclass__``.

    Examples:
        >>> class Base:
        ...     def __init__(self):
        ...         self._hooks_in_progress, self.calls = set(), []
        ...     @module_work
        ...     def on_epoch_end(self):
        ...         self.calls.append("work")
        ...     def __init_subclass__(cls, **kwargs):
        ...         keep_work(cls, Base, ["on_epoch_end"])
        >>> class Mixin:
        ...     def on_epoch_end(self):
        ...         self.calls.append("mixin")
        >>> class User(Mixin, Base):
        ...     pass
        >>> user = User(); user.on_epoch_end(); user.calls
        ['work', 'mixin']
    """
    for name in names:
        resolved = getattr(cls, name, None)
        if callable(resolved) and not getattr(resolved, _MARK, False):
            setattr(cls, name, _work_then(name, getattr(base, name), resolved))


def _work_then(name: str, work: Callable[..., Any], override: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(override)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        running = self._hooks_in_progress
        if name in running:  # reached through `super()` from an outer wrapper: the work is done
            return override(self, *args, **kwargs)
        work(self, *args, **kwargs)
        running.add(name)
        try:
            return override(self, *args, **kwargs)
        finally:
            running.discard(name)

    setattr(hook, _MARK, True)
    return hook
