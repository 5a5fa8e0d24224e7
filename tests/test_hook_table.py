"""Lightning hooks made from a table: the base hooks do the work, and an override keeps it."""

from __future__ import annotations

from typing import Any

from lightning_metrics_base.hook_table import HookTable, install_hooks, keep_work


def record(tag: str) -> Any:
    return lambda self, *args, **kwargs: self.calls.append((tag, args, kwargs))


TABLE: HookTable = {
    "on_epoch_end": (record("work"), "Logs the epoch."),
    "on_batch_end": (record("batch work"), "Logs a batch."),
}


class Base:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        keep_work(cls, TABLE)


install_hooks(Base, TABLE)


class Override(Base):
    def on_epoch_end(self) -> str:
        """The user's own hook."""
        self.calls.append(("user", (), {}))
        return "user result"


class CallsSuper(Base):
    def on_batch_end(self, outputs: Any, batch_idx: int = 0) -> None:
        super().on_batch_end(outputs, batch_idx=batch_idx)  # type: ignore[attr-defined]
        self.calls.append(("user", (), {}))


class Inherits(Override):
    """Defines no hook of its own: the wrapped parent hook is used as it is."""


def test_base_hooks_do_the_work_and_carry_the_docstring() -> None:
    base = Base()
    base.on_batch_end("out", batch_idx=3)  # type: ignore[attr-defined]
    assert base.calls == [("batch work", ("out",), {"batch_idx": 3})]
    assert Base.on_epoch_end.__name__ == "on_epoch_end" and Base.on_epoch_end.__doc__ == "Logs the epoch."  # type: ignore[attr-defined]


def test_an_override_runs_after_the_work_without_super() -> None:
    model = Override()
    assert model.on_epoch_end() == "user result"
    assert [tag for tag, _, _ in model.calls] == ["work", "user"]
    assert Override.on_epoch_end.__doc__ == "The user's own hook."


def test_an_override_calling_super_runs_the_idempotent_work_twice() -> None:
    model = CallsSuper()
    model.on_batch_end("out", 1)
    assert [tag for tag, _, _ in model.calls] == ["batch work", "batch work", "user"]


def test_an_inherited_wrapped_hook_is_not_wrapped_again() -> None:
    model = Inherits()
    model.on_epoch_end()
    assert [tag for tag, _, _ in model.calls] == ["work", "user"]
    assert "on_epoch_end" not in Inherits.__dict__
