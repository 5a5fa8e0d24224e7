"""`lightning-metrics-lint`: find the traps of logging torchmetrics in LightningModules written by hand.

``python -m lightning_metrics_base.lint PATH...`` (or the console script ``lightning-metrics-lint``)
reads Python files with the standard library's `ast`, never importing torch, Lightning or the code
it reads, and reports ruff-style ``path:line:col: CODE [severity] message``. The rules are in
`rules.RULES`; what the linted tree defines (its metric classes and functions, across files) is in
`project`; the analysis that follows Lightning's logging semantics is in `analysis`; notebooks are read
by `notebooks`.

Examples:
    >>> findings = lint_source('''
    ... from torchmetrics.classification import MulticlassF1Score
    ... class M:
    ...     def __init__(self):
    ...         self.f1 = MulticlassF1Score(3)
    ...     def validation_step(self, batch, batch_idx):
    ...         self.f1.update(batch[0], batch[1])
    ...         self.log("val_f1", self.f1.compute())
    ... ''')
    >>> [(finding.line, finding.code) for finding in findings]
    [(8, 'LM102'), (8, 'LM301')]
"""

from __future__ import annotations

from lightning_metrics_base.lint.analysis import FileAnalysis, Finding
from lightning_metrics_base.lint.cli import apply_fixes, lint_paths, lint_source, main
from lightning_metrics_base.lint.rules import RULES, Rule

__all__ = ["RULES", "FileAnalysis", "Finding", "Rule", "apply_fixes", "lint_paths", "lint_source", "main"]
