"""The ``pytorch_lightning`` face: the same classes for projects that import ``pytorch_lightning``.

Each test runs in a fresh interpreter that imports ``pytorch_lightning`` only, as such a project does:
the face must not import ``lightning``, and its values must be the full-data values, as the
``lightning`` face's are (the behaviour tests of the other files run on that face).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pl_face.pytorch_lightning_project import pristine_environment

MODEL = """
import sys, json, torch, torch.nn.functional as F
import pytorch_lightning as pl
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score
from lightning_metrics_base.pytorch_lightning import MetricAwareModule, MetricLogCheck, MetricUpdateError


class Classifier(MetricAwareModule):
    def __init__(self, track_best=("f1",)):
        super().__init__({"f1": MulticlassF1Score(5), "acc": MulticlassAccuracy(5)}, loss_fn=F.cross_entropy,
                         track_best=track_best)
        self.save_hyperparameters()
        self.net = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=generator)
    return x, (x[:, :5] + 0.5 * torch.randn(n, 5, generator=generator)).argmax(1)


def trainer(**kwargs):
    options = dict(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False)
    options.update(kwargs)
    return pl.Trainer(**options)
"""


def run(body: str, tmp_path: Path, timeout: int = 300) -> dict[str, object]:
    script = tmp_path / "face.py"
    script.write_text(MODEL + textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=pristine_environment(),  # the real namespaces, as such a project has them
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_pytorch_lightning_trainer_fits_it_with_full_data_values_and_never_imports_lightning(tmp_path: Path) -> None:
    found = run(
        """
        torch.manual_seed(0)
        (xt, yt), (xv, yv) = data(200, 1), data(130, 2)   # 130 = 4 batches of 32 and one of 2
        model = Classifier()
        fit = trainer(num_sanity_val_steps=2)
        train, val = DataLoader(TensorDataset(xt, yt), batch_size=32), DataLoader(TensorDataset(xv, yv), batch_size=32)
        fit.fit(model, train, val)
        with torch.no_grad():
            logits = model(xv)
        print(json.dumps({
            "val_f1": float(fit.callback_metrics["val/f1"]),
            "truth_f1": float(multiclass_f1_score(logits, yv, num_classes=5)),
            "val_acc": float(fit.callback_metrics["val/acc"]),
            "truth_acc": float(multiclass_accuracy(logits, yv, num_classes=5)),
            "best": float(fit.callback_metrics["val/f1_best"]),
            "lightning": sorted(m for m in sys.modules if m == "lightning" or m.startswith("lightning.")),
            "is_module": isinstance(model, pl.LightningModule),
        }))
        """,
        tmp_path,
    )
    assert found["val_f1"] == pytest.approx(found["truth_f1"], abs=1e-6)
    assert found["val_acc"] == pytest.approx(found["truth_acc"], abs=1e-6)
    assert found["lightning"] == [] and found["is_module"] is True


def test_a_checkpoint_saved_under_one_face_loads_under_the_other(tmp_path: Path) -> None:
    saved = run(
        """
        (x, y) = data(64, 3)
        model = Classifier(track_best=("f1", "loss"))
        fit = trainer(max_epochs=1, enable_checkpointing=True, default_root_dir=".")
        loader = DataLoader(TensorDataset(x, y), batch_size=16)
        fit.fit(model, loader, loader)
        fit.save_checkpoint("pl.ckpt")
        print(json.dumps({"weight": model.net.weight.sum().item()}))
        """,
        tmp_path,
    )
    loaded = run(
        """
        import lightning as L
        from lightning_metrics_base import MetricAwareModule as LightningFace

        class Same(LightningFace):
            def __init__(self, track_best=("f1",)):
                super().__init__({"f1": MulticlassF1Score(5), "acc": MulticlassAccuracy(5)}, loss_fn=F.cross_entropy,
                                 track_best=track_best)
                self.save_hyperparameters()
                self.net = torch.nn.Linear(8, 5)

        model = Same.load_from_checkpoint("pl.ckpt")
        print(json.dumps({"weight": model.net.weight.sum().item(), "track_best": list(model.track_best),
                          "lightning_module": isinstance(model, L.LightningModule)}))
        """,
        tmp_path,
    )
    assert loaded["weight"] == pytest.approx(saved["weight"]) and loaded["track_best"] == ["f1", "loss"]
    assert loaded["lightning_module"] is True


def test_metric_log_check_and_errors_come_from_the_face(tmp_path: Path) -> None:
    found = run(
        """
        import warnings

        class HandWritten(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net, self.f1 = torch.nn.Linear(8, 5), MulticlassF1Score(5)
            def validation_step(self, batch, batch_idx):
                self.f1.update(self.net(batch[0]), batch[1])
                self.log("val_f1", self.f1.compute())

        x, y = data(70, 4)
        check = MetricLogCheck()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(callbacks=[check]).validate(HandWritten(), DataLoader(TensorDataset(x, y), batch_size=16),
                                                verbose=False)
        class ThreeClasses(Classifier):  # five logits for a metric of three classes: its update fails
            def __init__(self):
                MetricAwareModule.__init__(self, {"f1": MulticlassF1Score(3)}, loss_fn=F.cross_entropy)
                self.net = torch.nn.Linear(8, 5)

        try:
            trainer().validate(ThreeClasses(), DataLoader(TensorDataset(x, y), batch_size=16), verbose=False)
            raised = ""
        except MetricUpdateError as err:
            raised = str(err)
        print(json.dumps({"warned": any("val_f1: logged" in str(w.message) for w in caught),
                          "rows": [row[0] for row in check.results], "raised": raised[:200]}))
        """,
        tmp_path,
    )
    assert found["warned"] is True and found["rows"] == ["val_f1"]
    assert "val" in str(found["raised"])  # the package's error, naming the stage, from the face's namespace


def test_the_face_exports_what_the_package_exports() -> None:
    import lightning_metrics_base
    import lightning_metrics_base.pytorch_lightning as face

    assert set(lightning_metrics_base.__all__) <= set(face.__all__)
    assert face.__version__ == lightning_metrics_base.__version__
    for name in face.__all__:
        assert getattr(face, name) is not None


@pytest.mark.slow
def test_ddp_spawn_pickles_the_face_and_syncs_over_both_processes(tmp_path: Path) -> None:
    found = run(
        """
        if __name__ == "__main__":
            torch.manual_seed(0)
            (x, y) = data(96, 5)
            model = Classifier()
            fit = trainer(max_epochs=1, devices=2, strategy="ddp_spawn", num_sanity_val_steps=0)
            fit.validate(model, DataLoader(TensorDataset(x, y), batch_size=16), verbose=False)
            with torch.no_grad():
                truth = float(multiclass_f1_score(model(x), y, num_classes=5))
            print(json.dumps({"val_f1": float(fit.callback_metrics["val/f1"]), "truth": truth}))
        """,
        tmp_path,
        timeout=600,
    )
    assert found["val_f1"] == pytest.approx(found["truth"], abs=1e-6)


def test_without_pytorch_lightning_the_face_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['pytorch_lightning'] = None\n"
        "try:\n    import lightning_metrics_base.pytorch_lightning\nexcept ImportError as err:\n    print(err)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=pristine_environment()
    )
    assert 'pip install "lightning-metrics-base[pytorch-lightning]"' in result.stdout


def test_the_faces_are_one_class_body_each(tmp_path: Path) -> None:
    found = run(
        """
        import lightning as L
        import lightning_metrics_base as lightning_face
        from lightning_metrics_base import pytorch_lightning as pl_face
        from lightning_metrics_base.log_check import MetricLogCheck as CheckBody
        from lightning_metrics_base.module import MetricAwareModule as Body

        checks = []
        for face, namespace in ((lightning_face, L), (pl_face, pl)):
            module_class, check_class = face.MetricAwareModule, face.MetricLogCheck
            checks.append(issubclass(module_class, Body) and issubclass(module_class, namespace.LightningModule))
            checks.append(issubclass(check_class, CheckBody) and issubclass(check_class, namespace.Callback))
            own = set(vars(face.MetricAwareModule)) - {"__module__", "__doc__", "__qualname__", "__firstlineno__",
                                                     "__static_attributes__", "__annotations__"}
            checks.append(own <= {"_face", "_lightning_log", "__jit_unused_properties__"})
        checks.append(pl_face.MetricUpdateError is lightning_face.MetricUpdateError)
        checks.append(not issubclass(pl_face.MetricAwareModule, L.LightningModule))
        checks.append(not issubclass(lightning_face.MetricAwareModule, pl.LightningModule))
        print(json.dumps({"checks": checks}))
        """,
        tmp_path,
    )
    assert found["checks"] == [True] * 9


def test_pytorch_lightning_cli_builds_and_fits_it(tmp_path: Path) -> None:
    found = run(
        """
        from pytorch_lightning.cli import LightningCLI

        class Data(pl.LightningDataModule):
            def __init__(self, size: int = 96):
                super().__init__()
                self.x, self.y = data(size, 6)
            def train_dataloader(self):
                return DataLoader(TensorDataset(self.x, self.y), batch_size=16)
            def val_dataloader(self):
                return DataLoader(TensorDataset(self.x, self.y), batch_size=16)

        cli = LightningCLI(Classifier, Data, args=["fit", "--model.track_best=[acc]", "--trainer.max_epochs=1",
                           "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                           "--trainer.enable_checkpointing=false"])
        print(json.dumps({"names": sorted(cli.trainer.callback_metrics), "best": list(cli.model.track_best)}))
        """,
        tmp_path,
    )
    assert {"val/f1", "val/acc", "val/acc_best", "train/loss"} <= set(found["names"])  # type: ignore[arg-type]
    assert found["best"] == ["acc"]
