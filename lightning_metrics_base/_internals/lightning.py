"""Every private name of Lightning the package relies on, behind one small function each.

When a Lightning release moves one of them, this is the file to change; ``tests/test_internals.py``
checks each function against the installed Lightning (CI runs it at the lowest and latest versions
that ``pyproject.toml`` declares). No other file of the package touches a private Lightning name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_metrics_base._face import LIGHTNING

if TYPE_CHECKING:
    from lightning_metrics_base._face import Face


def should_update_logs(trainer: Any) -> bool:
    """Whether Lightning sends per-step values to the loggers at this step (every ``log_every_n_steps``).

    Relies on ``trainer._logger_connector.should_update_logs`` (Lightning 2.0 and later); ``True``
    where it is missing, so a per-step value is logged rather than lost.
    """
    return bool(getattr(getattr(trainer, "_logger_connector", None), "should_update_logs", True))


def batches_that_stepped(trainer: Any) -> int:
    """The step at which Lightning logs values now: the count of optimizer steps taken in the fit so far.

    Relies on ``trainer.fit_loop.epoch_loop._batches_that_stepped`` (Lightning 1.6 and later), which the
    logger connector uses as the step of logged metrics.
    """
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def epoch_end_step(trainer: Any, stage: str) -> int:
    """The step at which Lightning logs the epoch-end values of ``stage``.

    The train epoch's values are logged one step back (Lightning decrements ``_batches_that_stepped``
    around ``update_train_epoch_metrics`` in ``FitLoop.on_advance_end``, Lightning 1.6 and later), the
    evaluation stages' at `batches_that_stepped`.
    """
    step = batches_that_stepped(trainer)
    return max(step - 1, 0) if stage == "train" else step


def hparams_initial(module: Any) -> dict[str, Any]:
    """The hyperparameters loggers receive (``LightningModule._hparams_initial``, which ``hparams_initial`` copies).

    Lightning 1.x and 2.x keep it as an attribute set by ``save_hyperparameters``.
    """
    return vars(module)["_hparams_initial"]  # type: ignore[no-any-return]


def sync_advice_cache(face: Face = LIGHTNING) -> set[str] | None:
    """The set in which the namespace ``face`` keeps the ``sync_dist`` advice it has said once, or ``None``.

    Relies on ``<root>.trainer.connectors.logger_connector.result.warning_cache`` (a ``WarningCache``, a
    ``set`` subclass, Lightning 2.0 and later), in ``lightning.pytorch`` or ``pytorch_lightning``.
    """
    try:
        result = face.module("trainer.connectors.logger_connector.result")
    except ImportError:  # pragma: no cover - the face's namespace is installed
        return None
    cache = getattr(result, "warning_cache", None)
    return cache if isinstance(cache, set) else None


HOOK_NAME_ATTRIBUTE = "_current_fx_name"
"""The attribute in which a `LightningModule` holds the name of the hook Lightning is running now.

Lightning 2.x sets it (a string, or ``None``) before and after every module and callback hook it
calls, some 60 times a training step; ``LightningModule.__init__`` makes it a plain attribute, never a
parameter, buffer or submodule."""


def current_hook(module: Any) -> str | None:
    """The name of the hook Lightning is running now (``LightningModule._current_fx_name``), or ``None``.

    Lightning 2.x sets it around every module and callback hook it calls; ``self.log`` reads it to find
    its defaults.
    """
    name = getattr(module, HOOK_NAME_ATTRIBUTE, None)
    return name if isinstance(name, str) else None


def takes_suffixed_names(face: Face = LIGHTNING) -> bool:
    """Whether ``LightningModule.log`` takes a name holding ``/dataloader_idx_`` with ``add_dataloader_idx=False``.

    Lightning 2.5.3 and later do; earlier versions refuse any such name. Read from Lightning's version.
    """
    from packaging.version import Version  # a dependency of Lightning's

    return Version(face.version).release[:3] >= (2, 5, 3)  # "2.5.3rc1" is 2.5.3, "2.10.0" later
