"""The lint on real code: the shared corpus of labelled excerpts from public projects (`../shared/lint_corpus`).

The excerpts are other people's code, kept outside this repository. Where the folder is absent (a
user's clone), these tests skip and say why; under CI (`CI` set) its absence is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from lightning_metrics_base.lint import apply_fixes, lint_paths, lint_source

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "lint_corpus"


def _corpus() -> Path:
    if not (CORPUS / "expected.json").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI runs beside the shared corpus, but {CORPUS} has no expected.json")
        pytest.skip(f"the shared corpus of real code is not beside this clone ({CORPUS})")
    return CORPUS


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_corpus", ROOT / "benchmarks" / "lint_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lint_corpus", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_recall_of_required_findings_is_at_least_nine_in_ten() -> None:
    result = _scorer().score(_corpus())
    assert result.required >= 80
    assert result.recall >= 0.90, result.missed


def test_no_error_or_warning_on_correct_real_code() -> None:
    assert _scorer().score(_corpus()).ok_alarms == []


def test_every_report_on_the_corpus_matches_a_label() -> None:
    # a report no label holds is a false alarm (labels list what may be reported, info included)
    assert _scorer().score(_corpus()).false_alarms == []


def test_an_error_label_reported_as_info_does_not_count(tmp_path: Path) -> None:
    corpus = _corpus()
    entries = json.loads((corpus / "expected.json").read_text())
    entry = next(e for e in entries if e["file"] == "trap_compute_in_step_2.py")
    (tmp_path / entry["file"]).write_text((corpus / entry["file"]).read_text())
    (tmp_path / "expected.json").write_text(json.dumps([entry]))
    scorer = _scorer()
    assert scorer.score(tmp_path).found == 1
    entry["findings"][0]["rule"] = "LM303"  # a rule it reports as info at most, on a line it does not report
    (tmp_path / "expected.json").write_text(json.dumps([entry]))
    assert scorer.score(tmp_path).found == 0


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.py")) or ["(no corpus)"])
def test_fix_on_real_code_parses_and_adds_no_finding(name: str) -> None:
    path = _corpus() / name
    source = path.read_text()
    before = lint_paths([path])
    fixed = apply_fixes(source, before)
    compile(fixed, name, "exec")
    after = lint_source(fixed, str(path))

    def key(finding: object) -> tuple[str, str]:
        return finding.code, finding.message[:40]  # type: ignore[attr-defined]

    assert {key(f) for f in after} <= {key(f) for f in before}
