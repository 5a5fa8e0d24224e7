"""`MetricLogCheck`: a callback that tells a hand-written project which of its logged numbers are wrong.

The lint reads code; some traps only show at run time (metrics from configs, helpers in other
packages, dynamic names). This callback watches a real fit: every torchmetrics `Metric` of the module
gets a shadow copy fed the same inputs and reset each epoch; every value the module logs with an
effective ``on_epoch=True`` that came out of a metric's ``forward`` or ``compute`` in a per-batch hook
is compared, at the epoch end, with the shadow's value over the epoch's data.

What it installs (wrappers around each metric's ``forward``, ``update``, ``compute`` and ``reset``,
and around the module's ``log``) lives on the instances only and is removed at ``teardown`` or when
the fit raises. It never changes a logged value, a metric's result or the module's behaviour.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from lightning_metrics_base._face import Face
from lightning_metrics_base._internals.lightning import current_hook
from lightning_metrics_base.lightning_semantics import hook_defaults, is_additive
from lightning_metrics_base.update.trees import detach

_STAGES = {"train": "train", "validate": "val", "sanity_check": "val", "test": "test"}


@dataclass
class _Logged:
    """One name the module logged from a metric's value in a step."""

    name: str
    stage: str
    metric: int  # id of the metric
    kind: str  # "forward" or "compute"
    key: str  # where Lightning keeps the epoch value (``name`` or ``name_epoch``)


@dataclass
class _Watched:
    """A metric of the module: its attribute name, its shadows (one per stage) and where it was used."""

    name: str
    metric: Metric
    template: Metric  # an unwrapped, empty copy made before wrapping: the shadows are copies of it
    originals: dict[str, Any] = field(default_factory=dict)
    shadows: dict[str, Metric] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    last_epoch: tuple[str, Any] | None = None
    reset_since: bool = True
    reset_per_batch: bool = False
    depth: int = 0


if TYPE_CHECKING:
    from lightning.pytorch import Callback as _Base
    from lightning.pytorch import LightningModule, Trainer
else:
    _Base = object  # written against a `Callback`: each face puts its namespace's last in the bases


class MetricLogCheck(_Base):
    """Reports each value a hand-written module logs per epoch that is not the metric over the epoch.

    Add it to an existing project without changing the module: ``Trainer(callbacks=[MetricLogCheck()])``.
    After each epoch it warns once per name, with both numbers, about every value logged with an
    effective ``on_epoch=True`` that came out of a `Metric`'s ``forward`` or ``compute`` in a step and
    differs from the metric over the epoch's data (``val_f1: logged 0.3334, over the epoch 0.3387``).
    It also warns, once per fit, when one metric is updated in two stages, and when a metric's state
    spans epochs (it is never reset). At the end of ``fit``, ``validate`` and ``test`` it prints a table of
    every value it checked. Under DDP the numbers over the epoch are over every process, and only rank 0 warns.

    A `MetricAwareModule` needs no check (its values are right); the callback is for modules written
    by hand. It costs a second update of every metric (up to twice a tiny model's fit time).

    Args:
        rtol: relative tolerance below which a logged value agrees with the epoch value.
        atol: absolute tolerance, likewise.

    Examples:
        >>> import torch, lightning as L
        >>> from torchmetrics.classification import MulticlassF1Score
        >>> from lightning_metrics_base import MetricLogCheck
        >>> class HandWritten(L.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net, self.f1 = torch.nn.Linear(4, 3), MulticlassF1Score(3)
        ...     def validation_step(self, batch, batch_idx):
        ...         self.f1.update(self.net(batch[0]), batch[1])
        ...         self.log("val_f1", self.f1.compute())  # the classic trap
        >>> data = torch.utils.data.DataLoader(
        ...     torch.utils.data.TensorDataset(torch.randn(40, 4), torch.randint(0, 3, (40,))), batch_size=8)
        >>> trainer = L.Trainer(callbacks=[MetricLogCheck()], logger=False, enable_progress_bar=False,
        ...                     enable_model_summary=False)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = trainer.validate(HandWritten(), data, verbose=False)
        >>> any("val_f1: logged" in str(w.message) for w in caught)
        True
    """

    _face: ClassVar[Face]
    """The Lightning namespace of the face class (``lightning`` or ``pytorch_lightning``)."""

    def __init__(self, rtol: float = 1e-5, atol: float = 1e-6) -> None:
        for name, given in (("rtol", rtol), ("atol", atol)):
            if isinstance(given, bool) or not isinstance(given, int | float) or not math.isfinite(given) or given < 0:
                raise TypeError(
                    f"MetricLogCheck({name}={given!r}): {name} is a tolerance, a number >= 0"
                    f" (got {type(given).__name__}); for example MetricLogCheck({name}=1e-5)."
                )
        self.rtol, self.atol = float(rtol), float(atol)
        self._watched: dict[int, _Watched] = {}
        self._logged: dict[tuple[str, str], _Logged] = {}
        self._origins: dict[int, tuple[Tensor, int, str]] = {}
        self._said: set[str] = set()
        self._pending: set[str] = set()
        self._module: LightningModule | None = None
        self._fit_trainer: Trainer | None = None
        self.results: list[tuple[str, float, float]] = []
        """Every value checked at its latest epoch end: ``(name, logged, over the epoch)``."""

    # ------------------------------------------------------------------ install and remove

    def setup(self, trainer: Trainer, pl_module: LightningModule | None = None, stage: str = "") -> None:
        """Wrap the module's metrics and its ``log``.

        Raises:
            TypeError: the class itself was given to the Trainer instead of an instance.
        """
        if not isinstance(self, MetricLogCheck):
            raise TypeError(
                "MetricLogCheck was given to the Trainer as a class; give it an instance:"
                " `Trainer(callbacks=[MetricLogCheck()])`."
            )
        assert pl_module is not None
        self._remove()
        self._module, self._fit_trainer = pl_module, trainer
        self._logged.clear()
        self._said.clear()
        self.results = []
        for name, metric in _top_level_metrics(pl_module):
            template = copy.deepcopy(metric)
            template.reset()
            watched = _Watched(name, metric, template)
            self._watched[id(metric)] = watched
            self._wrap(watched)
        for name, collection in pl_module.named_modules():
            if isinstance(collection, MetricCollection):
                self._wrap_collection(name, collection)
        original_log = pl_module.log

        @torch.compiler.disable  # type: ignore[untyped-decorator]
        def log(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            self._seen_log(name, value, kwargs)
            original_log(name, value, *args, **kwargs)

        vars(pl_module)["log"] = log

    def teardown(self, trainer: Trainer, pl_module: LightningModule | None = None, stage: str = "") -> None:
        """Check what is left, print the summary after `fit`, `validate` or `test`, and remove every wrapper."""
        if not isinstance(self, MetricLogCheck):
            return  # given as a class: `setup` said so
        try:
            if stage == "fit" and self._pending:
                self._check("train")
            if trainer.is_global_zero and self.results:
                self._face.rank_zero_info(self.summary())
        finally:
            self._remove()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule | None = None, exception: BaseException | None = None
    ) -> None:
        """Remove every wrapper when the run raises."""
        if isinstance(self, MetricLogCheck):  # given as a class, `setup` raised the error that says so
            self._remove()

    def _remove(self) -> None:
        for watched in self._watched.values():
            for attr, original in watched.originals.items():
                if original is None:
                    vars(watched.metric).pop(attr, None)
                else:
                    vars(watched.metric)[attr] = original
        self._watched.clear()
        self._origins.clear()
        module = self._module
        if module is not None:
            for collection in module.modules():
                ours = isinstance(collection, MetricCollection) and "_metric_log_check_update" in vars(collection)
                if ours:  # our wrapper and the saved original both go: the class's own update is back
                    vars(collection).pop("_metric_log_check_update")
                    vars(collection).pop("update", None)
            vars(module).pop("log", None)
        self._module = None

    def _wrap(self, watched: _Watched) -> None:
        metric = watched.metric
        for attr in ("forward", "update", "compute", "reset"):
            watched.originals[attr] = vars(metric).get(attr)  # torchmetrics wraps update/compute per instance
        forward, update, compute, reset = metric.forward, metric.update, metric.compute, metric.reset

        @torch.compiler.disable  # type: ignore[untyped-decorator]
        def wrapped_forward(*args: Any, **kwargs: Any) -> Any:
            self._fed(watched, args, kwargs)
            watched.depth += 1
            try:
                result = forward(*args, **kwargs)
            finally:
                watched.depth -= 1
            self._record(result, watched, "forward")
            return result

        @torch.compiler.disable  # type: ignore[untyped-decorator]
        def wrapped_update(*args: Any, **kwargs: Any) -> Any:
            if watched.depth == 0:
                self._fed(watched, args, kwargs)
            return update(*args, **kwargs)

        @torch.compiler.disable  # type: ignore[untyped-decorator]
        def wrapped_compute(*args: Any, **kwargs: Any) -> Any:
            result = compute(*args, **kwargs)
            if watched.depth == 0:
                self._record(result, watched, "compute")
            return result

        @torch.compiler.disable  # type: ignore[untyped-decorator]
        def wrapped_reset(*args: Any, **kwargs: Any) -> Any:
            if watched.depth == 0:
                watched.reset_since = True
                hook = current_hook(self._module) if self._module is not None else None
                defaults = hook_defaults(hook) if hook is not None else None
                if defaults is not None and defaults.per_batch:
                    watched.reset_per_batch = True  # its values are one batch's: nothing runs on, nothing mixes
            return reset(*args, **kwargs)

        for attr, wrapper in (
            ("forward", wrapped_forward),
            ("update", wrapped_update),
            ("compute", wrapped_compute),
            ("reset", wrapped_reset),
        ):
            vars(metric)[attr] = wrapper

    def _wrap_collection(self, name: str, collection: MetricCollection) -> None:
        # A collection updates only the first metric of each compute group: feed every member's shadow.
        members = [self._watched.get(id(metric)) for metric in collection.values(copy_state=False)]
        update = collection.update

        def wrapped_update(*args: Any, **kwargs: Any) -> Any:
            for watched in members:
                if watched is not None:
                    self._fed(watched, args, kwargs)
                    watched.depth += 1
            try:
                return update(*args, **kwargs)
            finally:
                for watched in members:
                    if watched is not None:
                        watched.depth -= 1

        vars(collection)["_metric_log_check_update"] = update
        vars(collection)["update"] = wrapped_update

    # ------------------------------------------------------------------ what happens in a fit

    def _stage(self) -> tuple[str, Any] | None:
        trainer = self._fit_trainer
        if trainer is None or trainer.state.stage is None:
            return None
        stage = _STAGES.get(str(trainer.state.stage.value))
        if stage is None:
            return None
        return stage, ("sanity" if trainer.sanity_checking else trainer.current_epoch)

    def _fed(self, watched: _Watched, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        where = self._stage()
        if where is None:
            return
        stage, epoch = where
        if stage not in watched.stages:
            watched.stages.append(stage)
            if len(watched.stages) == 2:
                self._warn(
                    f"shared:{watched.name}",
                    f"MetricLogCheck: self.{watched.name} ({type(watched.metric).__name__}) is updated in"
                    f" {watched.stages[0]} and {stage} within one fit: the stages share one state, "
                    + (
                        "reset in every step, so each value is one batch's and nothing mixes today, but any value"
                        " over an epoch would mix them"
                        if watched.reset_per_batch
                        else "so each epoch value mixes their data"
                    )
                    + ". Give each stage its own copy (`metric.clone()`).",
                )
        last = watched.last_epoch
        if last is not None and last != where and last[0] == stage and not watched.reset_since:
            before = "the sanity check" if last[1] == "sanity" else f"epoch {last[1]}"
            self._warn(
                f"spans:{watched.name}",
                f"MetricLogCheck: self.{watched.name} ({type(watched.metric).__name__}) is never reset: its state"
                f" in {stage} epoch {epoch} still holds the batches of {before}. Call `self.{watched.name}.reset()`"
                " at the epoch end, or log the Metric object (Lightning resets it).",
            )
        watched.last_epoch, watched.reset_since = where, False
        if epoch == "sanity":
            return
        shadow = watched.shadows.get(stage)
        if shadow is None:
            shadow = watched.shadows[stage] = copy.deepcopy(watched.template).to(watched.metric.device)
        shadow.update(*detach(args), **detach(kwargs))

    def _record(self, result: Any, watched: _Watched, kind: str) -> None:
        module = self._module
        hook = current_hook(module) if module is not None else None
        defaults = hook_defaults(hook) if hook is not None else None
        if defaults is None or not defaults.per_batch:
            return
        for value in result.values() if isinstance(result, dict) else [result]:
            if isinstance(value, Tensor):
                self._origins[id(value)] = (value, id(watched.metric), kind)

    def _seen_log(self, name: str, value: Any, kwargs: dict[str, Any]) -> None:
        origin = self._origins.get(id(value)) if isinstance(value, Tensor) else None
        if origin is None or origin[0] is not value or self._module is None:
            return
        where = self._stage()
        hook = current_hook(self._module)
        defaults = hook_defaults(hook) if hook is not None else None
        if where is None or where[1] == "sanity" or defaults is None:
            return
        # `log_dict` passes `on_step=None, on_epoch=None`: Lightning's defaults for the hook then apply
        on_step = defaults.on_step if kwargs.get("on_step") is None else kwargs["on_step"]
        on_epoch = defaults.on_epoch if kwargs.get("on_epoch") is None else kwargs["on_epoch"]
        if on_epoch is not True:
            return
        key = f"{name}_epoch" if on_step is True else name
        self._logged.setdefault((where[0], name), _Logged(name, where[0], origin[1], origin[2], key))
        self._pending.add(where[0])

    # ------------------------------------------------------------------ epoch ends

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Check the previous train epoch (its values are final now), then start the shadows afresh."""
        if "train" in self._pending:
            self._check("train")
        self._restart("train")

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the validation shadows afresh."""
        self._restart("val")

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the test shadows afresh."""
        self._restart("test")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare the validation values Lightning logged with the metrics over the epoch."""
        if not trainer.sanity_checking:
            self._check("val")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare the test values Lightning logged with the metrics over the epoch."""
        self._check("test")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Forget this batch's metric values (only the logged ones were needed)."""
        self._origins.clear()

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Forget this batch's metric values."""
        self._origins.clear()

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Forget this batch's metric values."""
        self._origins.clear()

    def _restart(self, stage: str) -> None:
        for watched in self._watched.values():
            shadow = watched.shadows.get(stage)
            if shadow is not None:
                shadow.reset()

    def _check(self, stage: str) -> None:
        self._pending.discard(stage)
        trainer = self._fit_trainer
        if trainer is None:
            return
        for (logged_stage, _), logged in sorted(self._logged.items()):
            watched = self._watched.get(logged.metric)
            shadow = watched.shadows.get(stage) if watched is not None else None
            if logged_stage != stage or watched is None or shadow is None or not shadow.update_called:
                continue
            true_value = shadow.compute()  # on every process: it syncs
            reported = trainer.callback_metrics.get(logged.key)
            if not isinstance(true_value, Tensor) or true_value.numel() != 1 or reported is None:
                continue
            value, truth = float(reported), float(true_value)
            self.results = [row for row in self.results if row[0] != logged.name] + [(logged.name, value, truth)]
            if math.isclose(value, truth, rel_tol=self.rtol, abs_tol=self.atol):
                continue
            self._warn(f"value:{logged.name}", self._message(logged, watched, value, truth))

    def _message(self, logged: _Logged, watched: _Watched, value: float, truth: float) -> str:
        metric = type(watched.metric).__name__
        average = getattr(watched.metric, "average", None)
        keywords = {"average": average if isinstance(average, str) else None}
        if logged.kind == "compute" and watched.reset_per_batch:
            why = "a per-batch value (the step resets the metric), averaged by Lightning"
        elif logged.kind == "compute":
            why = "a running value computed in each step, averaged by Lightning"
        elif is_additive(metric, keywords):
            why = f"the batch mean of {metric}, which differs from its epoch value with uneven batches or under DDP"
        else:
            why = f"{metric} is not an average of batch values"
        return (
            f"{logged.name}: logged {value:.4f}, over the epoch {truth:.4f} ({why}); pass the Metric object to"
            f" self.log: `self.log({logged.name!r}, self.{watched.name})`."
        )

    def _warn(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self._face.rank_zero_warn(message, category=UserWarning)

    def summary(self) -> str:
        """The table of every value checked at its latest epoch end: name, logged, over the epoch, difference."""
        rows = [("name", "logged", "over the epoch", "difference")]
        rows += [(name, f"{value:.6f}", f"{truth:.6f}", f"{value - truth:+.6f}") for name, value, truth in self.results]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
        return "MetricLogCheck: the values logged from metrics in steps\n" + "\n".join(lines)


def _top_level_metrics(module: LightningModule) -> list[tuple[str, Metric]]:
    # Every metric not inside another metric (a wrapper's children are fed by the wrapper).
    found: list[tuple[str, Metric]] = []
    inside: set[int] = set()
    for name, child in module.named_modules():
        if isinstance(child, Metric) and id(child) not in inside:
            found.append((name, child))
            inside.update(id(grandchild) for grandchild in child.modules() if grandchild is not child)
    return found
