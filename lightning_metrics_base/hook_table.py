"""Lightning hooks made from a table of work, whose work survives a subclass's override.

A class lists the hooks it works in as ``{hook name: (work, docstring)}``. `install_hooks` gives the
class one method per entry that does the work; `keep_work` wraps a subclass's override of such a hook
so that the work runs first and the override's result is returned. An override therefore needs no
``super()`` call; one that makes it runs the work twice, so the work must be idempotent.

This file composes functions and returns them; it decides nothing about what the work is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

HookTable = Mapping[str, tuple[Callable[..., None], str]]
"""``{hook name: (work(self, *hook_args), docstring)}``."""

_MARK = "_runs_own_work"


def install_hooks(cls: type, table: HookTable) -> None:
    """Give ``cls`` one method per hook of ``table`` that does the hook's work.

    Examples:
        >>> class Base:
        ...     calls = 0
        >>> install_hooks(Base, {"on_epoch_end": (lambda self: setattr(self, "calls", self.calls + 1), "Counts.")})
        >>> base = Base(); base.on_epoch_end(); base.calls, Base.on_epoch_end.__doc__
        (1, 'Counts.')
    """
    for name, (work, doc) in table.items():
        setattr(cls, name, _base_hook(name, work, doc))


def keep_work(cls: type, table: HookTable) -> None:
    """Wrap each hook of ``table`` that ``cls`` itself defines so the table's work runs before it.

    Call it from ``__init_subclass__``. A hook wrapped once (in a parent class) is not wrapped again.

    Examples:
        >>> class Base:
        ...     calls: list[str] = []
        >>> table = {"on_epoch_end": (lambda self: self.calls.append("work"), "Works.")}
        >>> install_hooks(Base, table)
        >>> class User(Base):
        ...     def on_epoch_end(self):
        ...         self.calls.append("user")
        ...         return "done"
        >>> keep_work(User, table)
        >>> User().on_epoch_end(), Base.calls
        ('done', ['work', 'user'])
    """
    for name, (work, _) in table.items():
        override = cls.__dict__.get(name)
        if callable(override) and not getattr(override, _MARK, False):
            setattr(cls, name, _marked(_work_then(work, override)))


def _base_hook(name: str, work: Callable[..., None], doc: str) -> Callable[..., None]:
    def hook(self: Any, *args: Any, **kwargs: Any) -> None:
        work(self, *args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = doc
    return _marked(hook)


def _work_then(work: Callable[..., None], override: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(override)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        work(self, *args, **kwargs)
        return override(self, *args, **kwargs)

    return hook


def _marked(hook: Callable[..., Any]) -> Callable[..., Any]:
    setattr(hook, _MARK, True)  # the module's work runs in it: never wrap it again
    return hook
