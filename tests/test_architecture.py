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


def engine_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``{module name within the package ("update.buffering"): path}``: every file but the lint's and the
    subpackages' docstring-only ``__init__`` files."""
    files = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[0] in ("lint", "__pycache__") or (len(parts) > 1 and parts[-1] == "__init__"):
            continue
        files[".".join(parts)] = path
    return files


def package_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}``: ``import x`` and ``from x import`` alike, at any depth."""

    def module_of(dotted: str, name: str | None = None) -> str | None:
        # `from lightning_metrics_base.update import sync` names the module `update.sync`
        if name is not None and (package / dotted.replace(".", "/") / f"{name}.py").exists():
            return f"{dotted}.{name}" if dotted else name
        return dotted or None

    imports = {}
    for module, path in engine_files(package).items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] == "lightning_metrics_base"
            ):
                within = node.module.partition(".")[2]
                found |= {name for alias in node.names if (name := module_of(within, alias.name)) is not None}
            elif isinstance(node, ast.Import):
                found |= {
                    alias.name.partition(".")[2]
                    for alias in node.names
                    if alias.name.startswith("lightning_metrics_base.")
                }
        imports[module] = found
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


USER_HOOKS = {"compute_loss", "unpack_batch", "metric_inputs", "count_samples"}  # a subclass overrides these


def calls_user_hooks(path: Path) -> bool:
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
        and node.func.attr in USER_HOOKS
        for node in ast.walk(ast.parse(path.read_text()))
    )


def test_only_the_face_logs_and_reads_the_trainer() -> None:
    library = [path for path in PACKAGE.rglob("*.py") if path.name != "demo.py"]  # the demo is a user of it
    assert {path.name for path in library if talks_to_lightning(path)} == {"hooks.py"}
    assert {path.name for path in library if calls_user_hooks(path)} <= {"module.py", "hooks.py"}


def test_the_engine_and_what_it_imports_never_reach_lightning_objects() -> None:
    """The engine reads the run through a `RunView` and returns records: no file below it logs or reads a trainer."""
    imports = package_imports()
    below: set[str] = set()
    todo = ["engine"]
    while todo:
        for imported in imports[todo.pop()]:
            if imported not in below:
                below.add(imported)
                todo.append(imported)
    files = [engine_files()[name] for name in below | {"engine"}]
    assert "hooks" not in below and "module" not in below
    for path in files:
        tree = ast.parse(path.read_text())
        assert not talks_to_lightning(path) and not calls_user_hooks(path), path.name
        reads = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not reads & {"trainer", "_trainer", "_lightning_log", "loggers", "strategy"}, path.name


def test_lightning_is_imported_only_where_allowed() -> None:
    importing = {path.name for path in PACKAGE.rglob("*.py") if lightning_imports(path)}
    assert importing <= set(LIGHTNING_IMPORTS), importing - set(LIGHTNING_IMPORTS)


def test_the_engine_imports_neither_lightning_package() -> None:
    engine = [
        f"lightning_metrics_base.{module}"
        for module, path in engine_files().items()
        if path.name not in LIGHTNING_IMPORTS and module != "__init__"
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
    lightning_files = {module for module, path in engine_files().items() if lightning_imports(path)}

    def reached(name: str, seen: set[str]) -> set[str]:
        for imported in imports.get(name, ()):
            if imported not in seen:
                seen.add(imported)
                reached(imported, seen)
        return seen

    for name in (
        "engine",
        "report.naming",
        "configuration.config",
        "report.best",
        "report.errors",
        "update.metric_store",
        "report.results",
        "update.buffering",
    ):
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


def internals_importers() -> dict[str, set[str]]:
    """``{name of an internals file: the files that import it}``, read from the code (any import form)."""
    users: dict[str, set[str]] = {}
    for module, path in engine_files().items():
        if module.startswith("_internals."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("lightning_metrics_base._internals.")
            ):
                for alias in node.names:
                    users.setdefault(alias.name, set()).add(path.name)
    return users


def test_the_internals_table_names_every_user() -> None:
    """docs/architecture.md's table of private names: each row's functions are imported by exactly its files."""
    import re

    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = page[page.index("## The internals the package relies on") : page.index("## Where to add a feature")]
    users = internals_importers()
    listed: set[str] = set()
    for line in table.splitlines():
        if not line.startswith(("| torchmetrics |", "| Lightning |")):
            continue
        _, _, behind, used_by = (cell.strip() for cell in line.strip().strip("|").split("|"))
        names = [name for name in re.findall(r"`(\w+)`", behind) if name in users]
        assert names, f"no function of the row is imported anywhere: {line}"
        listed.update(names)
        assert set(re.findall(r"`(\w+\.py)`", used_by)) == set().union(*(users[name] for name in names)), line
    assert set(users) <= listed | {"InvalidLabels"}, set(users) - listed


def test_the_import_table_is_the_code_s() -> None:
    """docs/architecture.md's table of what each file imports of the package equals what the code imports."""
    import re

    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = page[page.index("| file | imports of the package |") :].split("\n\n")[0]
    documented: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        files, imported = (cell.strip() for cell in line.strip().strip("|").split("|"))
        names = set() if imported.startswith("nothing") else set(re.findall(r"`([\w.]+)`", imported.split("(")[0]))
        for name in (path.replace("/", ".") for path in re.findall(r"`([\w/]+)\.py`", files)):
            assert name not in documented, f"{name}.py listed twice"
            documented[name] = names
    assert documented == package_imports()


def test_package_imports_reads_every_import_form(tmp_path: Path) -> None:
    files = {
        "plain.py": "import lightning_metrics_base.update.sync\n",
        "nested.py": "def f():\n    from lightning_metrics_base.report.naming import Namer\n",
        "names.py": "from lightning_metrics_base import errors, MetricAwareModule\n",
        "typed.py": "if TYPE_CHECKING:\n    from lightning_metrics_base.report.best import B\n",
        "errors.py": "",
    }
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    assert package_imports(tmp_path) == {
        "plain": {"update.sync"},
        "nested": {"report.naming"},
        "names": {"errors"},
        "typed": {"report.best"},  # a type-checking import is an import of the layering too
        "errors": set(),
    }


def test_nothing_reads_back_what_was_logged() -> None:
    """The best tracker and the rest work on computed values: Lightning's logged values are read nowhere."""
    library = [path for path in PACKAGE.rglob("*.py") if path.name != "demo.py"]  # the demo plots a run's CSV
    readers = {
        path.name
        for path in library
        if any(
            isinstance(node, ast.Attribute)
            and node.attr in {"callback_metrics", "logged_metrics", "progress_bar_metrics"}
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    assert readers <= {"log_check.py"}, readers  # MetricLogCheck compares what was logged: its job
