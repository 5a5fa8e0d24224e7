"""Lightning's logging semantics, as data: which hook logs with which defaults, the stages, what is additive.

Shared by the lint (which reads code) and `MetricLogCheck` (which watches a fit). Only the standard
library: the lint never imports torch, Lightning or torchmetrics.

`HOOKS` is Lightning's own table (``_FxValidator.functions``) for the hooks in which ``self.log`` is
allowed, and the hooks Lightning 2.0 removed (``training_step_end``, ``validation_epoch_end(outputs)``,
...) with the defaults they had in 1.x, because much code that people still run was written for them.
A helper called from a hook logs with that hook's defaults: ``self.log`` reads the running hook's name.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("train", "val", "test")
"""The stages that log, in the order they run in a fit."""


@dataclass(frozen=True)
class HookDefaults:
    """Lightning's `self.log` defaults in one hook (its ``fx_validator`` entry), and the hook's stage."""

    on_step: bool
    on_epoch: bool
    per_batch: bool
    stage: str | None


def _per_batch(stage: str) -> HookDefaults:
    # Lightning: training hooks log per step by default; validation and test hooks per epoch
    return HookDefaults(stage == "train", stage != "train", True, stage)


def _per_epoch(stage: str | None) -> HookDefaults:
    return HookDefaults(False, True, False, stage)


HOOKS: dict[str, HookDefaults] = {
    # per batch, in training
    "training_step": _per_batch("train"),
    "on_train_batch_start": _per_batch("train"),
    "on_train_batch_end": _per_batch("train"),
    "on_before_backward": _per_batch("train"),
    "backward": _per_batch("train"),
    "on_after_backward": _per_batch("train"),
    "on_before_optimizer_step": _per_batch("train"),
    "optimizer_step": _per_batch("train"),
    "configure_gradient_clipping": _per_batch("train"),
    "clip_gradients": _per_batch("train"),
    "on_before_zero_grad": _per_batch("train"),
    "optimizer_zero_grad": _per_batch("train"),
    # per batch, in validation and test
    "validation_step": _per_batch("val"),
    "on_validation_batch_start": _per_batch("val"),
    "on_validation_batch_end": _per_batch("val"),
    "test_step": _per_batch("test"),
    "on_test_batch_start": _per_batch("test"),
    "on_test_batch_end": _per_batch("test"),
    # once per epoch or stage
    "on_train_start": _per_epoch("train"),
    "on_train_epoch_start": _per_epoch("train"),
    "on_train_epoch_end": _per_epoch("train"),
    "on_validation_start": _per_epoch("val"),
    "on_validation_epoch_start": _per_epoch("val"),
    "on_validation_epoch_end": _per_epoch("val"),
    "on_test_start": _per_epoch("test"),
    "on_test_epoch_start": _per_epoch("test"),
    "on_test_epoch_end": _per_epoch("test"),
}

REMOVED_IN_2_0: dict[str, HookDefaults] = {
    # Lightning 1.x hooks that 2.0 removed, with the defaults they had
    "training_step_end": _per_batch("train"),
    "validation_step_end": _per_batch("val"),
    "test_step_end": _per_batch("test"),
    "training_epoch_end": _per_epoch("train"),
    "validation_epoch_end": _per_epoch("val"),
    "test_epoch_end": _per_epoch("test"),
}


def hook_defaults(name: str) -> HookDefaults | None:
    """Lightning's logging defaults for the hook ``name`` (``None``: not a hook that logs).

    Examples:
        >>> hook_defaults("validation_step")
        HookDefaults(on_step=False, on_epoch=True, per_batch=True, stage='val')
        >>> hook_defaults("training_step").on_epoch, hook_defaults("on_train_epoch_end").per_batch
        (False, False)
        >>> hook_defaults("validation_epoch_end").stage, hook_defaults("setup")
        ('val', None)
    """
    return HOOKS.get(name) or REMOVED_IN_2_0.get(name)


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
