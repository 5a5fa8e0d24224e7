"""What one step hands the module: inputs and target, a loss (or its parts), a sample count, metric inputs.

`BatchHooks` holds the defaults of the hooks through which a subclass says what its batches are; the
functions below check and take apart what those hooks return. Everything here takes values and
returns values; the module calls it between ``forward`` and the metric store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from typing import Any, Literal

import torch
from torch import Tensor


class BatchHooks:
    """The hooks a `MetricAwareModule` subclass may override to say what its batches are, with their defaults.

    In every step the module calls ``unpack_batch``, then ``forward``, ``compute_loss`` and
    ``count_samples``, then ``metric_inputs``, whose result the metrics receive.

    Examples:
        >>> import torch
        >>> hooks = BatchHooks()
        >>> inputs, target = hooks.unpack_batch((torch.zeros(5, 2), torch.ones(5)))
        >>> hooks.count_samples(target), hooks.metric_inputs("preds", "target")
        (5, ('preds', 'target'))
    """

    loss_fn: Callable[[Any, Any], Any] | None  # set by the module's constructor (no class default: see nn.Module)

    def compute_loss(self, preds: Any, target: Any) -> Tensor | Mapping[str, Tensor]:
        """Return the loss of a batch, or ``{"loss": total, **components}``; calls ``loss_fn`` by default.

        Raises:
            NotImplementedError: when no ``loss_fn`` was given and the subclass did not override it.
        """
        loss_fn = getattr(self, "loss_fn", None)
        if loss_fn is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no loss: implement `compute_loss(self, preds, target)`"
                " or pass `loss_fn=` to `MetricAwareModule.__init__`."
            )
        return loss_fn(preds, target)  # type: ignore[no-any-return]

    def unpack_batch(self, batch: Any) -> tuple[Any, Any]:
        """Split a batch into ``(inputs, target)``; by default a 2-element tuple or list.

        Raises:
            TypeError: the batch is not a pair; override ``unpack_batch`` for other batch layouts.
        """
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return batch[0], batch[1]
        kind = f"{type(batch).__name__} of length {len(batch)}" if isinstance(batch, Sized) else type(batch).__name__
        raise TypeError(
            f"{type(self).__name__}.unpack_batch expects an `(inputs, target)` pair, but got a {kind}."
            " Override `unpack_batch(self, batch)` to return `(inputs, target)` for your batches."
        )

    def metric_inputs(self, preds: Any, target: Any) -> tuple[Any, Any]:
        """Return what the metrics receive for a batch; identity by default (override for argmax, sigmoid...)."""
        return preds, target

    def count_samples(self, target: Any) -> int:
        """Return the number of samples in a batch, its weight in the epoch loss.

        The leading dimension of the target tensor, or of the first tensor directly inside a dict,
        tuple or list target; a list or tuple holding no tensor counts its items.

        Raises:
            TypeError: the target holds no tensor to count; override ``count_samples``.
        """
        return samples_in(target, type(self).__name__)


def check_model_outputs(
    preds: Any, target: Any, outputs: tuple[str, ...] | None, by: Literal["forward", "metric_inputs"] = "forward"
) -> None:
    """Check that ``forward``'s result and the target are dicts holding every output (if there are ``outputs``).

    With ``by="metric_inputs"``, the same check of what ``metric_inputs`` returned, each output's metrics
    reading their own key of both dicts.

    Raises:
        ValueError: ``forward`` (or ``metric_inputs``) did not return a dict, or an output is missing
            from it or from the target; the message names the output and the keys present.

    Examples:
        >>> import torch
        >>> check_model_outputs({"cls": torch.zeros(1)}, {"cls": torch.zeros(1)}, ("cls", "age"))
        Traceback (most recent call last):
        ...
        ValueError: output 'age' is missing from what forward returned; its keys: ['cls'].
    """
    if outputs is None:
        return
    checked = (
        (("what forward returned", "forward returned", preds), ("the target", "the target is", target))
        if by == "forward"
        else (
            ("the predictions metric_inputs returned", "metric_inputs returned predictions as", preds),
            ("the target metric_inputs returned", "metric_inputs returned the target as", target),
        )
    )
    for what, returned, value in checked:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{returned} a {type(value).__name__}, but `outputs={outputs}` needs a dict holding every output."
            )
        for output in outputs:
            if output not in value:
                raise ValueError(f"output {output!r} is missing from {what}; its keys: {sorted(map(str, value))}.")


def samples_in(target: Any, owner: str = "MetricAwareModule") -> int:
    """The number of samples in a batch's target: its weight in the epoch loss.

    The leading dimension of the target tensor, or of the first tensor directly inside a dict,
    tuple or list target; a list or tuple holding no tensor counts its items (one per sample, as in
    detection targets).

    Raises:
        TypeError: the target holds no tensor to count; ``owner`` should override ``count_samples``.

    Examples:
        >>> import torch
        >>> samples_in(torch.zeros(7, 3)), samples_in({"label": torch.zeros(5), "weight": torch.zeros(5)})
        (7, 5)
        >>> samples_in([{"boxes": torch.zeros(2, 4)}, {"boxes": torch.zeros(9, 4)}])
        2
    """
    if isinstance(target, Tensor):
        return int(target.shape[0]) if target.ndim else 1
    items = list(target.values()) if isinstance(target, Mapping) else target
    for item in items if isinstance(items, (list, tuple)) else []:
        if isinstance(item, Tensor):
            return int(item.shape[0]) if item.ndim else 1
    if isinstance(target, (list, tuple)):
        return len(target)
    raise TypeError(
        f"{owner}.count_samples cannot count the samples of a {type(target).__name__} target;"
        " override `count_samples(self, target)` to return the number of samples in the batch."
    )


def loss_parts(loss: Any) -> dict[str, Tensor]:
    """What ``compute_loss`` returned, as ``{"loss": total, **components}``; a number component becomes a tensor.

    A total of one element shaped ``(1,)`` (or ``(1, 1)``) is taken as the 0-d tensor it holds.

    Raises:
        ValueError: a dict without ``"loss"``; the message lists the keys present.
        TypeError: a total that is not a tensor of one element (``None``, a number, an unreduced
            loss), or a component that is neither a 0-d tensor nor a number; the message names it.

    Examples:
        >>> import torch
        >>> parts = loss_parts({"loss": torch.tensor(1.0), "kl": torch.tensor(0.2), "reg": 0.5})
        >>> sorted(parts), parts["reg"]
        (['kl', 'loss', 'reg'], tensor(0.5000))
        >>> loss_parts(torch.tensor([2.0]))
        {'loss': tensor(2.)}
    """
    if not isinstance(loss, Mapping):
        return {"loss": _total(loss)}
    if "loss" not in loss:
        raise ValueError(
            f"compute_loss returned a dict without 'loss' (keys: {sorted(map(str, loss))}); put the total loss,"
            " the one to minimise, under 'loss' and its components under other keys."
        )
    parts = {"loss": _total(loss["loss"])}
    for key, value in loss.items():
        if key != "loss":
            parts[str(key)] = _component(str(key), value, loss["loss"])
    return parts


def _total(loss: Any) -> Tensor:
    if isinstance(loss, Tensor) and loss.numel() == 1:
        return loss if loss.ndim == 0 else loss.reshape(())  # a view: backward reaches the graph
    described = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
    remedy = (
        "to skip a batch, write your own `training_step` and return None from it"
        if loss is None
        else "return the loss as a tensor (reduce it, e.g. with `.mean()`)"
    )
    raise TypeError(f"compute_loss returned {described} as the loss, which must be a tensor of one element; {remedy}.")


def _component(key: str, value: Any, total: Any) -> Tensor:
    if isinstance(value, Tensor) and value.ndim == 0:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        device = total.device if isinstance(total, Tensor) else None
        return torch.tensor(float(value), device=device)
    described = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
    raise TypeError(
        f"compute_loss returned loss component {key!r} as {described}; a component must be a 0-d tensor or a"
        " Python number (reduce it, e.g. with `.mean()`)."
    )
