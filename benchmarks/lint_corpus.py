"""Score the lint against a labelled corpus of real code (the shared `lint_corpus`, or any folder like it).

A folder holds Python files and an ``expected.json`` listing, per file, the findings a correct checker
reports: rule, line, the statement span it may be reported anywhere in, alternative lines (a call site
or a callee), severity, and whether it is required. A reported finding matches a label when the rule
is equal and its line lies in the span or on an alternative line; an error or warning label reported
as info does not count. Every report that matches no label is a false alarm.

Run: ``python benchmarks/lint_corpus.py [FOLDER]`` (default ``../shared/lint_corpus``), or
``python benchmarks/lint_corpus.py --manifest benchmarks/lint_real_code.json ROOT`` for a manifest of
real files (``repo``, ``commit``, ``path``, findings; a notebook's findings carry their ``cell``) whose
repositories were fetched at those commits into ``ROOT/<owner>+<name>/``. The manifest's files are
other people's code: they are not kept here, only the facts about them.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lightning_metrics_base.lint.analysis import Finding
from lightning_metrics_base.lint.cli import lint_paths

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "lint_corpus"


@dataclass
class Score:
    """What the lint found of the labels, and what it reported that no label holds."""

    required: int = 0
    found: int = 0
    hard_required: int = 0
    hard_found: int = 0
    plain_required: int = 0
    plain_found: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    ok_alarms: list[str] = field(default_factory=list)
    per_rule: Counter[str] = field(default_factory=Counter)
    per_rule_found: Counter[str] = field(default_factory=Counter)

    @property
    def recall(self) -> float:
        return self.found / self.required if self.required else 1.0


def _matches(label: dict, finding: Finding) -> bool:
    if label.get("cell") != finding.cell:
        return False
    first, last = label.get("span") or [label["line"], label["line"]]
    return first <= finding.line <= last or finding.line in label.get("alt_lines", [])


def score(folder: Path, manifest: Path | None = None) -> Score:
    """Lint every labelled file of ``folder`` (or of a manifest's repositories under it) and compare."""
    if manifest is None:
        entries = json.loads((folder / "expected.json").read_text())
    else:
        entries = json.loads(manifest.read_text())
        for entry in entries:
            entry["file"] = str(Path(entry["repo"].replace("/", "+")) / entry["path"])
    result = Score()
    for entry in entries:
        path = folder / entry["file"]
        findings = [f for f in lint_paths([path]) if f.code != "E999"]
        labels = entry["findings"]
        used: set[int] = set()
        for label in labels:
            serious = label["severity"] in ("error", "warning")
            hits = [
                f
                for f in findings
                if f.code == label["rule"] and _matches(label, f) and (not serious or f.severity != "info")
            ]
            matched_any = [f for f in findings if f.code == label["rule"] and _matches(label, f)]
            used.update(id(f) for f in matched_any)
            if not (label["required"] and serious):
                continue
            result.required += 1
            result.per_rule[label["rule"]] += 1
            if label.get("hard"):
                result.hard_required += 1
            else:
                result.plain_required += 1
            if hits:
                result.found += 1
                result.per_rule_found[label["rule"]] += 1
                result.hard_found += bool(label.get("hard"))
                result.plain_found += not label.get("hard")
            else:
                result.missed.append(f"{entry['file']}:{label['line']} {label['rule']} ({label['severity']})")
        for f in findings:
            if id(f) in used:
                continue
            where = f"cell {f.cell}:" if f.cell is not None else ""
            text = f"{entry['file']}:{where}{f.line}:{f.col} {f.code} [{f.severity}] {f.message[:110]}"
            result.false_alarms.append(text)
            correct = entry["file"].startswith("ok_") or not [x for x in labels if x["required"]]
            if correct and f.severity != "info":
                result.ok_alarms.append(text)
    return result


def main(argv: list[str]) -> int:
    manifest = None
    if argv[:1] == ["--manifest"]:
        manifest, argv = Path(argv[1]), argv[2:]
    folder = Path(argv[0]) if argv else DEFAULT
    result = score(folder, manifest)
    print(f"recall of required error/warning findings: {result.found}/{result.required} = {result.recall:.2f}")
    print(f"  plain: {result.plain_found}/{result.plain_required}", end="; ")
    print(f"HARD (data flow across methods or files): {result.hard_found}/{result.hard_required}")
    for rule in sorted(result.per_rule):
        print(f"  {rule}: {result.per_rule_found[rule]}/{result.per_rule[rule]}")
    print(f"reports matching no label: {len(result.false_alarms)} (error/warning on ok files: {len(result.ok_alarms)})")
    for line in result.missed:
        print("  missed", line)
    for line in result.false_alarms:
        print("  unlabelled", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
