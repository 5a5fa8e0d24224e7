"""The ``lightning`` face: the package's classes on ``lightning.pytorch``'s `LightningModule` and `Callback`.

``from lightning_metrics_base import MetricAwareModule, MetricLogCheck`` gives these. Their bodies are
written once, in ``module.py`` (with ``hooks.py``) and ``log_check.py``; this face puts Lightning's
base class last and hands them its namespace. `lightning_metrics_base.pytorch_lightning` is the same
over ``pytorch_lightning``.
"""

from __future__ import annotations

from typing import ClassVar

from lightning.pytorch import Callback, LightningModule

from lightning_metrics_base import log_check, module
from lightning_metrics_base._face import LIGHTNING, Face

# what TorchScript must skip: the LightningModule's own list and the module's properties
_UNUSED_BY_TORCHSCRIPT = [*LightningModule.__jit_unused_properties__, *module.MetricAwareModule.UNUSED_BY_TORCHSCRIPT]


class MetricAwareModule(module.MetricAwareModule, LightningModule):
    __doc__ = module.MetricAwareModule.__doc__
    _face = LIGHTNING
    # TorchScript reads the annotations of the first class of the chain that has any, and before torch 2.2
    # cannot read them as strings (as the class body's are, written with postponed annotations)
    __annotations__ = {"_face": ClassVar[Face]}
    _lightning_log = LightningModule.log
    __jit_unused_properties__ = _UNUSED_BY_TORCHSCRIPT


class MetricLogCheck(log_check.MetricLogCheck, Callback):
    __doc__ = log_check.MetricLogCheck.__doc__
    _face = LIGHTNING
