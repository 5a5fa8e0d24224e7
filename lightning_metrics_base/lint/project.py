"""What the linted tree defines: its Metric subclasses, its LightningModules and Callbacks, its metric functions.

The lint decides what is a metric over the whole tree, not one class: a class that subclasses a
torchmetrics ``Metric`` two files away is a metric, a function in ``utils.py`` that returns an F1 on
one batch gives a per-batch value, and a module whose base class is defined in another file is still
a LightningModule. `Project.build` reads the files it is given and, to resolve names, the files of the
project that they import (found from the import's dotted path next to the importing file or in one of
its parent folders); findings are reported only in the given files.

Only the standard library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_METRIC_ROOTS = ("torchmetrics",)
_LIGHTNING_ROOTS = ("lightning", "pytorch_lightning")
_VALUE_ROOTS = ("torchmetrics", "sklearn")
_LIGHTNING_BASES = ("LightningModule", "Callback", "LightningDataModule")


@dataclass
class _ClassInfo:
    name: str
    bases: list[str]  # dotted origins where the import resolves, else the name as written


@dataclass
class Project:
    """The names a tree defines that the rules need, keyed by their plain name.

    Examples:
        >>> project = Project.from_sources({"m.py": '''
        ... from torchmetrics import Metric
        ... from sklearn.metrics import f1_score
        ... class Hits(Metric):
        ...     pass
        ... class TopHits(Hits):
        ...     pass
        ... def batch_f1(y, p):
        ...     return f1_score(y, p, average="macro")
        ... '''})
        >>> sorted(project.metric_classes), sorted(project.metric_functions)
        (['Hits', 'TopHits'], ['batch_f1'])
    """

    metric_classes: set[str] = field(default_factory=set)
    lightning_classes: set[str] = field(default_factory=set)
    metric_functions: dict[str, str] = field(default_factory=dict)  # function -> the metric it returns
    metric_callables: set[str] = field(default_factory=set)  # classes of a metrics module called per batch
    metric_bases: dict[str, str] = field(default_factory=dict)  # project metric class -> torchmetrics class it extends
    class_defs: dict[str, list[tuple[str, ast.ClassDef]]] = field(default_factory=dict)  # name -> (path, class)
    lightning_files: set[str] = field(default_factory=set)  # files that import Lightning or are imported by one
    trees: dict[str, ast.Module] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # the text each tree was parsed from

    @classmethod
    def from_sources(cls, sources: dict[str, str]) -> Project:
        """The project of in-memory files ``{path: source}`` (files that do not parse are left out)."""
        project = cls()
        for path, source in sources.items():
            try:
                project.trees[path] = ast.parse(source, filename=path)
            except SyntaxError:
                continue
            project.sources[path] = source
        project._index()
        return project

    @classmethod
    def build(cls, files: Iterable[Path], read: dict[str, str] | None = None) -> Project:
        """The project of ``files`` and of the project files they import (read, not reported)."""
        project = cls()
        texts = dict(read or {})
        queue = [Path(path) for path in files]
        seen: set[Path] = set()
        found: dict[tuple[Path, str, int], Path | None] = {}
        while queue and len(seen) < 50_000:
            path = queue.pop()
            if path in seen:
                continue
            seen.add(path)
            text = texts.get(str(path))
            if text is None:
                if path.suffix != ".py":
                    continue
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
            try:
                tree = ast.parse(text, filename=str(path))
            except (SyntaxError, ValueError):
                continue
            project.trees[str(path)] = tree
            project.sources[str(path)] = text
            queue.extend(other for other in _imported_files(path, tree, found) if other not in seen)
        project._index()
        return project

    # ------------------------------------------------------------------ the index

    def _index(self) -> None:
        classes: dict[str, list[_ClassInfo]] = {}
        functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        imports: dict[str, dict[str, str]] = {}
        for path, tree in self.trees.items():
            names = _import_map(tree)
            imports[path] = names
            if any(origin.split(".")[0] in _LIGHTNING_ROOTS for origin in names.values()):
                self.lightning_files.add(path)
            metrics_module = "metric" in Path(path).stem.lower()
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    bases = [_origin(base, names) for base in node.bases]
                    classes.setdefault(node.name, []).append(_ClassInfo(node.name, bases))
                    self.class_defs.setdefault(node.name, []).append((path, node))
                    called = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                    if metrics_module and called & {"forward", "__call__"}:
                        self.metric_callables.add(node.name)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    functions.setdefault(node.name, []).append(node)
        self._classes_by_bases(classes)
        self._functions(functions, imports)

    def _classes_by_bases(self, classes: dict[str, list[_ClassInfo]]) -> None:
        def metrics_like(base: str) -> bool:  # a subclass of a metric-like class of a metrics module
            return base in self.metric_callables

        changed = True
        while changed:  # a fixed point: subclasses of subclasses, across files
            changed = False
            for name, infos in classes.items():
                for info in infos:
                    for base in info.bases:
                        root, last = base.split(".")[0], base.rsplit(".", 1)[-1]
                        metric = root in _METRIC_ROOTS or last in self.metric_classes
                        metric = metric or (root in _LIGHTNING_ROOTS and ".metrics" in base)
                        lightning = (root in _LIGHTNING_ROOTS and last in _LIGHTNING_BASES) or last in _LIGHTNING_BASES
                        lightning = lightning or last in self.lightning_classes
                        if metrics_like(last) and name not in self.metric_callables:
                            self.metric_callables.add(name)
                            changed = True
                        if metric and name not in self.metric_classes:
                            self.metric_classes.add(name)
                            family = self.metric_bases.get(last, last) if root not in _METRIC_ROOTS else last
                            self.metric_bases[name] = (
                                family if root in _METRIC_ROOTS or last in self.metric_bases else "Metric"
                            )
                            changed = True
                        if lightning and name not in self.lightning_classes:
                            self.lightning_classes.add(name)
                            changed = True

    def _functions(
        self,
        functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]],
        imports: dict[str, dict[str, str]],
    ) -> None:
        origin_of: dict[int, dict[str, str]] = {}
        for path, tree in self.trees.items():
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    origin_of[id(node)] = imports[path]
        defining: set[int] = set()  # files with a metric function: their other functions may call it

        def may_return_metric(names: dict[str, str]) -> bool:
            return id(names) in defining or any(
                origin.split(".")[0] in _VALUE_ROOTS or origin.rsplit(".", 1)[-1] in self.metric_functions
                for origin in names.values()
            )

        changed = True
        while changed:
            changed = False
            for name, nodes in functions.items():
                if name in self.metric_functions:
                    continue
                for node in nodes:
                    names = origin_of.get(id(node), {})
                    if not may_return_metric(names):
                        continue
                    what = self._returned_metric(node, names)
                    if what is not None:
                        self.metric_functions[name] = what
                        defining.add(id(names))
                        changed = True
                        break

    def _returned_metric(self, function: ast.FunctionDef | ast.AsyncFunctionDef, names: dict[str, str]) -> str | None:
        """The metric a function returns, computed on its arguments (``None``: it returns no metric value)."""
        bound: dict[str, str] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                what = self._metric_call(node.value, names, bound)
                if what is not None:
                    bound[node.targets[0].id] = what
        for node in ast.walk(function):
            if isinstance(node, ast.Return) and node.value is not None:
                what = self._metric_call(node.value, names, bound)
                if what is not None:
                    return what
        return None

    def _metric_call(self, node: ast.AST, names: dict[str, str], bound: dict[str, str]) -> str | None:
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _WRAPPERS:
            node = node.func.value
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if not isinstance(node, ast.Call):
            return None
        origin = _origin(node.func, names)
        root, last = origin.split(".")[0], origin.rsplit(".", 1)[-1]
        if root in _VALUE_ROOTS and last[:1].islower() and ("functional" in origin or ".metrics" in origin):
            return last
        if last in self.metric_functions:
            return self.metric_functions[last]
        return None


_WRAPPERS = ("item", "detach", "cpu", "float", "mean", "squeeze", "tolist")


def imports_of(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """A module's import statements at any depth (``try: import x``, inside functions), expressions not entered."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        statement = stack.pop()
        if isinstance(statement, ast.Import | ast.ImportFrom):
            found.append(statement)
            continue
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(statement, name, None)
            if isinstance(inner, list):
                kinds = (ast.stmt, ast.excepthandler, ast.match_case)
                stack.extend(reversed([item for item in inner if isinstance(item, kinds)]))
    return found


def _import_map(tree: ast.Module) -> dict[str, str]:
    """Every imported name of a module and the dotted path it comes from."""
    names: dict[str, str] = {}
    for node in imports_of(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            for alias in node.names:
                names[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name
    return names


def _origin(node: ast.AST, names: dict[str, str]) -> str:
    """The dotted origin of a name or attribute chain, through the imports (the text itself where none)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    head = names.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def _imported_files(path: Path, tree: ast.Module, found: dict[tuple[Path, str, int], Path | None]) -> list[Path]:
    """The project files that ``path`` imports, where they can be found on disk (lookups cached in ``found``)."""
    files: list[Path] = []
    for node in imports_of(tree):
        modules: list[tuple[str, int]] = []
        if isinstance(node, ast.Import):
            modules = [(alias.name, 0) for alias in node.names]
        else:
            base = node.module or ""
            modules = [(base, node.level)]
            modules += [(f"{base}.{alias.name}" if base else alias.name, node.level) for alias in node.names]
        for module, level in modules:
            if module.split(".")[0] in _EXTERNAL:
                continue
            key = (path.parent, module, level)
            if key not in found:
                found[key] = _module_file(path, module, level)
            if found[key] is not None:
                files.append(found[key])  # type: ignore[arg-type]
    return files


_EXTERNAL = (*_LIGHTNING_ROOTS, *_VALUE_ROOTS, "torch", "numpy", "pandas", "os", "sys", "typing", "collections")


def _module_file(path: Path, module: str, level: int) -> Path | None:
    if not module.strip("."):
        return None  # `from . import x` names the package itself: its modules come as `.x`
    relative = Path(*module.strip(".").split("."))
    if level:
        folder = path.parent
        for _ in range(level - 1):
            folder = folder.parent
        folders = [folder]
    else:
        folders = [path.parent, *list(path.parents)[1:6]]  # the project's root may be a few folders up
    for folder in folders:
        for candidate in (folder / relative.with_suffix(".py"), folder / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def base_classes(project: Project, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """The project's definitions of ``cls``'s base classes, nearest last (bases of bases first)."""
    found: list[tuple[str, ast.ClassDef]] = []
    seen = {id(cls)}

    def visit(node: ast.ClassDef, depth: int) -> None:
        for base in node.bases:
            name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
            candidates = [item for item in project.class_defs.get(name, []) if id(item[1]) not in seen]
            if len(candidates) != 1 or depth > 8:
                continue  # unknown, or ambiguous (two classes of that name): not guessed
            seen.add(id(candidates[0][1]))
            visit(candidates[0][1], depth + 1)
            found.append(candidates[0])

    visit(cls, 0)
    return found
