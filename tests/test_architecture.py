"""The layout's rule holds: only `module.py` talks to Lightning, and imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning_metrics_base

PACKAGE = Path(lightning_metrics_base.__file__).parent
LIGHTNING_ONLY = {"log", "log_dict", "trainer", "_trainer"}  # `self.log(...)`, `self.trainer`: the module's alone


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


def test_only_the_module_logs_and_reads_the_trainer() -> None:
    library = [path for path in PACKAGE.glob("*.py") if path.name != "demo.py"]  # the demo is a user of it
    assert {path.name for path in library if talks_to_lightning(path)} == {"module.py"}


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
