"""The lint's rules: code, name, what each finds, the fix it suggests and how its severity is decided.

The analysis emits findings through these objects (``BATCH_VALUE_ON_EPOCH.code``), never through a
code written out again; Lightning's logging semantics (hook defaults, stages, additivity) come from
`lightning_metrics_base.lightning_semantics`, which `MetricLogCheck` shares.

Only the standard library: the lint never imports torch, Lightning or torchmetrics.
"""

from __future__ import annotations

from dataclasses import dataclass

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


BATCH_VALUE_ON_EPOCH = Rule(
    "LM101",
    "batch-value-logged-per-epoch",
    "a value computed per batch logged with an effective `on_epoch=True`: Lightning averages batch values",
    "update the metric in the step and log the Metric object",
    "error for a metric that is not an average of batch values; warning for an additive one",
)
COMPUTE_IN_STEP = Rule(
    "LM102",
    "compute-in-step",
    "`compute()` in a per-batch hook",
    "log the object; compute once per epoch",
    "error where logged with on_epoch (a mean of running or per-batch values); warning where logged per step only",
)
MEAN_OF_BATCH_METRICS = Rule(
    "LM103",
    "mean-of-batch-metrics",
    "a mean of per-batch metric values taken from step outputs at epoch end",
    "accumulate with a Metric",
    "error for a metric that is not an average of batch values; warning for an additive one",
)
SHARED_BETWEEN_STAGES = Rule(
    "LM201",
    "metric-shared-between-stages",
    "one Metric object updated or computed in more than one stage",
    "a copy per stage (`clone(prefix=...)`)",
    "with training: error where the accumulated state is read (compute() or the object logged), warning where"
    " only per-batch values are; validation with test: info (they never interleave), error where a stage reads"
    " state it never fed",
)
PLAIN_CONTAINER = Rule(
    "LM202",
    "metric-in-plain-container",
    "Metric objects held in a plain dict or list",
    "`nn.ModuleDict` / `MetricCollection`",
    "warning",
)
BUILT_PER_BATCH = Rule(
    "LM203",
    "metric-built-per-batch",
    "a Metric constructed in a step or batch hook",
    "construct once in `__init__`",
    "error",
)
MOVED_BY_HAND = Rule(
    "LM204",
    "metric-moved-by-hand",
    '`.cuda()` / `.to("cuda")` on a Metric',
    "none needed: registered metrics follow the module",
    "error (every DDP process's metric lands on cuda:0)",
)
MODULE_SCOPE = Rule(
    "LM206",
    "metric-at-module-scope",
    "a Metric at module or class scope, or as a default argument, where it reaches a LightningModule or Callback",
    "construct in `__init__`",
    "error",
)
COMPUTE_WITHOUT_RESET = Rule(
    "LM301",
    "compute-without-reset",
    "`compute()` of a metric that is never reset and never logged as an object",
    "`reset()` after compute, or log the object",
    "error (a metric used only in test is one epoch: not reported)",
)
LOGGED_TWO_WAYS = Rule(
    "LM302",
    "logged-two-ways",
    "one object both logged as an object and its `compute()` logged",
    "one way of logging",
    "error",
)
SYNC_DIST_ON_METRIC = Rule(
    "LM303",
    "sync-dist-on-metric",
    "`sync_dist=True` on a Metric object, its `compute()` or a per-batch metric value",
    "drop it: Metric objects sync themselves",
    "info",
)

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
