"""Turn computed metric results into logged names: scalars for the logger, the rest kept whole."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor


def flatten_result(
    name: str,
    value: Any,
    sep: str = "/",
    labels: Sequence[str] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split one metric result into loggable scalars and values kept whole.

    A scalar keeps ``name``; a 1-D tensor gives one scalar per element, named
    ``{name}{sep}{label}`` with ``labels[i]`` when given, else the index; a dict gives one entry
    per key, ``{name}{sep}{key}``, flattened the same way; a tensor of two or more dimensions
    is not a scalar and is returned in the second dict under ``name``; a list or tuple (curves
    such as ROC's ``(fpr, tpr, thresholds)``) is kept element by element, never logged.

    Args:
        name: the full name of the result, e.g. ``"val/acc"``.
        value: what ``Metric.compute()`` returned.
        sep: the separator placed before an element label or a dict key.
        labels: names for the elements of a 1-D result (e.g. class names).

    Returns:
        ``(scalars, kept)``: 0-d tensors to log, and every tensor of the result by name
        (scalars included, so ``kept`` holds the full result).

    Raises:
        TypeError: the result is neither a tensor, a number, a dict nor a sequence of tensors.

    Example:
        >>> import torch
        >>> scalars, kept = flatten_result("val/per_class", torch.tensor([0.5, 1.0]), labels=["cat", "dog"])
        >>> sorted(scalars)
        ['val/per_class/cat', 'val/per_class/dog']
        >>> kept["val/per_class"].tolist()
        [0.5, 1.0]
        >>> scalars, kept = flatten_result("val/confmat", torch.eye(2))
        >>> scalars, kept["val/confmat"].shape
        ({}, torch.Size([2, 2]))
    """
    scalars: dict[str, Tensor] = {}
    kept: dict[str, Tensor] = {}
    _flatten(name, value, sep, labels, scalars, kept)
    return scalars, kept


def _flatten(
    name: str,
    value: Any,
    sep: str,
    labels: Sequence[str] | None,
    scalars: dict[str, Tensor],
    kept: dict[str, Tensor],
) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(value)
    if isinstance(value, Tensor):
        kept[name] = value
        if value.ndim == 0:
            scalars[name] = value
        elif value.ndim == 1:
            element_names = labels if labels is not None and len(labels) == value.numel() else range(value.numel())
            for label, element in zip(element_names, value.unbind(), strict=True):
                scalars[f"{name}{sep}{label}"] = element
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{name}{sep}{key}", item, sep, None, scalars, kept)
        return
    if isinstance(value, (list, tuple)):
        # Curves such as ROC's (fpr, tpr, thresholds): kept for plots, never logged as scalars.
        for index, item in enumerate(value):
            _flatten(f"{name}{sep}{index}", item, sep, None, {}, kept)
        return
    raise TypeError(f"{name}: cannot log a metric result of type {type(value).__name__}.")
