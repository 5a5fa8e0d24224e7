"""Nested containers of tensors: every tensor mapped, every container keeping its type.

A model's outputs and a batch's targets come as tensors, dicts, Hugging Face ``ModelOutput`` objects,
namedtuples, dataclasses, tuples and lists; the module detaches them and the store upcasts them without
changing what a user's ``metric_inputs`` or a metric reads.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from torch import Tensor


def map_tensors(value: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``value`` with ``fn`` applied to every tensor in it, every container keeping its type.

    Containers are dicts and other mappings (a Hugging Face ``ModelOutput`` keeps its attribute
    access), namedtuples (torchvision's ``InceptionOutputs``), dataclasses, tuples and lists.

    Examples:
        >>> import collections, torch
        >>> Out = collections.namedtuple("Out", "logits aux")
        >>> out = map_tensors(Out(torch.ones(1, requires_grad=True), None), torch.Tensor.detach)
        >>> type(out).__name__, out.logits.requires_grad
        ('Out', False)
    """
    if isinstance(value, Tensor):
        return fn(value)
    if type(value) in (dict, list, tuple):  # the common case, first
        if isinstance(value, dict):
            return {key: map_tensors(item, fn) for key, item in value.items()}
        return type(value)(map_tensors(item, fn) for item in value)
    if isinstance(value, Mapping):
        return _map_mapping(value, fn)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(map_tensors(item, fn) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(map_tensors(item, fn) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        copied = copy.copy(value)
        for item in dataclasses.fields(value):
            object.__setattr__(copied, item.name, map_tensors(getattr(value, item.name), fn))
        return copied
    return value


def _map_mapping(value: Mapping[Any, Any], fn: Callable[[Tensor], Tensor]) -> Any:
    mapped = {key: map_tensors(item, fn) for key, item in value.items()}
    if isinstance(value, MutableMapping):
        copied = copy.copy(value)  # keeps the type and its attributes (a `ModelOutput` sets both on assignment)
        for key, item in mapped.items():
            copied[key] = item
        return copied
    try:
        return type(value)(mapped)  # type: ignore[call-arg]
    except TypeError:
        return mapped


def detach(value: Any) -> Any:
    """``value`` with every tensor detached from autograd, every container keeping its type (see `map_tensors`)."""
    return map_tensors(value, Tensor.detach)
