"""The ``pytorch_lightning`` face: the package for projects that import ``pytorch_lightning``.

Lightning ships one framework under two names, and a ``pytorch_lightning.Trainer`` refuses a module
built on ``lightning.LightningModule`` ("model must be a LightningModule ..., got ..."). A project that
imports ``pytorch_lightning`` imports the package from here::

    from lightning_metrics_base.pytorch_lightning import MetricAwareModule, MetricLogCheck

The classes are the ones of `lightning_metrics_base`, built on ``pytorch_lightning``'s
`LightningModule` and `Callback`: the same constructor, behaviour, logged names and checkpoints (a
checkpoint saved under one face loads under the other). This module never imports ``lightning``.
"""

from __future__ import annotations

from typing import ClassVar

try:
    import pytorch_lightning
except ImportError as err:  # pragma: no cover - exercised in a subprocess without the package
    raise ImportError(
        "lightning_metrics_base.pytorch_lightning needs pytorch-lightning, which is not installed:"
        ' pip install "lightning-metrics-base[pytorch-lightning]" (or import the lightning face:'
        " `from lightning_metrics_base import MetricAwareModule`)."
    ) from err

from lightning_metrics_base import __version__, log_check, module
from lightning_metrics_base._face import PYTORCH_LIGHTNING, Face
from lightning_metrics_base.report.errors import MetricComputeError, MetricUpdateError

__all__ = ["MetricAwareModule", "MetricComputeError", "MetricLogCheck", "MetricUpdateError", "__version__"]

_LightningModule = pytorch_lightning.LightningModule


# what TorchScript must skip: the LightningModule's own list and the module's properties
_UNUSED_BY_TORCHSCRIPT = [*_LightningModule.__jit_unused_properties__, *module.MetricAwareModule.UNUSED_BY_TORCHSCRIPT]


class MetricAwareModule(  # type: ignore[misc]  # noqa: D101 - the body's docstring is the class's; typed on lightning's
    module.MetricAwareModule, _LightningModule
):
    __doc__ = module.MetricAwareModule.__doc__
    _face = PYTORCH_LIGHTNING
    # TorchScript reads the annotations of the first class of the chain that has any, and before torch 2.2
    # cannot read them as strings (as the class body's are, written with postponed annotations)
    __annotations__ = {"_face": ClassVar[Face]}
    _lightning_log = _LightningModule.log
    __jit_unused_properties__ = _UNUSED_BY_TORCHSCRIPT


class MetricLogCheck(  # type: ignore[misc]  # noqa: D101 - the body's docstring is the class's; typed on lightning's
    log_check.MetricLogCheck, pytorch_lightning.Callback
):
    __doc__ = log_check.MetricLogCheck.__doc__
    _face = PYTORCH_LIGHTNING
