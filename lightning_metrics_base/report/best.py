"""Best validation values so far, in the manner of Lightning's `EarlyStopping`: direction, NaN rule, state."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_metrics_base.report.naming import LOSS, Destination, Namer

CHECKPOINT_KEY = "lightning_metrics_base"
"""Where a Lightning checkpoint holds the tracker's state."""


def direction(name: str, metric: Metric | None) -> bool:
    """Whether higher is better for ``name``: the metric's ``higher_is_better``; for the loss, lower is better.

    Raises:
        ValueError: the metric does not say whether higher is better.

    Examples:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> direction("acc", MulticlassAccuracy(3)), direction("loss", None)
        (True, False)
    """
    if name == LOSS or metric is None:
        return False
    higher = metric.higher_is_better
    if higher is None:
        raise ValueError(
            f"track_best: metric {name!r} ({type(metric).__name__}) does not say whether higher is better;"
            " remove it from `track_best`."
        )
    return bool(higher)


class BestTracker:
    """Keeps the best value so far of each tracked name.

    A NaN value never becomes the best and never blocks a later value from becoming it, as in
    Lightning's `ModelCheckpoint`. The state is a plain dict, saved in checkpoints.

    Args:
        higher_is_better: for each tracked name (a metric or ``"loss"``), its direction.

    Examples:
        >>> best = BestTracker({"acc": True})
        >>> best.record("acc", "val/acc_best", float("nan")), best.record("acc", "val/acc_best", 0.5)
        (None, 0.5)
        >>> best.record("acc", "val/acc_best", 0.25), best.state_dict()
        (0.5, {'best_values': {'val/acc_best': 0.5}})
    """

    def __init__(self, higher_is_better: Mapping[str, bool]) -> None:
        self.higher_is_better = dict(higher_is_better)
        self.values: dict[str, float] = {}

    @classmethod
    def of(cls, names: Sequence[str], val_metrics: Mapping[str, Metric]) -> BestTracker:
        """A tracker of ``names`` (validation metrics by address, or ``"loss"``), each in its `direction`.

        Raises:
            ValueError: a metric that does not say whether higher is better.

        Examples:
            >>> from torchmetrics.classification import MulticlassAccuracy
            >>> BestTracker.of(("acc", "loss"), {"acc": MulticlassAccuracy(3)}).higher_is_better
            {'acc': True, 'loss': False}
        """
        return cls({name: direction(name, val_metrics.get(name)) for name in names})

    def record(self, name: str, key: str, value: float) -> float | None:
        """Offer this epoch's ``value`` of tracked ``name``, kept under ``key`` (its logged best name).

        Returns:
            The best value so far, or ``None`` while there is none (only NaN seen).
        """
        best = self.values.get(key)
        if math.isnan(value):
            return best
        if best is None or (value > best if self.higher_is_better[name] else value < best):
            self.values[key] = value
        return self.values[key]

    def state_dict(self) -> dict[str, Any]:
        """The best values, keyed by their logged names."""
        return {"best_values": dict(self.values)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore best values saved by `state_dict`."""
        self.values.update(state.get("best_values", {}))

    def save_to(self, checkpoint: dict[str, Any]) -> None:
        """Put the state into a Lightning checkpoint dict, under `CHECKPOINT_KEY`."""
        checkpoint[CHECKPOINT_KEY] = self.state_dict()

    def load_from(self, checkpoint: Mapping[str, Any]) -> None:
        """Restore the state from a Lightning checkpoint dict (one without it restores nothing)."""
        self.load_state_dict(checkpoint.get(CHECKPOINT_KEY, {}))

    def check(self, losses: Mapping[str, Tensor], metrics: Mapping[str, tuple[Any, Metric]]) -> None:
        """Check that one validation dataloader's epoch values give every tracked name one number.

        A dataloader that saw no batch (nothing computed) is not checked.

        Raises:
            ValueError: a tracked metric whose result is not a single number, or ``"loss"`` tracked
                while validation logs no loss (a ``validation_step`` of one's own that records none).

        Examples:
            >>> import torch
            >>> BestTracker({"loss": False}).check({}, {"acc": (torch.tensor(0.5), None)})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: track_best: 'loss' has no validation value (validation logs no loss); ...
        """
        if not losses and not metrics:
            return
        for name in self.higher_is_better:
            if name == LOSS:
                if LOSS not in losses:
                    raise ValueError(
                        "track_best: 'loss' has no validation value (validation logs no loss); remove it from"
                        " `track_best`, or let validation compute the loss."
                    )
            elif name in metrics:
                value = metrics[name][0]
                if not isinstance(value, Tensor) or value.ndim != 0:
                    shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(
                        f"track_best: metric {name!r} gives {shape}, not one number; remove it from `track_best`"
                        " or track a metric with a scalar result."
                    )

    def offer(
        self,
        namer: Namer,
        where: Destination,
        losses: Mapping[str, Tensor],
        metrics: Mapping[str, tuple[Any, Metric]],
    ) -> list[tuple[str, Tensor]]:
        """Offer one validation dataloader's epoch values; return ``(logged best name, best so far)`` to log.

        Examples:
            >>> import torch
            >>> best = BestTracker({"loss": False})
            >>> best.offer(Namer("/"), Destination("val"), {"loss": torch.tensor(0.5)}, {})
            [('val/loss_best', tensor(0.5000))]
        """
        logged = []
        for name in self.higher_is_better:
            value = losses.get(LOSS) if name == LOSS else metrics.get(name, (None, None))[0]
            if not isinstance(value, Tensor) or value.ndim != 0:  # nothing computed for it (`check` refuses the rest)
                continue
            best = self.record(name, where.shown(namer.best(name)), float(value))
            if best is not None:
                logged.append((namer.best(name), torch.tensor(best)))
        return logged
