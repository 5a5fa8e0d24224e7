"""The layout's rules hold: Lightning is reached from a few named files, and imports point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from pl_face.pytorch_lightning_project import pristine_environment

import lightning_metrics_base

PACKAGE = Path(lightning_metrics_base.__file__).parent
LIGHTNING_ONLY = {
    "log",
    "log_dict",
    "trainer",
    "_trainer",
}  # `self.log(...)`, `self.trainer`: MetricAwareModule's alone


def talks_to_lightning(path: Path) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and node.attr in LIGHTNING_ONLY
        for node in ast.walk(ast.parse(path.read_text()))
    )


def package_imports() -> dict[str, set[str]]:
    imports = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports[path.stem] = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lightning_metrics_base.")
        } | {  # `from lightning_metrics_base import module, log_check` (the faces)
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "lightning_metrics_base"
            for alias in node.names
            if (PACKAGE / f"{alias.name}.py").exists()
        }
    return imports


# Which files may import a Lightning namespace at run time, and why (docs/architecture.md states the same
# rule). The other files are written against Lightning's types under `TYPE_CHECKING` only: each face
# builds the classes on its namespace and hands them its `Face`.
LIGHTNING_IMPORTS = {
    "_lightning_face.py": "the `lightning` face: the classes on lightning.pytorch's LightningModule and Callback",
    "pytorch_lightning.py": "the `pytorch_lightning` face: the same classes on pytorch_lightning's",
    "demo.py": "a user of the package",
}


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The imports of a module, those under ``if TYPE_CHECKING:`` left out."""
    skipped = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.dump(branch.test)
        for statement in branch.body
        for node in ast.walk(statement)
    }
    return [
        node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped
    ]


def lightning_imports(path: Path) -> bool:
    for node in _runtime_imports(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if any(name.split(".")[0] in ("lightning", "pytorch_lightning") for name in names):
            return True
    return False


def test_only_the_module_logs_and_reads_the_trainer() -> None:
    library = [path for path in PACKAGE.rglob("*.py") if path.name != "demo.py"]  # the demo is a user of it
    assert {path.name for path in library if talks_to_lightning(path)} == {"module.py", "hooks.py"}


def test_lightning_is_imported_only_where_allowed() -> None:
    importing = {path.name for path in PACKAGE.rglob("*.py") if lightning_imports(path)}
    assert importing <= set(LIGHTNING_IMPORTS), importing - set(LIGHTNING_IMPORTS)


def test_the_engine_imports_neither_lightning_package() -> None:
    engine = [
        f"lightning_metrics_base.{path.stem}"
        for path in PACKAGE.glob("*.py")
        if path.name not in LIGHTNING_IMPORTS and path.stem != "__init__"
    ]
    code = (
        f"import sys, importlib\nfor name in {engine!r}:\n    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=pristine_environment()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_lint_imports_only_the_standard_library() -> None:
    for path in (PACKAGE / "lint").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert node.module.split(".")[0] in {"__future__", "lightning_metrics_base"} or node.module in {
                    "collections.abc",
                    "dataclasses",
                    "typing",
                    "pathlib",
                }, f"{path.name}: {node.module}"


def test_the_value_files_do_not_load_lightning_through_their_imports() -> None:
    imports = package_imports()
    lightning_files = {path.stem for path in PACKAGE.glob("*.py") if lightning_imports(path)}

    def reached(name: str, seen: set[str]) -> set[str]:
        for imported in imports.get(name, ()):
            if imported not in seen:
                seen.add(imported)
                reached(imported, seen)
        return seen

    for name in ("naming", "config", "best", "errors", "metric_store", "results", "buffering"):
        assert not reached(name, set()) & lightning_files, name


def test_lightnings_logging_semantics_are_standard_library_only() -> None:
    tree = ast.parse((PACKAGE / "lightning_semantics.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "dataclasses"}, imported


def test_imports_have_no_cycle_and_nothing_imports_the_module_from_below() -> None:
    imports = package_imports()
    assert {name for name, imported in imports.items() if "module" in imported} == {
        "__init__",
        "_lightning_face",
        "pytorch_lightning",
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for imported in imports.get(name, ()):
                visit(imported, (*path, name))
            done.add(name)

    for name in imports:
        visit(name, ())
