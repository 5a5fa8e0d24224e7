"""The lint's semantics, one behaviour per test, on small modules written here (SPEC: modules written by hand)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lightning_metrics_base.lint import lint_paths, lint_source

HEAD = """
import lightning as L
import torch
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
"""


def findings(body: str) -> list[tuple[int, str, str]]:
    source = HEAD + textwrap.dedent(body)
    return [(f.line - HEAD.count("\n"), f.code, f.severity) for f in lint_source(source)]


def codes(body: str) -> set[str]:
    return {code for _, code, _ in findings(body)}


class TestWhatIsAMetric:
    def test_a_metric_subclass_and_a_metric_function_of_another_file(self, tmp_path: Path) -> None:
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "__init__.py").write_text("")
        (tmp_path / "pkg" / "scores.py").write_text(
            "from torchmetrics import Metric\nfrom sklearn.metrics import f1_score\n"
            "class Hits(Metric):\n    pass\n"
            "def batch_f1(y, p):\n    return f1_score(y, p, average='macro')\n"
        )
        model = tmp_path / "pkg" / "model.py"
        model.write_text(
            "import lightning as L\nfrom pkg.scores import Hits, batch_f1\n"
            "class M(L.LightningModule):\n"
            "    def __init__(self):\n        super().__init__()\n        self.hits = Hits()\n"
            "    def validation_step(self, batch, batch_idx):\n"
            "        self.log('hits', self.hits(batch[0], batch[1]))\n"
            "        self.log('f1', batch_f1(batch[1], batch[0]))\n"
        )
        found = {(f.line, f.code, f.severity) for f in lint_paths([model])}
        assert found == {(8, "LM101", "error"), (9, "LM101", "error")}  # reported only in the file given

    def test_a_lightning_module_whose_base_class_and_helper_are_in_another_file(self, tmp_path: Path) -> None:
        (tmp_path / "base.py").write_text(
            "import lightning as L\nfrom torchmetrics.functional import f1_score\n"
            "class Base(L.LightningModule):\n"
            "    def shared(self, batch, stage):\n"
            "        self.log(f'{stage}_f1', f1_score(batch[0], batch[1], task='binary'))\n"
        )
        child = tmp_path / "child.py"
        child.write_text(
            "from base import Base\nclass Child(Base):\n"
            "    def validation_step(self, batch, batch_idx):\n        self.shared(batch, 'val')\n"
        )
        (finding,) = lint_paths([child])
        assert (finding.line, finding.code) == (4, "LM101") and "another file" in finding.message

    def test_legacy_pytorch_lightning_metrics(self) -> None:
        body = """
        import pytorch_lightning as pl
        class M(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.f1 = pl.metrics.F1(num_classes=3)
            def validation_step(self, batch, batch_idx):
                self.log("f1", self.f1(batch[0], batch[1]))
        """
        assert codes(body) == {"LM101"}

    def test_metrics_handed_to_the_constructor_and_built_by_name(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self, metrics, names: list[str]):
                super().__init__()
                self.val_metrics = metrics["val"]
                self.extra = {n: getattr(torchmetrics, n)().to("cuda") for n in names}
            def validation_step(self, batch, batch_idx):
                self.log_dict(self.val_metrics(batch[0], batch[1]))
        """
        assert findings(body) == [(6, "LM204", "error"), (8, "LM101", "error")]

    def test_a_dict_that_holds_metrics_holds_them_in_every_branch(self) -> None:
        body = """
        def build(names, extra):
            found = {}
            for name in names:
                if name in extra:
                    found[name] = extra[name]().to("cuda")
                else:
                    found[name] = getattr(torchmetrics, name)().to("cuda")
            return found
        """
        assert [(line, code) for line, code, _ in findings(body)] == [(6, "LM204"), (8, "LM204")]

    def test_a_loss_that_is_only_called_and_a_compute_with_arguments_are_not_metrics(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self, loss_fn, scorer):
                super().__init__()
                self.loss_fn = loss_fn
                self.scorer = scorer
            def validation_step(self, batch, batch_idx):
                self.log("val_loss", self.loss_fn(batch[0], batch[1]))
                self.log("score", self.scorer.compute(batch[0], batch[1]))
        """
        assert findings(body) == []

    def test_a_hugging_face_evaluate_metric_on_one_batch(self) -> None:
        body = """
        import evaluate
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.metric = evaluate.load("f1")
            def validation_step(self, batch, batch_idx):
                score = self.metric.compute(predictions=batch[0], references=batch[1])
                self.log("f1", score["f1"])
        """
        assert codes(body) == {"LM101"}


class TestStagesAndHelpers:
    def test_sharing_forward_values_only_is_a_warning_reported_in_each_stage(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.acc = MulticlassAccuracy(3, average="micro")
            def training_step(self, batch, batch_idx):
                self.log("train_acc", self.acc(batch[0], batch[1]))
            def validation_step(self, batch, batch_idx):
                self.log("val_acc", self.acc(batch[0], batch[1]), on_epoch=False)
            def on_train_start(self):
                self.acc.reset()
        """
        assert [f for f in findings(body) if f[1] == "LM201"] == [(7, "LM201", "warning"), (9, "LM201", "warning")]

    def test_reading_the_accumulated_state_makes_it_an_error_and_val_with_test_is_info(self) -> None:
        read = """
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.f1 = MulticlassF1Score(3)
                self.f1b = MulticlassF1Score(3)
            def training_step(self, batch, batch_idx):
                self.f1.update(batch[0], batch[1])
                self.log("train_f1", self.f1)
            def validation_step(self, batch, batch_idx):
                self.f1.update(batch[0], batch[1])
                self.f1b.update(batch[0], batch[1])
                self.log("val_f1", self.f1b)
            def test_step(self, batch, batch_idx):
                self.f1b.update(batch[0], batch[1])
                self.log("test_f1", self.f1b)
        """
        shared = {(line, severity) for line, code, severity in findings(read) if code == "LM201"}
        assert shared == {(8, "error"), (11, "error"), (12, "info"), (15, "info")}

    def test_an_attribute_named_for_its_stage_is_reported_where_it_is_misused(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.train_acc = MulticlassAccuracy(3, average="micro")
            def training_step(self, batch, batch_idx):
                self.log("a", self.train_acc(batch[0], batch[1]))
            def validation_step(self, batch, batch_idx):
                self.log("b", self.train_acc(batch[0], batch[1]), on_epoch=False)
        """
        assert [(line, code) for line, code, _ in findings(body)] == [(9, "LM201")]

    def test_a_helper_shared_by_hooks_is_reported_for_each_stage_with_its_severity(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.train_acc = MulticlassAccuracy(3)
                self.val_acc = MulticlassAccuracy(3)
            def training_step(self, batch, batch_idx):
                return self._step("train", self.train_acc, batch)
            def validation_step(self, batch, batch_idx):
                return self._step("val", self.val_acc, batch)
            def _step(self, stage, metric, batch):
                metric.update(batch[0], batch[1])
                self.log(f"{stage}_acc", metric.compute())
            def on_train_epoch_end(self):
                self.train_acc.reset()
                self.val_acc.reset()
        """
        lm102 = {(line, severity) for line, code, severity in findings(body) if code == "LM102"}
        assert lm102 == {(8, "warning"), (10, "error"), (13, "error")}  # each hook's call, and the helper
        messages = [f.message for f in lint_source(HEAD + textwrap.dedent(body)) if f.code == "LM102"]
        assert any(m.startswith("in validation_step, through the helper at line") for m in messages)
        assert all("running value" in m for m in messages)
        resets = body.replace(
            'self.log(f"{stage}_acc", metric.compute())',
            'self.log(f"{stage}_acc", metric.compute())\n' + " " * 16 + "metric.reset()",
        )
        per_batch = [f for f in lint_source(HEAD + textwrap.dedent(resets)) if f.code == "LM102"]
        assert len(per_batch) == 1 and "a per-batch value (the step resets the metric)" in per_batch[0].message


class TestResetAndScope:
    def test_compute_anywhere_without_reset_and_not_for_a_test_only_or_running_metric(self) -> None:
        body = """
        class M(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.acc = MulticlassAccuracy(3)
                self.test_acc = MulticlassAccuracy(3)
                self.smooth = torchmetrics.aggregation.RunningMean(window=5)
            def training_step(self, batch, batch_idx):
                self.acc.update(batch[0], batch[1])
                self.smooth.update(batch[2])
                self.log("acc", self.acc.compute(), on_step=True, on_epoch=False)
                self.log("smooth", self.smooth.compute(), on_step=True, on_epoch=False)
            def test_step(self, batch, batch_idx):
                self.test_acc.update(batch[0], batch[1])
            def on_test_epoch_end(self):
                self.log("test_acc", self.test_acc.compute())
        """
        assert [(line, code) for line, code, _ in findings(body) if code == "LM301"] == [(11, "LM301")]

    def test_module_scope_metrics_only_where_they_reach_a_lightning_module(self) -> None:
        plain_script = "import torchmetrics\nacc = torchmetrics.Accuracy(task='binary')\nprint(acc)\n"
        assert lint_source(plain_script) == []
        library = HEAD + "SHARED = {'acc': MulticlassAccuracy(3)}\n"
        assert [f.code for f in lint_source(library)] == ["LM206"]
        script = library + "trainer = L.Trainer()\ntrainer.fit(L.LightningModule())\n"
        assert lint_source(script) == []  # built once for this run
        read = script + "def build():\n    return SHARED['acc']\n"
        assert [f.code for f in lint_source(read)] == ["LM206"]

    def test_a_class_with_hook_names_that_is_no_lightning_module_is_not_walked(self) -> None:
        body = """
        class SpikeDetection:
            def __init__(self):
                self.mean = MulticlassAccuracy(3)
            def on_train_batch_end(self, fabric, loss, batch, batch_idx):
                return self.mean.compute()
        """
        assert findings(body) == []

    def test_one_finding_per_line_and_code(self) -> None:
        body = """
        class M(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                self.log("auroc", torchmetrics.AUROC(task="binary").to(self.device)(batch[0], batch[1]))
        """
        assert sorted(findings(body)) == [(4, "LM101", "error"), (4, "LM203", "error")]


@pytest.mark.parametrize(
    ("spread", "found"),
    [
        ("options = dict(on_epoch=True)", True),
        ("options = {'on_step': True, 'on_epoch': False}", False),
        ("options = make_options()", False),  # decided at run time: never guessed
    ],
)
def test_log_options_spread_with_double_star(spread: str, found: bool) -> None:
    body = f"""
    class M(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.f1 = MulticlassF1Score(3)
        def training_step(self, batch, batch_idx):
            {spread}
            self.log("f1", self.f1(batch[0], batch[1]), **options)
    """
    assert (("LM101" in codes(body)) is found) and (("LM201" in codes(body)) is False)


@pytest.mark.parametrize(
    ("module_level", "local", "found"),
    [
        ("LOG = dict(on_step=False, on_epoch=True)", "", True),
        ("LOG: dict = {'on_epoch': True}", "", True),
        ("LOG = {'on_step': True, 'on_epoch': False}", "", False),
        ("LOG = dict(on_epoch=True)\nLOG = dict(on_epoch=False)", "", False),  # bound twice: not guessed
        ("LOG = dict(on_epoch=True)", "LOG = make_options()", False),  # the local name wins, unknown
        ("LOG = dict(on_epoch=False)", "LOG = dict(on_epoch=True)", True),
    ],
)
def test_log_options_spread_from_a_module_level_constant(module_level: str, local: str, found: bool) -> None:
    body = f"""
    {textwrap.indent(module_level, "    ").strip()}
    class M(L.LightningModule):
        def training_step(self, batch, batch_idx):
            {local}
            self.log("f1", torchmetrics.functional.f1_score(batch[0], batch[1], task="binary"), **LOG)
    """
    assert ("LM101" in codes(body)) is found


@pytest.mark.parametrize(
    ("hook", "logged", "found"),
    [
        ("validation_step", "self.log_dict(scores(self(batch[0]), batch[1]))", True),
        ("validation_step", "self.log_dict({f'v_{k}': v for k, v in scores(*batch).items()})", True),
        ("training_step", "self.log_dict(scores(self(batch[0]), batch[1]))", False),  # per step: the default
        ("on_validation_epoch_end", "self.log_dict(scores(torch.cat(self.preds), torch.cat(self.target)))", False),
    ],
)
def test_values_returned_by_a_function_of_the_file_are_followed(hook: str, logged: str, found: bool) -> None:
    body = f"""
    def scores(logits, target):
        preds = logits.argmax(-1)
        return {{"f1": torchmetrics.functional.f1_score(preds, target, task="multiclass", num_classes=3)}}

    class M(L.LightningModule):
        def {hook}(self, *args):
            batch = args[0] if args else None
            {logged}
    """
    assert ("LM101" in codes(body)) is found


@pytest.mark.parametrize(
    "wrapped",
    [
        "torch.tensor(VALUE)",
        "torch.as_tensor(VALUE, device=self.device)",
        "torch.tensor(VALUE).to(self.device)",
        "np.float32(VALUE)",
        "float(VALUE)",
    ],
)
def test_a_per_batch_value_cast_to_a_tensor_or_array_is_still_a_per_batch_value(wrapped: str) -> None:
    value = "f1_score(batch[1].cpu(), self(batch[0]).argmax(-1).cpu(), average='macro')"
    body = f"""
    import numpy as np
    from sklearn.metrics import f1_score
    class M(L.LightningModule):
        def validation_step(self, batch, batch_idx):
            self.log("f1", {wrapped.replace("VALUE", value)})
    """
    assert [(code, severity) for _, code, severity in findings(body)] == [("LM101", "error")]
    assert codes(body.replace("f1_score(batch", "len(batch")) == set()  # a cast of anything else: nothing


@pytest.mark.parametrize(
    ("held", "mean", "found"),
    [
        ("torchmetrics.functional.f1_score(self(x), y, task='binary')", "sum(self.outs) / len(self.outs)", True),
        (
            "{'f1': torchmetrics.functional.f1_score(self(x), y, task='binary')}",
            "sum(o['f1'] for o in self.outs) / len(self.outs)",
            True,
        ),
        (
            "{'f1': torch.tensor(torchmetrics.functional.f1_score(self(x), y, task='binary'))}",
            "torch.stack([o['f1'] for o in self.outs]).mean()",
            True,
        ),
        (
            "torch.nn.functional.mse_loss(self(x), y)",
            "sum(self.outs) / len(self.outs)",
            False,
        ),  # a loss: a mean is right
        ("torchmetrics.functional.f1_score(self(x), y, task='binary')", "sum(self.outs) / 2", False),
    ],
)
def test_a_mean_of_step_values_taken_by_hand(held: str, mean: str, found: bool) -> None:
    body = f"""
    class M(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.outs = []
        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.outs.append({held})
        def on_validation_epoch_end(self):
            self.log("val_f1", {mean})
            self.outs.clear()
    """
    assert ("LM103" in codes(body)) is found


def test_every_message_comes_from_the_rule_table() -> None:
    import ast as ast_module

    from lightning_metrics_base.lint import analysis
    from lightning_metrics_base.lint.rules import RULES

    source = Path(analysis.__file__).read_text()
    assert not any(f'"{code}"' in source for code in RULES)  # no code literal at an emission site
    # every finding's message is one of its rule's templates (with its fields), so reading one shows them all
    for rule in RULES.values():
        assert rule.messages and "" in rule.messages and rule.severity
    strings = [
        node.value for node in ast_module.walk(ast_module.parse(source)) if isinstance(node, ast_module.Constant)
    ]
    assert not [text for text in strings if isinstance(text, str) and "Give each stage its own copy" in text]
