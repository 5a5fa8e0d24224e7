"""`lightning-metrics-lint` on a corpus of modules written by hand, its command line, `--fix` under a Trainer."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import NUM_CLASSES, classification_data, loader, make_trainer
from pl_face.pytorch_lightning_project import pristine_environment
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from lightning_metrics_base.lint import RULES, apply_fixes, lint_paths, lint_source, main

CASES = Path(__file__).parent / "lint_cases"
EXPECT = re.compile(r"#\s*expect:\s*(LM\d{3}(?:\s*,\s*LM\d{3})*)")


def expected(path: Path) -> set[tuple[int, str]]:
    found = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = EXPECT.search(line)
        if match:
            found |= {(number, code.strip()) for code in match.group(1).split(",")}
    return found


@pytest.mark.parametrize("path", sorted(CASES.glob("*.py")), ids=lambda path: path.stem)
def test_the_corpus_gives_exactly_the_annotated_findings(path: Path) -> None:
    got = {(finding.line, finding.code) for finding in lint_source(path.read_text(), str(path))}
    assert got == expected(path)


def test_the_corpus_covers_every_rule_and_has_correct_modules() -> None:
    annotated = {code for path in CASES.glob("*.py") for _, code in expected(path)}
    assert annotated == set(RULES)
    assert [path.stem for path in CASES.glob("correct_*.py")] and all(
        not expected(path) for path in CASES.glob("correct_*.py")
    )


class TestSeverity:
    def test_non_additive_metrics_are_errors_additive_ones_warnings(self) -> None:
        findings = {f.line: f for f in lint_source((CASES / "forward_logged_on_epoch.py").read_text())}
        assert findings[31].severity == "error"  # macro F1
        assert findings[33].severity == "warning"  # Accuracy(task="multiclass") is micro: additive
        assert "additive" in findings[33].message and "DDP" in findings[33].message

    def test_multiclass_classes_default_to_macro(self) -> None:
        (finding,) = lint_source((CASES / "collection_log_dict.py").read_text())
        assert finding.severity == "error"

    def test_a_monitored_name_says_so(self) -> None:
        source = (CASES / "seed_compute_in_step.py").read_text() + (
            "\nfrom lightning.pytorch.callbacks import ModelCheckpoint\n"
            'checkpoint = ModelCheckpoint(monitor="val_f1", mode="max")\n'
        )
        finding = next(f for f in lint_source(source) if f.code == "LM102")
        assert "`val_f1` is monitored" in finding.message and "wrong checkpoint" in finding.message

    def test_messages_give_the_fix(self) -> None:
        finding = next(f for f in lint_source((CASES / "seed_compute_in_step.py").read_text()) if f.code == "LM102")
        assert "Pass the Metric object to self.log" in finding.message and "self.val_f1" in finding.message


class TestLightningSemantics:
    @pytest.mark.parametrize(
        ("hook", "options", "found"),
        [
            ("training_step", "", False),  # on_step only by default
            ("training_step", ", on_epoch=True", True),
            ("validation_step", "", True),  # on_epoch by default
            ("validation_step", ", on_epoch=False", False),
            ("on_train_batch_end", ", on_epoch=True", True),
            ("on_validation_epoch_end", "", False),  # an epoch hook: the value is logged once
            ("validation_step", ", on_epoch=self.flag", False),  # decided at run time: never guessed
        ],
    )
    def test_the_hook_decides_the_default(self, hook: str, options: str, found: bool) -> None:
        params = "self, batch, batch_idx" if hook.endswith("step") else "self, *args"
        source = f"""
from torchmetrics.classification import MulticlassF1Score
class M:
    def __init__(self):
        self.f1 = MulticlassF1Score(3)
    def {hook}({params}):
        self.log("f1", self.f1(self.x, self.y){options})
"""
        assert bool(lint_source(source)) is found

    def test_noqa(self) -> None:
        text = (CASES / "seed_compute_in_step.py").read_text()
        source = text.replace("# expect: LM102, LM301", "# noqa: LM102, LM301")
        assert lint_source(source) == []
        assert [f.code for f in lint_source(text.replace("# expect: LM102, LM301", "# noqa: LM102"))] == ["LM301"]
        assert lint_source(source.replace("# noqa: LM102, LM301", "# noqa: LM101")) != []
        assert lint_source(source.replace("# noqa: LM102, LM301", "# noqa")) == []


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lightning_metrics_base.lint", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


class TestCommandLine:
    def test_text_output_and_exit_status(self) -> None:
        result = run(str(CASES / "seed_compute_in_step.py"))
        assert result.returncode == 1
        assert re.match(r"^\S+seed_compute_in_step\.py:29:9: LM102 \[error\] val_f1: ", result.stdout)
        assert run(str(CASES / "correct_template.py")).returncode == 0

    def test_json_and_github_formats(self) -> None:
        result = run("--format", "json", str(CASES / "forward_logged_on_epoch.py"))
        items = json.loads(result.stdout)
        assert [(item["line"], item["code"], item["severity"]) for item in items] == [
            (25, "LM101", "error"),
            (31, "LM101", "error"),
            (33, "LM101", "warning"),
        ]
        assert set(items[0]) == {"path", "line", "col", "code", "severity", "message"}
        github = run("--format", "github", str(CASES / "forward_logged_on_epoch.py")).stdout.splitlines()
        assert github[0].startswith("::error file=") and ",line=25,col=9,title=LM101::" in github[0]
        assert github[2].startswith("::warning file=")

    def test_select_and_ignore(self) -> None:
        folder = str(CASES)
        selected = json.loads(run("--format", "json", "--select", "LM2", folder).stdout)
        assert selected and {item["code"][:3] for item in selected} == {"LM2"}
        ignored = json.loads(run("--format", "json", "--ignore", "LM1,LM2", folder).stdout)
        assert ignored and not {item["code"][:3] for item in ignored} & {"LM1", "LM2"}

    def test_usage_errors_exit_2(self, tmp_path: Path) -> None:
        assert run("--select", "XX9", str(CASES)).returncode == 2
        assert run(str(tmp_path / "missing.py")).returncode == 2
        assert run().returncode == 2

    def test_a_file_that_does_not_parse_is_reported_and_skipped(self, tmp_path: Path) -> None:
        (tmp_path / "broken.py").write_text("def broken(:\n")
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "model.py").write_text((CASES / "seed_compute_in_step.py").read_text())
        (tmp_path / ".venv").mkdir()
        (tmp_path / ".venv" / "skipped.py").write_text((CASES / "seed_compute_in_step.py").read_text())
        codes = sorted(
            (Path(item["path"]).name, item["code"])
            for item in json.loads(run("--format", "json", str(tmp_path)).stdout)
        )
        assert codes == [("broken.py", "E999"), ("model.py", "LM102"), ("model.py", "LM301")]

    def test_code_nested_too_deep_is_reported_and_skipped_not_a_crash(self) -> None:
        head = "import lightning as L\nclass M(L.LightningModule):\n    def validation_step(self, b, i):\n"
        deep = head + "        self.log('x', " + "+".join(["b"] * 30000) + ")\n"  # parses; too deep to follow
        (finding,) = lint_source(deep, "deep.py")
        assert finding.code == "E999" and "nests deeper than the analysis follows" in finding.message

    def test_the_lint_imports_neither_torch_nor_lightning(self) -> None:
        code = (
            "import sys, lightning_metrics_base.lint as lint; lint.lint_paths([sys.argv[1]]);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'torchmetrics')))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, str(CASES)],
            capture_output=True,
            text=True,
            timeout=60,
            env=pristine_environment(),
        )
        assert result.stdout.strip() == "[]", result.stderr

    def test_the_console_script_is_declared(self) -> None:
        pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
        assert 'lightning-metrics-lint = "lightning_metrics_base.lint.cli:main"' in pyproject
        hooks = (Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text()
        assert "entry: lightning-metrics-lint" in hooks and "types_or: [python, jupyter]" in hooks


class TestFix:
    @pytest.mark.parametrize(
        "name",
        [
            "seed_compute_in_step",
            "forward_logged_on_epoch",
            "collection_log_dict",
            "compute_and_reset",
            "forward_bound_and_callback",
        ],
    )
    def test_fixed_files_parse_and_lint_clean_for_what_was_fixed(self, name: str, tmp_path: Path) -> None:
        source = (CASES / f"{name}.py").read_text()
        before = lint_source(source)
        fixed = apply_fixes(source, before)
        after = lint_source(fixed)
        fixed_codes = {(f.code, f.message.split(":")[0]) for f in before if f.fix}
        assert fixed_codes and not fixed_codes & {(f.code, f.message.split(":")[0]) for f in after}
        assert [f for f in after if not f.fix] == [f for f in after]  # nothing new to fix
        # only the lines of the fixed findings changed; everything else is untouched
        matcher = difflib.SequenceMatcher(a=source.splitlines(), b=fixed.splitlines(), autojunk=False)
        changed = {
            line + 1 for tag, start, end, _, _ in matcher.get_opcodes() if tag != "equal" for line in range(start, end)
        }
        edited = {line for f in before for start, _, end, _, _ in f.fix for line in range(start, end + 1)}
        assert changed and changed <= edited
        assert {(f.code, f.message[:40]) for f in after} <= {(f.code, f.message[:40]) for f in before}  # none new

    def test_fix_writes_and_diff_only_shows(self, tmp_path: Path) -> None:
        target = tmp_path / "model.py"
        target.write_text((CASES / "forward_logged_on_epoch.py").read_text())
        shown = run("--diff", str(target))
        assert shown.returncode == 1 and "+        self.val_f1(logits, y)" in shown.stdout
        assert target.read_text() == (CASES / "forward_logged_on_epoch.py").read_text()
        assert main(["--fix", str(target)]) == 0  # everything left was fixed
        assert 'self.log("val_f1", self.val_f1)' in target.read_text()


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fit(module: ModuleType) -> tuple[dict[str, float], Any]:
    import torch

    torch.manual_seed(0)
    model = module.Model()
    train, val = classification_data(200, seed=41), classification_data(130, seed=42)
    callbacks = [module.F1Callback()] if hasattr(module, "F1Callback") else []
    trainer = make_trainer(max_epochs=2, callbacks=callbacks)
    trainer.fit(model, loader(train, batch_size=32), loader(val, batch_size=32))
    return {name: float(value) for name, value in trainer.callback_metrics.items()}, model


@pytest.mark.parametrize(
    ("name", "logged", "reference"),
    [
        ("seed_compute_in_step", "val_f1", "f1"),
        ("forward_logged_on_epoch", "val_f1", "f1"),
        ("collection_log_dict", "val_precision", "precision"),
        ("compute_and_reset", "val_f1", "f1"),
        ("forward_bound_and_callback", "val_f1", "f1"),
    ],
)
def test_fix_turns_the_batch_mean_into_the_epoch_value(name: str, logged: str, reference: str, tmp_path: Path) -> None:
    import torch
    from torchmetrics.functional.classification import multiclass_precision

    original = CASES / f"{name}.py"
    fixed = tmp_path / f"{name}_fixed.py"
    fixed.write_text(apply_fixes(original.read_text(), lint_paths([original])))
    val = classification_data(130, seed=42)
    functions = {"f1": multiclass_f1_score, "precision": multiclass_precision, "acc": multiclass_accuracy}
    values = {}
    for label, path in (("before", original), ("after", fixed)):
        metrics, model = fit(load(path, f"{name}_{label}"))
        with torch.no_grad():
            preds = model(val.tensors[0])
        truth = float(functions[reference](preds, val.tensors[1], num_classes=NUM_CLASSES, average="macro"))
        values[label] = (metrics[logged], truth)
    before, truth_before = values["before"]
    after, truth_after = values["after"]
    assert after == pytest.approx(truth_after, abs=1e-6)  # the metric over the epoch
    assert abs(before - truth_before) > 1e-4  # the batch mean (or running mean) it replaces


class TestFixLeavesWhatItCannotSee:
    def test_compute_and_reset_goes_together_and_a_metric_used_elsewhere_is_left(self) -> None:
        source = (CASES / "compute_and_reset.py").read_text()
        findings = lint_source(source)
        by_name = {f.message.split(":")[0]: f for f in findings if f.code == "LM102"}
        assert "per-batch value (the step resets the metric)" in by_name["val_f1"].message
        assert by_name["val_f1"].fix and not by_name["val_auroc"].fix  # val_auroc is read at the epoch end too
        fixed = apply_fixes(source, findings)
        assert "self.val_f1.reset()" not in fixed and 'self.log("val_f1", self.val_f1, on_epoch=True)' in fixed
        assert "self.val_auroc.reset()" in fixed and "self.val_auroc.compute()" in fixed
        assert [f.message.split(":")[0] for f in lint_source(fixed) if f.code == "LM102"] == ["val_auroc"]

    @pytest.mark.parametrize(
        "extra",
        [
            "    def on_validation_epoch_end(self):\n        self.log('f1_again', self.val_f1.compute())\n",
            "    def test_step(self, batch, batch_idx):\n        self.val_f1.update(self(batch[0]), batch[1])\n",
            "    def helper(self):\n        return self.val_f1\n",
        ],
    )
    def test_no_fix_where_the_metric_has_another_use(self, extra: str) -> None:
        source = (CASES / "seed_compute_in_step.py").read_text() + extra
        finding = next(f for f in lint_source(source) if f.code == "LM102")
        assert finding.fix == () and apply_fixes(source, [finding]) == source


class TestLightningSemanticsTable:
    def test_the_hook_table_is_lightnings_own(self) -> None:
        from lightning.pytorch.trainer.connectors.logger_connector.fx_validator import _FxValidator

        from lightning_metrics_base.lightning_semantics import HOOKS

        allowed = {name: options for name, options in _FxValidator.functions.items() if options is not None}
        assert set(allowed) <= set(HOOKS)
        # a hook of the table that this Lightning does not know is a newer or older one, never one it forbids
        assert not {name for name in HOOKS if name not in allowed and name in _FxValidator.functions}
        for name, options in allowed.items():
            defaults = HOOKS[name]
            assert (defaults.on_step, defaults.on_epoch) == (options["default_on_step"], options["default_on_epoch"])
            # a hook that may log per step runs once per batch
            assert defaults.per_batch == (True in options["allowed_on_step"]), name

    def test_hooks_removed_in_2_0_keep_their_1x_defaults(self) -> None:
        from lightning_metrics_base.lightning_semantics import REMOVED_IN_2_0, hook_defaults

        assert hook_defaults("validation_epoch_end") == REMOVED_IN_2_0["validation_epoch_end"]
        assert hook_defaults("training_step_end").on_step and not hook_defaults("training_step_end").on_epoch
        assert hook_defaults("test_step_end").on_epoch and hook_defaults("test_step_end").per_batch
        assert not hook_defaults("training_epoch_end").per_batch


class TestPreCommit:
    def test_the_documented_configuration_runs_as_written_offline_and_installs_nothing(self, tmp_path: Path) -> None:
        docs = (Path(__file__).parents[1] / "docs" / "traps.md").read_text()
        snippet = docs.split("From pre-commit:", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
        shutil = pytest.importorskip("shutil")
        pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
        assert pre_commit, "pre-commit is a test dependency"
        repo = tmp_path / "repo"
        repo.mkdir()
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PRE_COMMIT_HOME": str(tmp_path / "cache"),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }

        def git(*args: str) -> None:
            subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

        git("init", "-q")
        (repo / ".pre-commit-config.yaml").write_text(snippet)
        (repo / "good.py").write_text((CASES / "correct_template.py").read_text())
        git("add", "-A")
        passed = subprocess.run([pre_commit, "run", "--all-files"], cwd=repo, env=env, capture_output=True, text=True)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        (repo / "model.py").write_text((CASES / "seed_compute_in_step.py").read_text())
        notebook = {"cells": [{"cell_type": "code", "source": (CASES / "forward_logged_on_epoch.py").read_text()}]}
        (repo / "notebook.ipynb").write_text(json.dumps(notebook))
        git("add", "-A")
        failed = subprocess.run([pre_commit, "run", "--all-files"], cwd=repo, env=env, capture_output=True, text=True)
        assert failed.returncode == 1
        assert "model.py:29:9: LM102 [error]" in failed.stdout and "notebook.ipynb:cell 1:" in failed.stdout
        cache = tmp_path / "cache"
        assert not cache.exists() or not [p for p in cache.iterdir() if p.name.startswith("repo")]  # no environment


def _notebook(*cells: str, markdown: bool = True) -> str:
    items = [{"cell_type": "markdown", "source": ["# A title"]}] if markdown else []
    items += [{"cell_type": "code", "source": cell.splitlines(keepends=True), "outputs": []} for cell in cells]
    return json.dumps({"cells": items, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


NOTEBOOK_CELLS = (
    "%matplotlib inline\n!pip install torchmetrics\nimport lightning as L\nfrom torchmetrics import F1Score",
    "class M(L.LightningModule):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.f1 = F1Score(task='multiclass', num_classes=3)\n"
    "    def validation_step(self, batch, batch_idx):\n"
    "        files = !ls\n"
    "        self.log('val_f1', self.f1(batch[0], batch[1]))\n"
    "        self.log('val_f1_again', self.f1(batch[0], batch[1]))  # noqa: LM101",
    "def broken(:\n    pass",
)


class TestNotebooks:
    def test_cells_are_linted_with_magics_blanked_and_reported_per_cell(self, tmp_path: Path) -> None:
        path = tmp_path / "tutorial.ipynb"
        path.write_text(_notebook(*NOTEBOOK_CELLS))
        items = json.loads(run("--format", "json", str(path)).stdout)
        assert [(item["cell"], item["line"], item["code"]) for item in items] == [(2, 7, "LM101"), (3, 1, "E999")]
        text = run(str(path)).stdout
        assert f"{path}:cell 2:7:9: LM101 [error]" in text and f"{path}:cell 3:1:" in text

    def test_folders_include_notebooks_and_fix_skips_them_saying_so(self, tmp_path: Path) -> None:
        (tmp_path / "tutorial.ipynb").write_text(_notebook(*NOTEBOOK_CELLS[:2]))
        assert [item["code"] for item in json.loads(run("--format", "json", str(tmp_path)).stdout)] == ["LM101"]
        before = (tmp_path / "tutorial.ipynb").read_text()
        fixed = run("--fix", str(tmp_path))
        assert "notebooks are not rewritten by --fix" in fixed.stderr
        assert (tmp_path / "tutorial.ipynb").read_text() == before

    def test_a_file_that_is_not_a_notebook_is_reported(self, tmp_path: Path) -> None:
        (tmp_path / "broken.ipynb").write_text("{not json")
        (item,) = json.loads(run("--format", "json", str(tmp_path / "broken.ipynb")).stdout)
        assert item["code"] == "E999" and "not a notebook" in item["message"]


class TestExitStatus:
    def test_only_errors_and_warnings_fail_by_default(self, tmp_path: Path) -> None:
        info_only = tmp_path / "info.py"
        info_only.write_text(
            (CASES / "epoch_end_traps.py").read_text().split("    def on_validation_epoch_end")[0]
            + "\n    def configure_optimizers(self):\n        return None\n"
        )
        items = json.loads(run("--format", "json", str(info_only)).stdout)
        assert {item["severity"] for item in items} == {"info"}
        assert run(str(info_only)).returncode == 0
        assert run("--fail-on", "info", str(info_only)).returncode == 1
        assert run("--fail-on", "error", str(CASES / "forward_logged_on_epoch.py")).returncode == 1
        assert run("--exit-zero", str(CASES / "seed_compute_in_step.py")).returncode == 0
        assert run("--fail-on", "fatal", str(info_only)).returncode == 2

    def test_a_path_without_python_says_so_and_exits_0(self, tmp_path: Path) -> None:
        empty = run(str(tmp_path))
        assert empty.returncode == 0 and "No Python files or notebooks found" in empty.stderr
        readme = tmp_path / "README.md"
        readme.write_text("self.log('val_f1', self.f1.compute())\n")
        named = run(str(readme))
        assert named.returncode == 0 and named.stdout == "" and "No Python files" in named.stderr


def test_a_callbacks_metric_is_not_fixed_into_an_object_lightning_refuses() -> None:
    # Lightning logs a Metric object only when it is an attribute of the LightningModule
    for name in ("callback_logs", "forward_bound_and_callback"):
        source = (CASES / f"{name}.py").read_text()
        in_callback = [f for f in lint_source(source) if f.code in ("LM101", "LM102") and "pl_module" not in f.message]
        in_callback = [f for f in in_callback if f.message.split(":")[0] in ("val_f1_cb", "val_f1_batch")]
        assert in_callback and all(f.fix == () for f in in_callback)
        assert all("compute, log and reset it in the epoch-end hook" in f.message for f in in_callback)
