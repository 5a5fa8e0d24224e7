"""One shape for a stage's metrics: a collection per model output (a single-output model has one head).

The config may come flat or per output; `Heads.of` is the one place that tells the two forms apart,
so nothing downstream branches on them (as Keras' ``CompileMetrics.build()`` turns a single output
into a list of one).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn
from torchmetrics import MetricCollection

StageMetrics = MetricCollection | nn.ModuleDict
"""One stage's metrics as users read them (``val_metrics``): a collection, or for a multi-output model a
`torch.nn.ModuleDict` of one collection per output."""

BuiltMetrics = MetricCollection | Mapping[str, MetricCollection]
"""One stage's metrics as the config built them (see `config.build_metrics`, `config.build_output_metrics`)."""


def fresh_copy(collection: MetricCollection) -> MetricCollection:
    """Return an independent deep copy of ``collection`` with its state reset.

    Examples:
        >>> import torch
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> used = MetricCollection({"mae": MeanAbsoluteError()})
        >>> used.update(torch.ones(2), torch.zeros(2))
        >>> fresh_copy(used)["mae"].update_called
        False
    """
    copied = copy.deepcopy(collection)
    copied.reset()
    return copied


class Heads(nn.ModuleDict):
    """One stage's metrics for one dataloader, in one shape: a collection per model output.

    A single-output model has one head without a name (its output is ``None``), as Keras'
    ``CompileMetrics`` treats one output as a list of one; nothing past `Heads.of` looks at which
    form the config had. The only other place the forms differ is `public`, what users read.

    Examples:
        >>> from torchmetrics.regression import MeanAbsoluteError
        >>> single = Heads.of(MetricCollection({"mae": MeanAbsoluteError()}))
        >>> [output for output, _ in single.heads()], type(single.public()).__name__
        ([None], 'MetricCollection')
        >>> several = Heads.of({"age": MetricCollection({"mae": MeanAbsoluteError()})})
        >>> [output for output, _ in several.heads()], list(several.public())
        (['age'], ['age'])
    """

    _UNNAMED = "metrics"  # the key of a single-output model's head

    def __init__(self, heads: Mapping[str | None, MetricCollection]) -> None:
        super().__init__({self._UNNAMED if output is None else output: coll for output, coll in heads.items()})
        self.named = None not in heads

    @classmethod
    def of(cls, built: BuiltMetrics) -> Heads:
        """The heads of one stage's metrics as the config built them."""
        heads: dict[str | None, MetricCollection] = (
            {None: built} if isinstance(built, MetricCollection) else {output: coll for output, coll in built.items()}
        )
        return cls(heads)

    def heads(self) -> list[tuple[str | None, MetricCollection]]:
        """``(output, collection)`` for every head; the output is ``None`` for a single-output model."""
        return [(key if self.named else None, collection) for key, collection in self.items()]  # type: ignore[misc]

    def fresh(self) -> Heads:
        """An independent copy with empty state (a new dataloader's metrics)."""
        return Heads({output: fresh_copy(collection) for output, collection in self.heads()})

    def public(self) -> StageMetrics:
        """What ``{stage}_metrics`` returns: the collection, or with outputs the dict of one per output."""
        if self.named:
            return self
        unnamed: MetricCollection = self[self._UNNAMED]  # type: ignore[assignment]
        return unnamed
