"""The layout's rules hold: Lightning is reached from a few named files, and imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

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
        }
    return imports


# Which files may import Lightning, and why (docs/architecture.md states the same rule).
LIGHTNING_IMPORTS = {
    "module.py": "MetricAwareModule, what a user calls: steps, update_metrics, log",
    "hooks.py": "ModuleHooks, the half of MetricAwareModule that Lightning calls: hooks and the epoch end",
    "log_check.py": "the MetricLogCheck callback, for modules written by hand",
    "figures.py": "the loggers' types, to send figures",
    "_lightning_internals.py": "every private name of Lightning",
    "demo.py": "a user of the package",
}


def lightning_imports(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lightning":
            return True
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "lightning" for alias in node.names):
            return True
    return False


def test_only_the_module_logs_and_reads_the_trainer() -> None:
    library = [path for path in PACKAGE.rglob("*.py") if path.name != "demo.py"]  # the demo is a user of it
    assert {path.name for path in library if talks_to_lightning(path)} == {"module.py", "hooks.py"}


def test_lightning_is_imported_only_where_allowed() -> None:
    importing = {path.name for path in PACKAGE.rglob("*.py") if lightning_imports(path)}
    assert importing <= set(LIGHTNING_IMPORTS), importing - set(LIGHTNING_IMPORTS)


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
    assert {name for name, imported in imports.items() if "module" in imported} == {"__init__", "demo"}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for imported in imports.get(name, ()):
                visit(imported, (*path, name))
            done.add(name)

    for name in imports:
        visit(name, ())
