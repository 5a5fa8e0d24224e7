"""The lint's rules, Lightning's logging defaults per hook, and what makes a metric additive.

Only the standard library: the lint never imports torch, Lightning or torchmetrics.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Rule:
    """One rule: its code, a short name, what it finds and the fix it suggests."""

    code: str
    name: str
    finds: str
    fix: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "LM101",
            "batch-value-logged-per-epoch",
            "a value computed per batch logged with an effective `on_epoch=True`: Lightning averages batch values",
            "update the metric in the step and log the Metric object",
        ),
        Rule("LM102", "compute-in-step", "`compute()` in a per-batch hook", "log the object; compute once per epoch"),
        Rule(
            "LM103",
            "mean-of-batch-metrics",
            "a mean of per-batch metric values taken from step outputs at epoch end",
            "accumulate with a Metric",
        ),
        Rule(
            "LM201",
            "metric-shared-between-stages",
            "one Metric object updated or computed in more than one stage",
            "a copy per stage (`clone(prefix=...)`)",
        ),
        Rule(
            "LM202",
            "metric-in-plain-container",
            "Metric objects held in a plain dict or list",
            "`nn.ModuleDict` / `MetricCollection`",
        ),
        Rule(
            "LM203",
            "metric-built-per-batch",
            "a Metric constructed in a step or batch hook",
            "construct once in `__init__`",
        ),
        Rule(
            "LM204",
            "metric-moved-by-hand",
            '`.cuda()` / `.to("cuda")` on a Metric',
            "none needed: registered metrics follow the module",
        ),
        Rule(
            "LM206",
            "metric-at-module-scope",
            "a Metric at module or class scope, or as a default argument",
            "construct in `__init__`",
        ),
        Rule(
            "LM301",
            "compute-without-reset",
            "`compute()` at epoch end with no `reset()` and the object never logged",
            "`reset()` after compute, or log the object",
        ),
        Rule(
            "LM302",
            "logged-two-ways",
            "one object both logged as an object and its `compute()` logged",
            "one way of logging",
        ),
        Rule(
            "LM303",
            "sync-dist-on-metric",
            "`sync_dist=True` on a Metric object or its `compute()`",
            "drop it: Metric objects sync themselves",
        ),
    )
}


@dataclass(frozen=True)
class HookDefaults:
    """Lightning's `self.log` defaults in one hook (its ``fx_validator``), and the hook's stage."""

    on_step: bool
    on_epoch: bool
    per_batch: bool
    stage: str | None


def hook_defaults(name: str) -> HookDefaults | None:
    """Lightning's logging defaults for the hook ``name`` (``None``: not a hook that logs).

    Examples:
        >>> hook_defaults("validation_step")
        HookDefaults(on_step=False, on_epoch=True, per_batch=True, stage='val')
        >>> hook_defaults("training_step").on_epoch, hook_defaults("on_train_epoch_end").per_batch
        (False, False)
    """
    if name in _STEP_HOOKS:
        stage = _STEP_HOOKS[name]
        return HookDefaults(stage == "train", stage != "train", True, stage)
    if name in ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad"):
        return HookDefaults(True, False, True, "train")
    for stage, word in (("train", "train"), ("val", "validation"), ("test", "test")):
        if name in (f"on_{word}_batch_start", f"on_{word}_batch_end"):
            return HookDefaults(stage == "train", stage != "train", True, stage)
        epoch_hooks = (f"on_{word}_epoch_start", f"on_{word}_epoch_end", f"on_{word}_start")
        if name in epoch_hooks or name == f"{'training' if stage == 'train' else word}_epoch_end":
            return HookDefaults(False, True, False, stage)
    return None


_STEP_HOOKS = {"training_step": "train", "validation_step": "val", "test_step": "test"}

# Metric families whose value over an epoch is not a (weighted) mean of batch values.
_NON_ADDITIVE = (
    "F1",
    "FBeta",
    "Precision",
    "Recall",
    "AUROC",
    "AveragePrecision",
    "ROC",
    "Jaccard",
    "IoU",
    "Dice",
    "MatthewsCorrCoef",
    "CohenKappa",
    "Specificity",
    "Sensitivity",
    "Pearson",
    "Spearman",
    "R2",
    "ExplainedVariance",
    "Kendall",
    "Calibration",
    "Hamming",
    "ExactMatch",
    "StatScores",
    "PrecisionRecallCurve",
    "EER",
    "Concordance",
)
_NON_ADDITIVE_FUNCTIONS = (
    "f1",
    "fbeta",
    "precision",
    "recall",
    "auroc",
    "roc_auc",
    "average_precision",
    "jaccard",
    "dice",
    "matthews",
    "cohen_kappa",
    "specificity",
    "pearson",
    "spearman",
    "r2",
    "explained_variance",
    "kendall",
    "calibration",
    "hamming",
)


def is_additive(name: str, keywords: dict[str, str | None]) -> bool:
    """Whether the batch mean of metric ``name`` (a class or a function) equals its epoch value on one process.

    ``keywords`` holds the constant keyword arguments of its call (``average``, ``task``). Multiclass and
    multilabel classes default to the macro average, which is not additive; the task wrappers
    (``Accuracy(task=...)``) and plain accuracy functions default to micro.

    Examples:
        >>> is_additive("MulticlassAccuracy", {}), is_additive("MulticlassAccuracy", {"average": "micro"})
        (False, True)
        >>> is_additive("Accuracy", {"task": "multiclass"}), is_additive("f1_score", {})
        (True, False)
    """
    lowered = name.lower()
    average = keywords.get("average")
    if average not in (None, "micro") or keywords.get("multidim_average") == "samplewise":
        return False
    if name[:1].isupper():
        if any(part in name for part in _NON_ADDITIVE):
            return False
        return not (name.startswith(("Multiclass", "Multilabel")) and average is None)  # macro by default
    if any(part in lowered for part in _NON_ADDITIVE_FUNCTIONS):
        return False
    return not (lowered.startswith(("multiclass_", "multilabel_")) and average is None)


BEST_TRACKERS = ("MaxMetric", "MinMetric", "RunningMean", "RunningSum", "Running")
"""Metrics meant to span epochs (a best value, a running window): never reset, never an error."""
