"""The lint's rules: code, name, what each finds, the fix it suggests and how its severity is decided.

The analysis emits findings through these objects (``BATCH_VALUE_ON_EPOCH.code``), never through a
code written out again; Lightning's logging semantics (hook defaults, stages, additivity) come from
`lightning_metrics_base.lightning_semantics`, which `MetricLogCheck` shares.

Only the standard library: the lint never imports torch, Lightning or torchmetrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lightning_metrics_base.lightning_semantics import (
    BEST_TRACKERS,
    STAGES,
    HookDefaults,
    hook_defaults,
    is_additive,
)

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Rule:
    """One rule: its code, a short name, what it finds, the fix it suggests and how severe a finding is."""

    code: str
    name: str
    finds: str
    fix: str
    severity: str
    """How the severity is decided: ``error`` is a wrong number on one device, ``warning`` a number
    wrong only under DDP or uneven batches (or a latent trap), ``info`` redundancy or style."""
    messages: Mapping[str, str] = field(default_factory=dict)
    """The message templates by shape (``""`` the main one), filled by `say`; parts of a message too."""

    def say(self, shape: str = "", **fields: object) -> str:
        """The message of one shape of this rule, its ``{fields}`` filled in.

        Examples:
            >>> MOVED_BY_HAND.say(method="cuda", metric="MulticlassAccuracy").split(":")[0]
            '`.cuda(...)` on the metric MulticlassAccuracy'
        """
        return self.messages[shape].format(**fields)


BATCH_VALUE_ON_EPOCH = Rule(
    "LM101",
    "batch-value-logged-per-epoch",
    "a value computed per batch logged with an effective `on_epoch=True`: Lightning averages batch values",
    "update the metric in the step and log the Metric object",
    "error for a metric that is not an average of batch values; warning for an additive one",
    {
        "": "{label}{what} is computed per batch and logged with on_epoch=True{default}: Lightning logs the mean of"
        " the batch values, and {metric} is {why}. {remedy}{notes}",
        "why-additive": "additive, so the mean is right on one process with equal batches, but wrong under DDP or"
        " uneven batches",
        "why-not-additive": "not an average of batch values",
        "remedy-object": "Update the metric in the step and log the Metric object: `self.{ref}(preds, target)` then"
        " `{log}`.",
        "remedy-value": "Keep a torchmetrics metric for it, update it in the step and log the Metric object.",
    },
)
COMPUTE_IN_STEP = Rule(
    "LM102",
    "compute-in-step",
    "`compute()` in a per-batch hook",
    "log the object; compute once per epoch",
    "error where logged with on_epoch (a mean of running or per-batch values); warning where logged per step only",
    {
        "": "{label}{obj}.compute() is logged from {hook} with on_epoch=True{default}: every step logs {what}, which"
        " is not the {metric} over the epoch. Pass the Metric object to self.log (`self.log(..., {obj})`) and"
        " Lightning computes it once per epoch.{notes}",
        "what-running": "a running value, the metric over the batches seen so far, and Lightning averages those"
        " running values",
        "what-per-batch": "a per-batch value (the step resets the metric) and Lightning averages those batch values",
        "per-step": "{label}{obj}.compute() in {hook} runs every batch: it logs a running value, the metric over the"
        " batches seen so far (and syncs across processes each time). Log the object instead,"
        " `self.log(name, {obj})`, and Lightning computes it once per epoch.",
    },
)
MEAN_OF_BATCH_METRICS = Rule(
    "LM103",
    "mean-of-batch-metrics",
    "a mean of per-batch metric values taken from step outputs at epoch end",
    "accumulate with a Metric",
    "error for a metric that is not an average of batch values; warning for an additive one",
    {
        "": "the mean of per-batch {metric} values from {source} is not the {metric} over the epoch (batches weigh"
        " alike and the metric is {why}). Accumulate with a Metric: update it in the step and compute it once at"
        " the epoch end.",
        "why-additive": "additive only on one process",
        "why-not-additive": "not an average of batch values",
    },
)
SHARED_BETWEEN_STAGES = Rule(
    "LM201",
    "metric-shared-between-stages",
    "one Metric object updated or computed in more than one stage",
    "a copy per stage (`clone(prefix=...)`)",
    "with training: error where the accumulated state is read (compute() or the object logged), warning where"
    " only per-batch values are; validation with test: info (they never interleave), error where a stage reads"
    " state it never fed",
    {
        "": "self.{ref} is used in {stages} (here: {stage}): the stages share one state; {why}. Give each stage its"
        " own copy (`metric.clone()`, or `MetricCollection.clone(prefix=...)`).",
        "why-read": "the accumulated state is read, so each epoch value mixes the stages (and the sanity check"
        " leaks into training)",
        "why-forward": "only per-batch values are read today, but any compute() or logged object would mix them",
        "why-stale": "{stale} reads state it never fed: the value of another stage",
        "why-val-test": "validation and test never interleave, so the values are right; a copy per stage is clearer",
        "one-object": "self.{attr} and self.{other} are one {metric} object: the stages that use them share one"
        " state. Give each its own copy (`{expr}.clone(prefix=...)`).",
        "collections": "self.{attr} and self.{other} are two MetricCollections built on one {basis}: they hold the"
        " same metric objects, so their stages share one state. Build one collection and give each stage a copy:"
        " `collection.clone(prefix=...)`.",
    },
)
PLAIN_CONTAINER = Rule(
    "LM202",
    "metric-in-plain-container",
    "Metric objects held in a plain dict or list",
    "`nn.ModuleDict` / `MetricCollection`",
    "warning",
    {
        "": "self.{attr} holds Metric objects in a plain {container}: they are not registered submodules, so they do"
        " not move to the module's device, are not seen by DDP and are left out of the module. Hold them in"
        " `nn.ModuleDict` or a `MetricCollection`.",
    },
)
BUILT_PER_BATCH = Rule(
    "LM203",
    "metric-built-per-batch",
    "a Metric constructed in a step or batch hook",
    "construct once in `__init__`",
    "error",
    {
        "": "{metric}(...) is built in {hook}, once per batch: a fresh metric sees one batch and is never synced or"
        " reset by anyone. Construct it once in `__init__` and update it here.",
    },
)
MOVED_BY_HAND = Rule(
    "LM204",
    "metric-moved-by-hand",
    '`.cuda()` / `.to("cuda")` on a Metric',
    "none needed: registered metrics follow the module",
    "error (every DDP process's metric lands on cuda:0)",
    {
        "": "`.{method}(...)` on the metric {metric}: a metric registered on the module (an attribute,"
        " `nn.ModuleDict` or `MetricCollection`) moves with it to the device Lightning chooses; moving it by hand"
        " pins it to one device (every DDP process on cuda:0). Remove the call.",
    },
)
MODULE_SCOPE = Rule(
    "LM206",
    "metric-at-module-scope",
    "a Metric at module or class scope, or as a default argument, where it reaches a LightningModule or Callback",
    "construct in `__init__`",
    "error",
    {
        "": "{metric} at {where} is one object shared by every module that uses it: its state leaks between modules"
        " and runs, and it is not registered with any module. Construct it in `__init__`.",
        "default": "{metric} as a default argument of {function}() is built once and shared by every call and every"
        " module: its state leaks between them. Default to None and construct the metric in `__init__`.",
    },
)
COMPUTE_WITHOUT_RESET = Rule(
    "LM301",
    "compute-without-reset",
    "`compute()` of a metric that is never reset and never logged as an object",
    "`reset()` after compute, or log the object",
    "error (a metric used only in test is one epoch: not reported)",
    {
        "": "self.{attr}.compute(), but self.{base} is never reset nor logged as an object (Lightning resets logged"
        " objects): its state spans every epoch since the start, so each value mixes all epochs so far. Call"
        " `self.{attr}.reset()` after compute, or log the object: `self.log(name, self.{attr})`.",
    },
)
LOGGED_TWO_WAYS = Rule(
    "LM302",
    "logged-two-ways",
    "one object both logged as an object and its `compute()` logged",
    "one way of logging",
    "error",
    {
        "": "self.{attr} is logged as an object and its compute() is logged too: Lightning resets the object after"
        " its epoch value, so what compute() returns depends on when it runs. Log it one way: the object.",
    },
)
SYNC_DIST_ON_METRIC = Rule(
    "LM303",
    "sync-dist-on-metric",
    "`sync_dist=True` on a Metric object, its `compute()` or a per-batch metric value",
    "drop it: Metric objects sync themselves",
    "info",
    {
        "": "{label}sync_dist=True on {obj}: Metric objects sync their state across processes themselves; sync_dist"
        " adds a second, useless reduction. Drop it.",
        "batch": "{label}sync_dist=True on a per-batch {metric} value: each process averages its own batch values"
        " and sync_dist averages those means, which is not the metric over all the data either. Update a Metric"
        " and log the object: it syncs its state itself.",
    },
)

MONITORED = (
    " `{name}` is monitored (ModelCheckpoint, EarlyStopping or a scheduler), so it also picks the wrong checkpoint."
)
"""Added to a finding whose logged name a checkpoint, early stopping or scheduler reads."""
IN_CALLBACK = (
    " In a Callback, the metric is no attribute of the module and Lightning refuses to log the object: update"
    " it here, then compute, log and reset it in the epoch-end hook."
)
"""Added where a Callback logs: the fix that logs the object does not apply there."""
THROUGH_HELPER = "in {hook}, through the helper at line {line}: {message}"
"""A helper's finding reported at one hook's call, where the hooks that call it disagree."""
THROUGH_OTHER_FILE = "through {helper} (another file): {message}"
"""A finding in a base class's helper of another file, reported at this file's call."""

RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        BATCH_VALUE_ON_EPOCH,
        COMPUTE_IN_STEP,
        MEAN_OF_BATCH_METRICS,
        SHARED_BETWEEN_STAGES,
        PLAIN_CONTAINER,
        BUILT_PER_BATCH,
        MOVED_BY_HAND,
        MODULE_SCOPE,
        COMPUTE_WITHOUT_RESET,
        LOGGED_TWO_WAYS,
        SYNC_DIST_ON_METRIC,
    )
}

__all__ = [
    "BEST_TRACKERS",
    "ERROR",
    "INFO",
    "RULES",
    "STAGES",
    "WARNING",
    "HookDefaults",
    "Rule",
    "hook_defaults",
    "is_additive",
]
