"""Read one Python file with `ast` and find the traps of logging torchmetrics from Lightning.

The analysis follows Lightning's semantics rather than names: the effective ``on_step``/``on_epoch``
of a ``self.log`` call is Lightning's default for the hook it runs in (`rules.hook_defaults`), also
in helper methods called from that hook (with string arguments such as the stage bound), through
``getattr(self, f"{stage}_acc")`` where the name resolves, and in `Callback` hooks that log through
``pl_module.log``. ``self.X`` resolves to what ``__init__``, ``setup`` or a ``configure_*`` method
assigned, both branches of an ``if`` included. Where something cannot be resolved, nothing is
reported: a missed trap is better than a false alarm.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lightning_metrics_base.lint.project import Project, base_classes, imports_of
from lightning_metrics_base.lint.rules import (
    BATCH_VALUE_ON_EPOCH,
    BEST_TRACKERS,
    BUILT_PER_BATCH,
    COMPUTE_IN_STEP,
    COMPUTE_WITHOUT_RESET,
    ERROR,
    IN_CALLBACK,
    INFO,
    LOGGED_TWO_WAYS,
    MEAN_OF_BATCH_METRICS,
    MODULE_SCOPE,
    MONITORED,
    MOVED_BY_HAND,
    PLAIN_CONTAINER,
    SHARED_BETWEEN_STAGES,
    STAGES,
    SYNC_DIST_ON_METRIC,
    THROUGH_HELPER,
    THROUGH_OTHER_FILE,
    WARNING,
    HookDefaults,
    hook_defaults,
    is_additive,
)


@dataclass(frozen=True)
class Finding:
    """One finding: where, which rule, how severe, and the message (what is wrong and the fix)."""

    path: str
    line: int
    col: int
    code: str
    severity: str
    message: str
    fix: tuple[tuple[int, int, int, int, str], ...] = ()
    """Text edits ``(line, col, end_line, end_col, new text)`` (1-based lines, 0-based columns) that fix it."""
    cell: int | None = None
    """In a notebook, the code cell (from 1) the finding is in; ``line`` then counts within the cell."""


@dataclass
class Held:
    """What an attribute or a local name holds: a metric, a collection of metrics, or a container of them."""

    kind: str  # "metric", "collection", "moduledict", "plain"
    name: str  # the class name, e.g. "MulticlassF1Score" or "MetricCollection"
    keywords: dict[str, str | None] = field(default_factory=dict)
    members: dict[str, Held] = field(default_factory=dict)
    node: ast.AST | None = None
    source: int = 0  # identity of the object built: two names holding one object share it
    basis: str | None = None  # a collection built on a name it does not copy (two built on it share members)


@dataclass(frozen=True)
class Value:
    """What an expression evaluates to, as far as the traps go."""

    kind: str  # "batch" (computed on one batch), "compute", "object", "batch-dict", "compute-dict"
    what: str  # the metric's class or function name
    additive: bool
    ref: str | None = None  # the attribute of the metric object, when there is one
    node: ast.AST | None = None  # the expression that computed it
    items: dict[str, Value] | None = None  # a dict's values by key, where the keys resolve
    elements: tuple[Value | None, ...] | None = None  # a tuple's values by position
    refs: tuple[str, ...] = ()  # further metric attributes an object name may hold (`for m in [self.a, self.b]`)


class Options(dict[str, ast.expr]):
    """Constant keyword options bound to a name (``opts = dict(on_epoch=True)``), spread with ``**opts``."""


@dataclass
class Context:
    """Where a function body runs: the hook (its logging defaults), the logging receiver and bound names."""

    hook: str
    defaults: HookDefaults
    receiver: str = "self"  # `pl_module` in a Callback hook
    env: dict[str, Any] = field(default_factory=dict)
    depth: int = 0
    site: ast.AST | None = None  # the hook's call into the helper being walked
    resets: set[str] = field(default_factory=set)  # metrics this hook resets (its values are per batch)
    returns: list[Value | None] = field(default_factory=list)


@dataclass
class Usage:
    """What a class does with each metric attribute, gathered over all its hooks."""

    uses: dict[str, dict[str, list[tuple[str, ast.AST, ast.AST | None]]]] = field(default_factory=dict)
    reset: set[str] = field(default_factory=set)
    logged_object: dict[str, ast.AST] = field(default_factory=dict)
    logged_compute: dict[str, ast.AST] = field(default_factory=dict)
    computed: dict[str, ast.AST] = field(default_factory=dict)
    fed_elsewhere: set[str] = field(default_factory=set)


_LOG_ATTRS = ("log", "log_dict")
_LEGACY_ROOTS = ("pytorch_lightning", "lightning")
_RANK = {INFO: 0, WARNING: 1, ERROR: 2}
CALLABLE = "metric callable"  # a project's own metric class without state (an nn.Module of a metrics module)
_INDEXED = (
    ast.Import,
    ast.ImportFrom,
    ast.ClassDef,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.keyword,
    ast.Dict,
    ast.Assign,
)
_WRAPPERS = ("item", "detach", "cpu", "float", "clone", "mean", "squeeze")
_CASTS = {  # calls whose first argument's value they hold, as a tensor or an array
    (module, function)
    for module in ("torch", "np", "numpy")
    for function in ("tensor", "as_tensor", "from_numpy", "array", "asarray", "float32", "float64")
}


class FileAnalysis:
    """The findings of one file's source text.

    Examples:
        >>> source = '''
        ... import lightning as L
        ... from torchmetrics.classification import MulticlassF1Score
        ... class M(L.LightningModule):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.f1 = MulticlassF1Score(3)
        ...     def validation_step(self, batch, batch_idx):
        ...         x, y = batch
        ...         self.log("val_f1", self.f1(self(x), y))
        ... '''
        >>> [(f.line, f.code, f.severity) for f in FileAnalysis("m.py", source).findings()]
        [(10, 'LM101', 'error')]
    """

    def __init__(self, path: str, source: str, project: Project | None = None) -> None:
        self.path = path
        self.source = source
        self.project = project or Project()
        tree = self.project.trees.get(path)
        self.tree = tree if tree is not None and self.project.sources.get(path) == source else ast.parse(source, path)
        self.lines = source.splitlines()
        self._nodes: dict[type, list[Any]] = {ast.Import: [], ast.ImportFrom: []}
        for node in imports_of(self.tree):
            self._nodes[type(node)].append(node)
        self._findings: dict[tuple[int, str], Finding] = {}
        self._own: set[int] = set()  # the nodes of this file: a finding in a base class's file is not ours
        self._classes: dict[str, str] = {}  # alias -> torchmetrics/sklearn origin of a class or function
        self._modules: dict[str, str] = {}  # alias -> "torchmetrics" | "sklearn" | "torch.nn"
        self._legacy: set[str] = set()  # aliases of pytorch_lightning / lightning (legacy `pl.metrics`)
        self._evaluate: set[str] = set()  # aliases of Hugging Face `evaluate`
        self._evaluate_load: set[str] = set()  # `from evaluate import load`
        self.options: dict[str, dict[str, ast.expr]] = {}  # self.X holding constant `self.log` options
        self.module_options = _module_options(self.tree)  # NAME = dict(on_epoch=True) at module level
        self.functions = {  # the functions defined at the file's top level, which a hook's values may come from
            node.name: node for node in self.tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        self.dynamic: list[Held] = []  # metrics set with `setattr(self, computed_name, ...)`
        self._shared_collections: list[tuple[str, str, ast.stmt, str]] = []
        self.evaluate_attrs: set[str] = set()
        self.evaluate_names: set[str] = set()
        self._sources = 0
        self._current_attrs: dict[str, Held] = {}
        self.monitors: set[str] = set()

    # ------------------------------------------------------------------ driver

    def findings(self) -> list[Finding]:
        """Every finding of the file, ordered by position, one per position and code."""
        self._read_imports()
        if not self._may_hold_metrics():
            return []
        self._nodes = {}
        for node in ast.walk(self.tree):  # one walk; every rule reads the nodes it needs from here
            self._own.add(id(node))
            if isinstance(node, _INDEXED):
                self._nodes.setdefault(type(node), []).append(node)
        self.monitors = self._monitors()
        self._evaluate_metrics()
        if self._reaches_lightning():
            self._module_scope()
        self._device_moves()
        for node in self._of(ast.ClassDef):
            self._class(node)
        return sorted(self._findings.values(), key=lambda f: (f.line, f.col, f.code))

    def _of(self, *kinds: type) -> list[Any]:
        """The file's nodes of these types, in the order of one `ast.walk`."""
        if len(kinds) == 1:
            return self._nodes.get(kinds[0], [])
        return [node for kind in kinds for node in self._nodes.get(kind, [])]

    def _may_hold_metrics(self) -> bool:
        """A file that imports no metric library, names no project metric and logs nothing has no finding."""
        if self._classes or self._modules or self._legacy or self._evaluate or self._evaluate_load:
            return True
        text = self.source
        if ".log(" in text or ".log_dict(" in text:
            return True
        names = (*self.project.metric_classes, *self.project.metric_functions, *self.project.lightning_classes)
        return any(name in text for name in names)

    def _evaluate_metrics(self) -> None:
        """Names and attributes holding a Hugging Face `evaluate` metric (``evaluate.load("f1")``)."""
        if not (self._evaluate or self._evaluate_load):
            return
        for node in self._of(ast.Assign):
            chain = _chain(node.value.func) if isinstance(node.value, ast.Call) else []
            loads = (len(chain) == 2 and chain[0] in self._evaluate and chain[1] == "load") or (
                len(chain) == 1 and chain[0] in self._evaluate_load
            )
            if not loads:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.evaluate_names.add(target.id)
                elif isinstance(target, ast.Attribute) and _is_name(target.value, "self"):
                    self.evaluate_attrs.add(target.attr)

    def owns(self, node: ast.AST) -> bool:
        """Whether ``node`` is in this file (not in a base class read from another file)."""
        return id(node) in self._own

    def _add(self, node: ast.AST, code: str, severity: str, message: str, fix: tuple[Any, ...] = ()) -> None:
        if not self.owns(node):
            return  # reported where that file is linted
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        if self._suppressed(line, code):
            return
        key = (line, code)  # one finding per line and code: the most severe, the first of equals
        existing = self._findings.get(key)
        if existing is None or _RANK[severity] > _RANK[existing.severity]:
            self._findings[key] = Finding(self.path, line, col, code, severity, message, tuple(fix))

    def _suppressed(self, line: int, code: str) -> bool:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if "# noqa" not in text:
            return False
        rest = text.split("# noqa", 1)[1]
        if not rest.startswith(":"):
            return True
        codes = [part.strip() for part in rest[1:].split("#")[0].replace(",", " ").split()]
        return any(code.startswith(given) for given in codes if given)

    # ------------------------------------------------------------------ imports and constructions

    def _read_imports_of(self, tree: ast.Module | None) -> None:
        """Also know the metric names another file imports (a base class's methods use them)."""
        if tree is None:
            return
        saved = self._nodes
        self._nodes = {ast.Import: [], ast.ImportFrom: []}
        for node in imports_of(tree):
            self._nodes[type(node)].append(node)
        self._read_imports()
        self._nodes = saved

    def _read_imports(self) -> None:
        for node in self._of(ast.Import, ast.ImportFrom):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    if root in ("torchmetrics", "sklearn"):
                        self._modules[alias.asname or root] = root if alias.asname is None else alias.name
                    elif root in _LEGACY_ROOTS:
                        self._legacy.add(alias.asname or root)
                        if alias.name.endswith(".metrics") and alias.asname:
                            self._modules[alias.asname] = "torchmetrics"
                    elif alias.name == "evaluate":
                        self._evaluate.add(alias.asname or "evaluate")
            elif isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                root = parts[0]
                if root in _LEGACY_ROOTS:
                    if "metrics" in parts:  # `from pytorch_lightning.metrics(.x) import Accuracy`: the legacy classes
                        for alias in node.names:
                            if alias.name[:1].isupper():
                                self._classes[alias.asname or alias.name] = f"torchmetrics.{alias.name}"
                    else:
                        for alias in node.names:
                            if alias.name == "metrics":
                                self._modules[alias.asname or "metrics"] = "torchmetrics"
                    continue
                if root == "evaluate":
                    for alias in node.names:
                        if alias.name == "load":
                            self._evaluate_load.add(alias.asname or "load")
                    continue
                if root not in ("torchmetrics", "sklearn"):
                    continue
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if alias.name[:1].islower() and not _looks_like_function(full):
                        self._modules[alias.asname or alias.name] = full  # a submodule
                    else:
                        self._classes[alias.asname or alias.name] = full

    def _callee(self, func: ast.expr) -> tuple[str, str] | None:
        """``(origin, name)`` of a torchmetrics class/function or an sklearn.metrics function being called."""
        if isinstance(func, ast.Name) and func.id in self._classes:
            full = self._classes[func.id]
            return full.split(".")[0], full.rsplit(".", 1)[1]
        chain = _chain(func)
        if len(chain) >= 3 and chain[0] in self._legacy and chain[1] == "metrics":
            return "torchmetrics", chain[-1]  # `pl.metrics.Accuracy()`, `pl.metrics.classification.F1()`
        if chain and chain[0] in self._modules:
            module = self._modules[chain[0]]
            full = ".".join([module, *chain[1:]])
            return full.split(".")[0], chain[-1]
        if isinstance(func, ast.Call) and _is_name(func.func, "getattr") and len(func.args) >= 2:
            module_chain = _chain(func.args[0])
            if module_chain and module_chain[0] in self._modules:  # `getattr(torchmetrics, name)(...)`
                module = ".".join([self._modules[module_chain[0]], *module_chain[1:]])
                name = func.args[1].value if isinstance(func.args[1], ast.Constant) else None
                if isinstance(name, str):
                    return module.split(".")[0], name
                return module.split(".")[0], ("metric" if "functional" in module else "Metric")
        if isinstance(func, ast.Name) and func.id in self.project.metric_classes:
            return "torchmetrics", func.id  # a Metric subclass defined in the project
        return None

    def _construction(self, node: ast.AST, env: dict[str, Any] | None = None) -> Held | None:
        """What a constructor call builds: a metric, a collection, a ModuleDict of metrics, or ``None``."""
        if not isinstance(node, ast.Call):
            return None
        env = env or {}
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("cuda", "to"):
            return self._construction(node.func.value, env)  # `Metric(...).cuda()` is still that metric
        callee = self._callee(node.func)
        chain = _chain(node.func)
        if callee is not None and callee[0] == "torchmetrics" and callee[1][:1].isupper():
            name = callee[1]
            keywords = _constant_keywords(node)
            self._sources += 1
            if name == "MetricCollection":
                given = (
                    node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "metrics"), None)
                )
                members = self._members(given, env)
                basis = given.id if isinstance(given, ast.Name) else None
                return Held("collection", name, keywords, members, node, self._sources, basis)
            if name in ("ClasswiseWrapper", "MinMaxMetric", "MultioutputWrapper", "BootStrapper", "Running"):
                inner = self._construction(node.args[0], env) if node.args else None
                if inner is not None and inner.kind == "metric":
                    return Held("metric", inner.name, inner.keywords, {}, node, self._sources)
            return Held("metric", name, keywords, {}, node, self._sources)
        if isinstance(node.func, ast.Name) and node.func.id in self.project.metric_callables:
            self._sources += 1  # a class of the project's metrics module, called on each batch
            return Held("metric", CALLABLE, {}, {}, node, self._sources)
        if chain and chain[-1] == "ModuleDict":
            members = self._members(node.args[0] if node.args else None, env)
            if members and all(member.kind in ("metric", "collection") for member in members.values()):
                self._sources += 1
                return Held("moduledict", "ModuleDict", {}, members, node, self._sources)
        if chain and chain[-1] == "clone" and isinstance(node.func, ast.Attribute):
            base = self._held(node.func.value, env) or self._attr_held(node.func.value, self._current_attrs)
            if base is not None and base.kind in ("collection", "metric"):
                return self._copy(base, node)
            if any(keyword.arg in ("prefix", "postfix") for keyword in node.keywords):
                self._sources += 1  # `.clone(prefix=...)` is MetricCollection's: a new collection of copies
                return Held("collection", "MetricCollection", {}, {}, node, self._sources)
        return None

    def _copy(self, held: Held, node: ast.AST) -> Held:
        # `clone()` deep-copies: the copy and its members are new objects
        self._sources += 1
        members = {key: self._copy(member, node) for key, member in held.members.items()}
        return Held(held.kind, held.name, held.keywords, members, node, self._sources)

    def _members(self, node: ast.AST | None, env: dict[str, Any]) -> dict[str, Held]:
        if isinstance(node, ast.Name) and isinstance(env.get(node.id), Held):
            held = env[node.id]
            return held.members if held.kind == "plain" else {}
        if isinstance(node, ast.Dict):
            members = {}
            for key, value in zip(node.keys, node.values, strict=True):
                held = self._construction(value, env) or (self._held(value, env) if value is not None else None)
                held = held or (self._attr_held(value, self._current_attrs) if value is not None else None)
                if held is not None and isinstance(key, ast.Constant) and isinstance(key.value, str):
                    members[key.value] = held
            return members
        if isinstance(node, (ast.List, ast.Tuple)):
            members = {}
            for item in node.elts:
                held = self._construction(item, env) or self._held(item, env)
                if held is not None:
                    members[_snake(held.name)] = held
            return members
        return {}

    def _held(self, node: ast.AST | None, env: dict[str, Any]) -> Held | None:
        if isinstance(node, ast.Name) and isinstance(env.get(node.id), Held):
            return env[node.id]  # type: ignore[no-any-return]
        return None

    # ------------------------------------------------------------------ module scope: LM206

    def _reaches_lightning(self) -> bool:
        """Whether this file's objects can reach a LightningModule or Callback (LM206 is about those only)."""
        if self.path in self.project.lightning_files or self._legacy:
            return True
        for node in self._of(ast.ClassDef):
            if any(
                _chain(base)[-1:]
                and _chain(base)[-1] in ("LightningModule", "Callback", *self.project.lightning_classes)
                for base in node.bases
            ):
                return True
        return False

    def _device_moves(self) -> None:
        """LM204 in every function: `.to("cuda")` / `.cuda()` on a metric, also one stored in a dict of metrics."""
        if not (self._classes or self._modules or self._legacy or self.project.metric_classes):
            return
        stores: dict[tuple[int, str], list[ast.expr]] = {}
        for function in self._of(ast.FunctionDef, ast.AsyncFunctionDef):
            for statement in _statements(function.body):
                if isinstance(statement, ast.Assign):
                    for target in statement.targets:
                        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                            stores.setdefault((id(function), target.value.id), []).append(statement.value)
        if stores:
            for values in stores.values():
                if not any(self._construction(value) is not None for value in values):
                    continue
                for value in values:  # a dict that holds metrics holds metrics in every branch
                    if isinstance(value, ast.Call) and _moves_to_cuda(value) and isinstance(value.func, ast.Attribute):
                        self._lm204(value, self._construction(value.func.value) or Held("metric", "Metric"))

    def _lm204(self, call: ast.Call, held: Held) -> None:
        assert isinstance(call.func, ast.Attribute)
        self._add(
            call,
            MOVED_BY_HAND.code,
            ERROR,
            MOVED_BY_HAND.say(method=call.func.attr, metric=held.name),
        )

    def _module_scope(self) -> None:
        script = self._is_script()
        used_in_code = self._names_read_in_functions() if script else set()
        for statement in self.tree.body:
            if script:  # a script's own objects are built once per run; only globals that code reads are shared
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                if not any(isinstance(t, ast.Name) and t.id in used_in_code for t in targets):
                    continue
            self._scope_constructions(statement, "module scope")
        for node in self._of(ast.FunctionDef, ast.AsyncFunctionDef):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                held = self._construction(default) if default is not None else None
                if default is not None and held is not None and held.kind in ("metric", "collection"):
                    self._add(
                        default,
                        MODULE_SCOPE.code,
                        ERROR,
                        MODULE_SCOPE.say("default", metric=held.name, function=node.name),
                    )

    def _is_script(self) -> bool:
        """A notebook, or a module that runs at import (top-level calls, ``if __name__ == "__main__"``)."""
        if self.path.endswith(".ipynb"):
            return True
        for statement in self.tree.body:
            if isinstance(statement, ast.If) and "__name__" in ast.dump(statement.test):
                return True
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                return True
        return False

    def _names_read_in_functions(self) -> set[str]:
        return {
            node.id
            for function in self._of(ast.FunctionDef, ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
        }

    def _scope_constructions(self, node: ast.stmt, where: str) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for held, place in self._constructions_in(node.value):
                self._add(
                    place,
                    MODULE_SCOPE.code,
                    ERROR,
                    MODULE_SCOPE.say(metric=held.name, where=where),
                )

    def _constructions_in(self, node: ast.AST) -> Iterator[tuple[Held, ast.AST]]:
        for child in ast.walk(node):
            held = self._construction(child)
            if held is not None and held.kind in ("metric", "collection") and child is not None:
                yield held, child

    # ------------------------------------------------------------------ one class

    def _class(self, node: ast.ClassDef) -> None:
        if self._reaches_lightning():
            for statement in node.body:
                self._scope_constructions(statement, f"class scope of {node.name}")
        methods: dict[str, Any] = {}
        for path, base in base_classes(self.project, node):  # a base class in another file: its methods too
            if path != self.path:
                self._read_imports_of(self.project.trees.get(path))
            methods.update({item.name: item for item in base.body if isinstance(item, ast.FunctionDef)})
        methods.update(
            {item.name: item for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
        )
        if not self._logs_through_lightning(node, methods):
            return  # a class with hook-like names that is no LightningModule or Callback (a Fabric utility)
        attrs = self._attributes(methods)
        usage = Usage()
        walker = _Walker(self, node, methods, attrs, usage)
        for name, method in methods.items():
            defaults = hook_defaults(name)
            if defaults is None:
                continue
            receiver = "self"
            params = [arg.arg for arg in method.args.args]
            if len(params) >= 3 and params[1] == "trainer":  # a Callback hook: (self, trainer, pl_module, ...)
                receiver = params[2]
            walker.run(method, Context(name, defaults, receiver))
        walker.report_helpers_per_stage()
        self._class_rules(node, attrs, usage)

    def _logs_through_lightning(self, node: ast.ClassDef, methods: dict[str, Any]) -> bool:
        """A LightningModule or Callback: by its bases (across the project), or by hooks that call ``.log``."""
        bases = {(_chain(base) or [""])[-1] for base in node.bases}
        if bases & {"LightningModule", "Callback", *self.project.lightning_classes}:
            return True
        for name, method in methods.items():
            if hook_defaults(name) is None:
                continue
            for call in ast.walk(method):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _LOG_ATTRS:
                    return True
        # a helper that logs, called from a hook
        return any(
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in _LOG_ATTRS
            and _is_name(call.func.value, "self")
            for method in methods.values()
            for call in ast.walk(method)
        ) and any(hook_defaults(name) is not None for name in methods)

    def _attributes(self, methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> dict[str, Held]:
        """``self.X`` as ``__init__``, ``setup`` and ``configure_*`` assign it (every branch)."""
        attrs: dict[str, Held] = {}
        self._current_attrs = attrs
        self.options = {}
        self.dynamic = []
        self._shared_collections = []
        for name, method in methods.items():
            if name not in ("__init__", "setup") and not name.startswith("configure_"):
                continue
            env: dict[str, Any] = self._typed_parameters(method)
            for statement in _statements(method.body):
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                    self._setattr(statement.value, method, env)
                if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
                    for call in _calls(statement):
                        self._moves(call, attrs)
                    continue
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                held = self._assigned(statement.value, env, attrs)
                if held is None and isinstance(statement, ast.AnnAssign) and self._is_metric_type(statement.annotation):
                    self._sources += 1
                    held = Held("metric", "Metric", {}, {}, statement.value, self._sources)
                self._moves_in(statement.value, attrs, env)
                for target in targets:
                    if isinstance(target, ast.Name) and held is not None:
                        env[target.id] = held
                    elif _is_self_attr(target) and held is not None:
                        self._assign_attr(attrs, target.attr, held, statement)  # type: ignore[attr-defined]
                    elif _is_self_attr(target) and (options := _options(statement.value)) is not None:
                        self.options[target.attr] = options  # type: ignore[attr-defined]
        return attrs

    def _assigned(self, value: ast.expr, env: dict[str, Any], attrs: dict[str, Held]) -> Held | None:
        if isinstance(value, ast.IfExp):  # `metrics if metrics else default`: what either branch holds
            return self._assigned(value.body, env, attrs) or self._assigned(value.orelse, env, attrs)
        if isinstance(value, ast.BoolOp):
            return next((h for item in value.values if (h := self._assigned(item, env, attrs)) is not None), None)
        held = self._construction(value, env) or self._held(value, env) or self._attr_held(value, attrs)
        if held is None and isinstance(value, ast.Subscript):  # `metrics["train"]` of a container of metrics
            container = self._held(value.value, env) or self._attr_held(value.value, attrs)
            if container is not None and container.kind in ("alias", "plain", "list", "moduledict"):
                key = value.slice.value if isinstance(value.slice, ast.Constant) else None
                held = container.members.get(key) if isinstance(key, str) else None
                generic = container.members.get("*")
                if held is None and generic is not None:  # one of the container's metrics: not another key's
                    held = self._copy(generic, value)
        if held is None and isinstance(value, (ast.List, ast.Tuple)):
            starred = [self._held(item.value, env) for item in value.elts if isinstance(item, ast.Starred)]
            typed = [item for item in starred if item is not None]
            if typed:  # `[*metrics, ...]` of a parameter typed as metrics
                return typed[0]
        if held is None and isinstance(value, (ast.Dict, ast.List, ast.Tuple, ast.Call)):
            held = self._plain(value, env, attrs)
        return held

    def _typed_parameters(self, method: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Any]:
        """The parameters annotated with a metric type (``metrics: list[Metric]``, ``f1: MetricCollection``)."""
        env: dict[str, Any] = {}
        arguments = [*method.args.posonlyargs, *method.args.args, *method.args.kwonlyargs]
        for argument in arguments:
            if argument.annotation is not None and self._is_metric_type(argument.annotation):
                self._sources += 1
                single = isinstance(argument.annotation, ast.Name | ast.Attribute)
                metric = Held("metric", "Metric", {}, {}, argument, self._sources)
                env[argument.arg] = metric if single else Held("list", "Metric", {}, {"*": metric}, argument)
            elif method.name == "__init__" and _names_metrics(argument):
                # metrics handed to the constructor (from a config, a CLI, a caller): by the parameter's name
                self._sources += 1
                metric = Held("metric", "Metric", {}, {}, argument, self._sources)
                plural = argument.arg.lower().endswith(("metrics", "metric_dict", "metrics_dict"))
                env[argument.arg] = Held("alias", "dict", {}, {"*": metric}, argument) if plural else metric
        return env

    def _is_metric_type(self, annotation: ast.AST) -> bool:
        for node in ast.walk(annotation):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name is None:
                continue
            if name in self.project.metric_classes or (
                name in self._classes and self._classes[name].split(".")[0] == "torchmetrics"
            ):
                return True
            if isinstance(node, ast.Attribute) and _chain(node)[:1] and _chain(node)[0] in self._modules:
                return name[:1].isupper() and self._modules[_chain(node)[0]].startswith("torchmetrics")
            if name.endswith("Metric") and self._imported_from_metrics_module(name):
                return True
        return False

    def _imported_from_metrics_module(self, name: str) -> bool:
        for node in self._of(ast.ImportFrom):
            from_metrics = node.module and "metric" in node.module.split(".")[-1]
            if from_metrics and any((alias.asname or alias.name) == name for alias in node.names):
                return True
        return False

    def _setattr(self, call: ast.Call, method: ast.AST, env: dict[str, Any]) -> None:
        """``setattr(self, name, Metric(...))`` with a computed name: metrics reached by ``getattr`` later."""
        if not (_is_name(call.func, "setattr") and len(call.args) == 3 and _is_name(call.args[0], "self")):
            return
        held = self._construction(call.args[2], env)
        if held is None and isinstance(call.args[2], ast.Call):
            # `setattr(self, name, cls())` in a loop over torchmetrics classes
            classes = [
                name
                for node in ast.walk(method)
                if isinstance(node, ast.Attribute | ast.Name) and not isinstance(getattr(node, "ctx", None), ast.Store)
                for name in [self._class_reference(node)]
                if name is not None
            ]
            if classes:
                self._sources += 1
                additive = all(is_additive(name, {}) for name in classes)
                held = Held("metric", classes[0] if additive else "Metric", {}, {}, call, self._sources)
        if held is not None:
            self.dynamic.append(held)

    def _class_reference(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name) and node.id in self._classes and node.id[:1].isupper():
            return self._classes[node.id].rsplit(".", 1)[1]
        chain = _chain(node)
        if len(chain) >= 2 and chain[0] in self._modules and chain[-1][:1].isupper():
            return chain[-1] if self._modules[chain[0]].startswith("torchmetrics") else None
        return None

    def _plain(self, node: ast.AST, env: dict[str, Any], attrs: dict[str, Held]) -> Held | None:
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "dict"):
            return None
        inner = node.args[0] if isinstance(node, ast.Call) and node.args else node
        if isinstance(node, ast.Call) and not node.args:
            members = {
                keyword.arg: held
                for keyword in node.keywords
                if keyword.arg and (held := self._construction(keyword.value, env)) is not None
            }
        else:
            members = self._members(inner, env)
        literal = [*inner.values] if isinstance(inner, ast.Dict) else [*getattr(inner, "elts", [])]
        literal += [keyword.value for keyword in node.keywords] if isinstance(node, ast.Call) else []
        fresh = [value for value in literal if self._construction(value, env) is not None]
        if not members:
            return None
        self._sources += 1
        # a dict of metrics built here is LM202; one that only names registered metrics is an alias
        return Held("plain" if fresh else "alias", "dict", {}, members, node, self._sources)

    def _attr_held(self, node: ast.AST, attrs: dict[str, Held]) -> Held | None:
        if _is_self_attr(node):
            return attrs.get(node.attr)  # type: ignore[attr-defined]
        return None

    def _assign_attr(self, attrs: dict[str, Held], name: str, held: Held, statement: ast.stmt) -> None:
        if held.kind == "plain" and any(member.name != CALLABLE for member in held.members.values()):
            self._add(
                statement,
                PLAIN_CONTAINER.code,
                WARNING,
                PLAIN_CONTAINER.say(attr=name, container=type(held.node).__name__.lower()),
            )
        for other, existing in attrs.items():
            if other == name or held.kind != "collection" or existing.kind != "collection":
                continue
            shared = {member.source for member in held.members.values()} & {
                member.source for member in existing.members.values()
            }
            same_basis = held.basis is not None and held.basis == existing.basis
            if (shared or same_basis) and existing.source != held.source:
                what = f"dict `{held.basis}`" if same_basis else "dict of metrics"
                self._shared_collections.append((name, other, statement, what))
        for other, existing in attrs.items():
            if other != name and existing.source == held.source and held.kind in ("metric", "collection"):
                self._add(
                    statement,
                    SHARED_BETWEEN_STAGES.code,
                    ERROR,
                    SHARED_BETWEEN_STAGES.say(
                        "one-object", attr=name, other=other, metric=held.name, expr=_expr_text(self, held.node)
                    ),
                )
        attrs[name] = held

    def _moves(self, call: ast.Call, attrs: dict[str, Held]) -> None:
        self._moves_in(call, attrs, {})

    def _moves_in(self, node: ast.AST, attrs: dict[str, Held], env: dict[str, Any]) -> None:
        for call in [child for child in ast.walk(node) if isinstance(child, ast.Call)]:
            if not isinstance(call.func, ast.Attribute) or not _moves_to_cuda(call):
                continue
            target = call.func.value
            held = self._construction(target, env) or self._attr_held(target, attrs) or self._held(target, env)
            if held is not None and held.kind in ("metric", "collection", "moduledict"):
                self._lm204(call, held)

    # ------------------------------------------------------------------ rules over the whole class

    def _class_rules(self, node: ast.ClassDef, attrs: dict[str, Held], usage: Usage) -> None:
        resets = usage.reset | _reset_attributes(node)
        self._shared_between_stages(attrs, usage)
        for attr, place in usage.computed.items():
            held = _held_of(attrs, attr)
            if held is not None and held.name in BEST_TRACKERS:
                continue
            base = attr.split("[")[0]
            if {attr, base} & (resets | set(usage.logged_object)) or attr in usage.fed_elsewhere:
                continue
            if any(ref.startswith(f"{base}[") for ref in resets | set(usage.logged_object)) and "[*]" in attr:
                continue
            if set(usage.uses.get(attr, {})) == {"test"}:
                continue  # a test is one epoch: nothing spans epochs
            self._add(
                place,
                COMPUTE_WITHOUT_RESET.code,
                ERROR,
                COMPUTE_WITHOUT_RESET.say(attr=attr, base=base),
            )
        for attr, place in usage.logged_compute.items():
            if attr in usage.logged_object or attr.split("[")[0] in usage.logged_object:
                self._add(
                    place,
                    LOGGED_TWO_WAYS.code,
                    ERROR,
                    LOGGED_TWO_WAYS.say(attr=attr),
                )

    def _shared_between_stages(self, attrs: dict[str, Held], usage: Usage) -> None:
        """LM201: one object used in several stages, reported at its first use in each stage."""
        for ref, stages in usage.uses.items():
            held = _held_of(attrs, ref)
            if (
                len(stages) < 2
                or "[*]" in ref
                or ref == "<dynamic>"
                or (held is not None and held.name in (*BEST_TRACKERS, CALLABLE))
            ):
                continue  # a best value, a running window or a stateless callable: sharing is harmless
            ordered = sorted(stages, key=STAGES.index)
            reads = {stage for stage, uses in stages.items() if any(how in ("compute", "logged") for how, _, _ in uses)}
            feeds = {stage for stage, uses in stages.items() if any(how in ("forward", "update") for how, _, _ in uses)}
            stale = reads - feeds  # state read in a stage that never feeds it: another stage's value
            if "train" in stages:
                severity = ERROR if reads else WARNING
                why = SHARED_BETWEEN_STAGES.say("why-read" if reads else "why-forward")
            else:
                severity = ERROR if stale else INFO
                stale_text = " and ".join(sorted(stale))
                why = SHARED_BETWEEN_STAGES.say("why-stale" if stale else "why-val-test", stale=stale_text)
            claimed = _claimed_stage(ref)
            for stage in ordered:
                _, place, site = stages[stage][0]
                if stale and stage not in stale and "train" not in stages:
                    continue
                if claimed == stage:
                    continue  # `self.train_acc` in training is right; its use in another stage is the slip
                message = SHARED_BETWEEN_STAGES.say(ref=ref, stages=" and ".join(ordered), stage=stage, why=why)
                self._add(place, SHARED_BETWEEN_STAGES.code, severity, message)
                if site is not None and site is not place:
                    self._add(site, SHARED_BETWEEN_STAGES.code, severity, message)
        for name, other, statement, basis in self._shared_collections:
            both = {**usage.uses.get(name, {}), **usage.uses.get(other, {})}
            read = any(how in ("compute", "logged") for stage_uses in both.values() for how, _, _ in stage_uses)
            used_in = set(usage.uses.get(name, {})) | set(usage.uses.get(other, {}))
            severity = (ERROR if read else WARNING) if "train" in used_in or not used_in else INFO
            self._add(
                statement,
                SHARED_BETWEEN_STAGES.code,
                severity,
                SHARED_BETWEEN_STAGES.say("collections", attr=name, other=other, basis=basis),
            )

    # ------------------------------------------------------------------ monitors

    def _monitors(self) -> set[str]:
        names = set()
        for node in self._of(ast.keyword):
            if node.arg == "monitor" and isinstance(node.value, ast.Constant):
                names.add(str(node.value.value))
        for node in self._of(ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "monitor" and isinstance(value, ast.Constant):
                    names.add(str(value.value))
        return names


class _Walker:
    """Walks a hook's body (and the helpers it calls) in its logging context."""

    def __init__(
        self,
        analysis: FileAnalysis,
        cls: ast.ClassDef,
        methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
        attrs: dict[str, Held],
        usage: Usage,
    ) -> None:
        self.a, self.cls, self.methods, self.attrs, self.usage = analysis, cls, methods, attrs, usage
        self.appended: dict[str, Value] = {}  # self.X lists that per-batch metric values are appended to
        self.returned: dict[str, Value] = {}  # keys of dicts a step returns holding per-batch metric values
        self.returns_batch: set[str] = set()  # stages whose step returns per-batch metric values under unknown keys
        self._helper_values: dict[tuple[int, str], Value | None] = {}
        self._sums_over_len: set[int] = set()  # `sum(xs) / len(xs)`: the `sum` calls of a mean by hand
        self.in_helpers: dict[tuple[int, str], list[tuple[str, str, ast.AST, str]]] = {}

    def run(self, function: ast.FunctionDef | ast.AsyncFunctionDef, ctx: Context) -> None:
        ctx.resets |= self._resets_in(function, ctx)
        self._sums_over_len |= _sums_over_len(function)
        for statement in _statements(function.body):
            self._statement(statement, ctx)

    def _resets_in(self, function: ast.FunctionDef | ast.AsyncFunctionDef, ctx: Context) -> set[str]:
        resets = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reset":
                ref = self._ref(node.func.value, ctx)
                if ref is not None:
                    resets.add(ref)
        return resets

    # ------------------------------------------------------------------ statements

    def _statement(self, statement: ast.stmt, ctx: Context) -> None:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            value = self._value(statement.value, ctx)
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    if value is None and (options := _options(statement.value)) is not None:
                        ctx.env[target.id] = Options(options)
                        continue
                    ctx.env[target.id] = value if value is not None else self._string(statement.value, ctx)
                elif isinstance(target, ast.Tuple | ast.List):
                    self._bind(target, value, ctx.env)
        elif isinstance(statement, ast.For):
            self._bind(statement.target, self._element(statement.iter, ctx), ctx.env)
        elif isinstance(statement, ast.Return) and statement.value is not None:
            value = self._value(statement.value, ctx)
            ctx.returns.append(value)
            if ctx.defaults.per_batch and ctx.depth == 0:
                self._returned(value, ctx)
        for call in _calls(statement):
            self._call(call, ctx)

    def _returned(self, value: Value | None, ctx: Context) -> None:
        if value is None or value.kind not in ("batch", "batch-dict"):
            return
        for key, item in (value.items or {}).items():
            if item is not None and item.kind == "batch":
                self.returned[key] = item
        if not value.items and ctx.defaults.stage is not None:
            self.returns_batch.add(ctx.defaults.stage)

    def _bind(self, target: ast.AST, value: Value | None, env: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            elements = value.elements if value is not None else None
            for index, item in enumerate(target.elts):
                if elements is not None and index < len(elements):
                    self._bind(item, elements[index], env)
                elif value is not None and value.kind == "batch-dict" and elements is None:
                    self._bind(item, _element_of(value), env)
                else:
                    self._bind(item, None, env)

    def _element(self, node: ast.AST, ctx: Context) -> Value | None:
        """What one element of an iterated expression holds (``for x in node``)."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("zip", "enumerate"):
            if node.func.id == "enumerate" and node.args:
                return _tuple(None, self._element(node.args[0], ctx))
            return _tuple(*(self._element(argument, ctx) for argument in node.args))
        iterated = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args
        if iterated and node.func.attr in ("items", "values", "keys"):  # type: ignore[attr-defined]
            inner = self._element(node.func.value, ctx)  # type: ignore[attr-defined]
            key = METRIC_KEY if inner is not None and inner.kind == "object" else None
            if node.func.attr == "items":  # type: ignore[attr-defined]
                return _tuple(key, inner)
            return inner if node.func.attr == "values" else key  # type: ignore[attr-defined]
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            return self._element(node.value, ctx)  # `self.metrics[:-1]`
        if isinstance(node, ast.List | ast.Tuple):
            values = [self._value(item, ctx) for item in node.elts]
            objects = [value for value in values if value is not None and value.kind == "object" and value.ref]
            if objects and len(objects) == len(values):
                first = objects[0]
                refs = tuple(ref for value in objects for ref in (value.ref, *value.refs) if ref)
                return Value("object", first.what, first.additive, first.ref, node, refs=refs)
        held_ref = self._container_ref(node, ctx)
        if held_ref is not None:
            ref, held = held_ref
            member = next(iter(held.members.values()), None)
            return self._metric_value("object", f"{ref}[*]", member, node) if member else None
        value = self._value(node, ctx)
        if value is not None and value.kind in ("batch-dict", "compute-dict"):
            return _element_of(value)
        if value is not None and value.kind in ("batch", "compute"):
            return value  # the entries of a per-class value are per-batch values too
        return None

    def _container_ref(self, node: ast.AST, ctx: Context) -> tuple[str, Held] | None:
        """A `self.X` holding several metrics (a collection, a ModuleDict, a plain dict or list of them)."""
        if _is_self_attr(node):
            held = self.attrs.get(node.attr)  # type: ignore[attr-defined]
            if held is not None and held.members:
                return node.attr, held  # type: ignore[attr-defined]
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            if isinstance(found, Value) and found.kind == "object" and found.ref:
                held = self._held_ref(found.ref)
                if held is not None and held.members:
                    return found.ref, held
        return None

    # ------------------------------------------------------------------ calls

    def _call(self, call: ast.Call, ctx: Context) -> None:
        func = call.func
        construction = self.a._construction(call, {})
        if construction is not None and construction.kind in ("metric", "collection") and ctx.defaults.per_batch:
            self.a._add(
                call,
                BUILT_PER_BATCH.code,
                ERROR,
                BUILT_PER_BATCH.say(metric=construction.name, hook=ctx.hook),
            )
        on_receiver = isinstance(func, ast.Attribute) and _is_name(func.value, ctx.receiver)
        if on_receiver and isinstance(func, ast.Attribute) and func.attr in _LOG_ATTRS:
            self._log(call, ctx)
            return
        if isinstance(func, ast.Attribute) and func.attr == "append" and _is_self_attr(func.value) and call.args:
            value = self._value(call.args[0], ctx)
            if value is not None and value.kind == "batch" and ctx.defaults.per_batch:
                self.appended[func.value.attr] = value  # type: ignore[attr-defined]
            elif value is not None and value.kind == "batch-dict" and ctx.defaults.per_batch:
                for key, item in (value.items or {}).items():
                    if item is not None and item.kind == "batch":
                        self.returned[key] = item
                self.appended[func.value.attr] = value  # type: ignore[attr-defined]
        self._mean_of_batches(call, ctx)
        self.a._moves_in(call, self.attrs, {})
        self._use(call, ctx)
        self._helper(call, ctx)

    def _use(self, call: ast.Call, ctx: Context) -> None:
        # forward, update and compute of a metric attribute: which stage uses it, and LM102
        func = call.func
        ref = self._ref(func, ctx)
        method = "forward"
        if ref is None and isinstance(func, ast.Attribute) and func.attr in ("update", "compute", "forward"):
            ref, method = self._ref(func.value, ctx), func.attr
        if ref is None:
            self._fed(call, ctx)
            return
        if method == "compute" and (call.args or call.keywords):
            method = "forward"  # `metric.compute(preds, target)`: a function of this batch, not a Metric's state
        self._stage_use(ref, method, call, ctx)
        if method == "compute":
            self.usage.computed.setdefault(ref, call)
        self._fed(call, ctx, into_metric=method != "compute")

    def _stage_use(self, ref: str, how: str, node: ast.AST, ctx: Context) -> None:
        stage = ctx.defaults.stage
        if stage is None:
            return
        uses = self.usage.uses.setdefault(ref, {}).setdefault(stage, [])
        uses.append((how, node, ctx.site))

    def _fed(self, call: ast.Call, ctx: Context, into_metric: bool = False) -> None:
        # a compute() result fed into another metric (a best tracker) is used up there; and `reset()` calls
        for argument in call.args if into_metric else []:
            value = self._value(argument, ctx)
            if value is not None and value.kind == "compute" and value.ref is not None:
                self.usage.fed_elsewhere.add(value.ref)
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "reset":
            value = self._value(func.value, ctx)
            if value is not None and value.kind == "object":
                self.usage.reset.update(ref for ref in (value.ref, *value.refs) if ref)
            elif _is_self_attr(func.value):
                self.usage.reset.add(func.value.attr)  # type: ignore[attr-defined]

    def _helper(self, call: ast.Call, ctx: Context) -> Value | None:
        """Walk a method of the class, or a function of the file, called from a hook, in the hook's context.

        Returns what it returns. A method's ``self`` is the hook's; a function of the file is one defined at
        its top level (``def scores(logits, y): return {"f1": f1_score(...)}``).
        """
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            method, skipped = self.methods.get(func.attr), 1
            if hook_defaults(func.attr) is not None:
                return None
        elif isinstance(func, ast.Name) and func.id not in ctx.env:
            method, skipped = self.a.functions.get(func.id), 0
        else:
            return None
        if method is None or ctx.depth >= 4:
            return None
        key = (id(call), ctx.hook)
        if key in self._helper_values:
            return self._helper_values[key]
        self._helper_values[key] = None  # a recursive call sees nothing
        arguments = method.args
        params = [arg.arg for arg in [*arguments.posonlyargs, *arguments.args]][skipped:]
        env: dict[str, Any] = {}
        defaults = arguments.defaults
        for param, default in zip(params[len(params) - len(defaults) :], defaults, strict=True):
            env[param] = self._string(default, ctx)
        for keyword_arg, keyword_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
            env[keyword_arg.arg] = self._string(keyword_default, ctx) if keyword_default is not None else None
        for param, argument in zip(params, call.args, strict=False):
            env[param] = self._string(argument, ctx) or self._value(argument, ctx)
        extra: dict[str, ast.expr] = {}
        for keyword in call.keywords:
            if keyword.arg and keyword.arg in params + [a.arg for a in arguments.kwonlyargs]:
                env[keyword.arg] = self._string(keyword.value, ctx) or self._value(keyword.value, ctx)
            elif keyword.arg:
                extra[keyword.arg] = keyword.value
        if arguments.kwarg is not None:
            env[arguments.kwarg.arg] = Options(extra)
        site = ctx.site if ctx.site is not None else call
        inner = Context(ctx.hook, ctx.defaults, ctx.receiver, env, ctx.depth + 1, site=site, resets=set(ctx.resets))
        self.run(method, inner)
        returned = [value for value in inner.returns if value is not None]
        result = _merge(returned)
        self._helper_values[key] = result
        return result

    # ------------------------------------------------------------------ self.log

    def _log(self, call: ast.Call, ctx: Context) -> None:
        func = call.func
        assert isinstance(func, ast.Attribute)
        keywords = self._log_options(call, ctx)
        if keywords is None:  # `**options` that do not resolve: the flags are decided at run time
            keywords = {"on_epoch": ast.Name("unknown"), "sync_dist": ast.Name("unknown")}
        on_epoch = _flag(keywords.get("on_epoch"), ctx.defaults.on_epoch)
        sync_dist = _flag(keywords.get("sync_dist"), False)
        given_on_epoch = "on_epoch" in keywords
        if func.attr == "log":
            name_node = call.args[0] if call.args else keywords.get("name")
            value_node = call.args[1] if len(call.args) > 1 else keywords.get("value")
            name = self._string(name_node, ctx) if name_node is not None else None
            if value_node is not None:
                self._logged(call, ctx, name, value_node, on_epoch, sync_dist, given_on_epoch, single=True)
        else:
            values = call.args[0] if call.args else keywords.get("dictionary")
            if isinstance(values, ast.Dict):
                for key, value in zip(values.keys, values.values, strict=True):
                    name = self._string(key, ctx) if key is not None else None
                    self._logged(call, ctx, name, value, on_epoch, sync_dist, given_on_epoch, single=False, at=value)
            elif values is not None:
                self._logged(call, ctx, None, values, on_epoch, sync_dist, given_on_epoch, single=True)

    def _log_options(self, call: ast.Call, ctx: Context) -> dict[str, ast.expr] | None:
        options: dict[str, ast.expr] = {}
        for keyword in call.keywords:
            if keyword.arg:
                options[keyword.arg] = keyword.value
                continue
            spread: Any = None
            if isinstance(keyword.value, ast.Name):
                name = keyword.value.id  # a local name, else a module-level constant of the file
                spread = ctx.env[name] if name in ctx.env else self.a.module_options.get(name)
            elif _is_self_attr(keyword.value):
                spread = self.a.options.get(keyword.value.attr)  # type: ignore[attr-defined]
            elif isinstance(keyword.value, ast.Dict | ast.Call):
                spread = _options(keyword.value)
            if not isinstance(spread, dict):
                return None
            options.update(spread)
        return options

    def _logged(
        self,
        call: ast.Call,
        ctx: Context,
        name: str | None,
        node: ast.expr,
        on_epoch: bool | None,
        sync_dist: bool | None,
        given_on_epoch: bool,
        *,
        single: bool,
        at: ast.AST | None = None,
    ) -> None:
        value = self._value(node, ctx)
        if value is None:
            return
        label = f"{name}: " if name else ""
        monitored = MONITORED.format(name=name) if name in self.a.monitors else ""
        place = at or call
        if value.kind == "object" and value.ref:
            for ref in (value.ref, *value.refs):
                if ref:
                    self.usage.logged_object.setdefault(ref, call)
                    self._stage_use(ref, "logged", call, ctx)
            if sync_dist:
                self._sync_dist(place, label, value)
            return
        if value.kind == "object":
            return
        if value.kind in ("compute", "compute-dict") and value.ref:
            self.usage.logged_compute.setdefault(value.ref, call)
            if sync_dist:
                self._sync_dist(place, label, value)
        elif sync_dist and value.kind in ("batch", "batch-dict") and on_epoch is not False:
            self._sync_dist(place, label, value)
        if not ctx.defaults.per_batch or (value.kind.startswith("compute") and self._best_tracker(value)):
            return
        per_batch = value.ref is not None and value.ref in ctx.resets
        if on_epoch is not True:
            if value.kind.startswith("compute") and on_epoch is False and not per_batch:
                self._running_value(place, label, value, ctx)
            return
        default = "" if given_on_epoch else f" (the {ctx.hook} default)"
        if ctx.receiver != "self":
            monitored += IN_CALLBACK
        fix = self._fix(call, node, value, ctx) if single else ()
        if value.kind in ("compute", "compute-dict"):
            message = _running_mean_message(label, value, ctx.hook, default, monitored, per_batch=per_batch)
            self._report(ctx, place, COMPUTE_IN_STEP.code, ERROR, message, fix)
        else:
            severity = WARNING if value.additive else ERROR
            self._report(
                ctx,
                place,
                BATCH_VALUE_ON_EPOCH.code,
                severity,
                _batch_mean_message(label, value, default, monitored),
                fix,
            )

    def _best_tracker(self, value: Value) -> bool:
        held = self._held_ref(value.ref) if value.ref else None
        return held is not None and held.name in BEST_TRACKERS

    def _report(
        self, ctx: Context, place: ast.AST, code: str, severity: str, message: str, fix: tuple[Any, ...] = ()
    ) -> None:
        """Add a finding; one in a helper is remembered per hook, to be reported per stage where they differ."""
        if ctx.site is None:
            self.a._add(place, code, severity, message, fix)
            return
        if not self.a.owns(place):  # in a helper of a base class in another file: at this file's call
            helper = ast.get_source_segment(self.a.source, ctx.site) or "a helper"
            self.a._add(
                ctx.site, code, severity, THROUGH_OTHER_FILE.format(helper=helper.split("(")[0], message=message)
            )
            return
        self.a._add(place, code, severity, message, fix if ctx.depth == 1 else ())
        line = getattr(place, "lineno", 0)
        self.in_helpers.setdefault((line, code), []).append((ctx.hook, severity, ctx.site, message))

    def report_helpers_per_stage(self) -> None:
        """A helper shared by hooks whose findings differ in severity: each hook's call is reported too."""
        for (line, code), found in self.in_helpers.items():
            if len({severity for _, severity, _, _ in found}) < 2:
                continue
            for hook, severity, site, message in found:
                self.a._add(site, code, severity, THROUGH_HELPER.format(hook=hook, line=line, message=message))

    def _running_value(self, place: ast.AST, label: str, value: Value, ctx: Context) -> None:
        # logged per step only: each value is the metric over the batches so far, synced every step under DDP
        self._report(
            ctx,
            place,
            COMPUTE_IN_STEP.code,
            WARNING,
            COMPUTE_IN_STEP.say("per-step", label=label, obj=_object_text(value), hook=ctx.hook),
        )

    def _sync_dist(self, place: ast.AST, label: str, value: Value) -> None:
        if value.kind in ("batch", "batch-dict"):
            message = SYNC_DIST_ON_METRIC.say("batch", label=label, metric=value.what)
        else:
            shown = _object_text(value) + (".compute()" if value.kind != "object" else "")
            message = SYNC_DIST_ON_METRIC.say(label=label, obj=shown)
        self.a._add(place, SYNC_DIST_ON_METRIC.code, INFO, message)

    def _fix(self, call: ast.Call, node: ast.expr, value: Value, ctx: Context) -> tuple[Any, ...]:
        # Two safe shapes: `self.log(n, self.m(p, t))` and `self.log(n, self.m.compute())`.
        if value.ref is None or value.node is None or not isinstance(value.node, ast.Call):
            return ()
        if "[" in value.ref or "(" in value.ref:
            return ()
        obj = f"self.{value.ref}"
        called = value.node.func
        written = (
            called.value if isinstance(called, ast.Attribute) and called.attr in ("compute", "forward") else called
        )
        if ast.get_source_segment(self.a.source, written) != obj:
            return ()  # reached through a name bound elsewhere (a stage in a helper): not rewritten
        resets = self._sole_uses(value.ref, ctx)
        if resets is None:
            return ()  # the metric is used elsewhere too: the fix could not see what that use needs
        removals = tuple((reset.lineno, 0, reset.end_lineno + 1, 0, "") for reset in resets)  # type: ignore[operator]
        if value.node is node and value.kind in ("compute", "compute-dict"):
            return ((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, obj), *removals)
        if value.node is node and value.kind in ("batch", "batch-dict"):
            statement = _statement_of(self.a.tree, call)
            if statement is None or not isinstance(statement, ast.Expr) or statement.value is not call:
                return ()
            forward = ast.get_source_segment(self.a.source, node)
            if forward is None:
                return ()
            indent = " " * statement.col_offset
            return (
                (
                    statement.lineno,
                    statement.col_offset,
                    statement.lineno,
                    statement.col_offset,
                    f"{forward}\n{indent}",
                ),
                (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, obj),
                *removals,
            )
        if isinstance(node, ast.Name) and value.kind in ("batch", "batch-dict"):
            return ((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, obj), *removals)
        return ()

    def _sole_uses(self, ref: str, ctx: Context) -> list[ast.stmt] | None:
        """The ``reset()`` statements to drop with a fix, or ``None`` where the fix must not be made.

        The fix logs the object, so Lightning computes it over the epoch and resets it. That is right
        only where this hook is the metric's whole life: built in ``__init__``/``setup``/``configure_*``,
        fed here, and nowhere else read, logged or reset (a reset in the hook itself goes with the fix).
        """
        if ctx.depth or ctx.receiver != "self":
            return None  # a Callback's metric is no attribute of the module: Lightning refuses to log it
        hook = self.methods.get(ctx.hook)
        if hook is None:
            return None
        resets: list[ast.stmt] = []
        for statement in hook.body:  # a reset in the hook's own body (not in a branch) can be dropped
            call = statement.value if isinstance(statement, ast.Expr) else None
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "reset"
                and _is_self_attr(call.func.value)
                and call.func.value.attr == ref  # type: ignore[attr-defined]
                and statement.lineno == statement.end_lineno
                and self.a.lines[statement.lineno - 1].strip() == ast.get_source_segment(self.a.source, statement)
            ):
                resets.append(statement)
        inside = {id(node) for node in ast.walk(hook)}
        built = {
            id(node)
            for name, method in self.methods.items()
            if name in ("__init__", "setup") or name.startswith("configure_")
            for statement in ast.walk(method)
            if isinstance(statement, ast.Assign | ast.AnnAssign)
            for node in ast.walk(statement)
        }
        for name, method in self.methods.items():  # a reset when a stage or its epoch starts changes nothing
            if name.startswith("on_") and name.endswith("_start") and "batch" not in name:
                for node in ast.walk(method):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "reset"
                    ):
                        built.add(id(node.func.value))
        for node in ast.walk(self.a.tree):
            if isinstance(node, ast.Attribute) and node.attr == ref and id(node) not in inside | built:
                return None
        for node in ast.walk(hook):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reset":
                target = node.func.value
                own = _is_self_attr(target) and target.attr == ref  # type: ignore[attr-defined]
                if own and not any(node is reset.value for reset in resets):  # type: ignore[attr-defined]
                    return None  # a reset in a branch: what it means for the epoch value is not seen
        return resets

    # ------------------------------------------------------------------ LM103

    def _mean_of_batches(self, call: ast.Call, ctx: Context) -> None:
        if ctx.defaults.per_batch or not (_is_mean(call) or id(call) in self._sums_over_len):
            return
        outputs = _outputs_parameter(self.methods.get(ctx.hook))
        for child in ast.walk(call):
            if _is_self_attr(child) and child.attr in self.appended:  # type: ignore[attr-defined]
                value = self.appended[child.attr]  # type: ignore[attr-defined]
                self._lm103(call, value, f"self.{child.attr}", ctx)  # type: ignore[attr-defined]
                return
            if isinstance(child, ast.Subscript):
                key = self._string(child.slice, ctx)
                if key is not None and key in self.returned:
                    self._lm103(call, self.returned[key], f"the step outputs' {key!r}", ctx)
                    return
                named = isinstance(child.slice, ast.Name) and ctx.env.get(child.slice.id) is METRIC_KEY
                if named and (self.returns_batch or self.returned):  # `x[name] for name in self.metrics`
                    self._lm103(call, Value("batch", "metric", False), "the step outputs (one per metric)", ctx)
                    return
            if (
                isinstance(child, ast.Name)
                and child.id == outputs
                and ctx.defaults.stage in self.returns_batch
                and not any(isinstance(node, ast.Subscript) for node in ast.walk(call))
            ):
                value = Value("batch", "metric", False)
                self._lm103(call, value, "the step outputs", ctx)
                return

    def _lm103(self, call: ast.Call, value: Value, source: str, ctx: Context | None = None) -> None:
        add = self.a._add if ctx is None else (lambda *args: self._report(ctx, *args))
        add(
            call,
            MEAN_OF_BATCH_METRICS.code,
            WARNING if value.additive else ERROR,
            MEAN_OF_BATCH_METRICS.say(
                metric=value.what,
                source=source,
                why=MEAN_OF_BATCH_METRICS.say("why-additive" if value.additive else "why-not-additive"),
            ),
        )

    # ------------------------------------------------------------------ values and references

    def _value(self, node: ast.AST | None, ctx: Context) -> Value | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            return found if isinstance(found, Value) else None
        if isinstance(node, ast.Call):
            return self._call_value(node, ctx)
        if isinstance(node, ast.Subscript):
            inner = self._value(node.value, ctx)
            if inner is not None and inner.kind == "batch":
                return inner  # an entry of a per-batch result (`score["f1"]`, `per_class[0]`)
            if inner is not None and inner.kind in ("batch-dict", "compute-dict"):
                key = self._string(node.slice, ctx)
                if key is not None and inner.items and key in inner.items:
                    return inner.items[key]
                if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int) and inner.elements:
                    index = node.slice.value
                    if -len(inner.elements) <= index < len(inner.elements):
                        return inner.elements[index]
                if isinstance(node.slice, ast.Slice):
                    return inner
                return _element_of(inner)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            values = [self._value(item.value if isinstance(item, ast.Starred) else item, ctx) for item in node.elts]
            return _container(values, node, elements=tuple(values) if isinstance(node, ast.Tuple) else None)
        if isinstance(node, ast.Dict):
            items: dict[str, Value] = {}
            values = []
            for key_node, value_node in zip(node.keys, node.values, strict=True):
                value = self._value(value_node, ctx)
                values.append(value)
                if key_node is None:  # `{**other}`
                    if value is not None and value.items:
                        items.update(value.items)
                    continue
                key = self._string(key_node, ctx)
                if key is not None and value is not None:
                    items[key] = value
            return _container(values, node, items=items)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            inner_ctx = Context(ctx.hook, ctx.defaults, ctx.receiver, dict(ctx.env), ctx.depth, site=ctx.site)
            for generator in node.generators:
                self._bind(generator.target, self._element(generator.iter, inner_ctx), inner_ctx.env)
            element = node.value if isinstance(node, ast.DictComp) else node.elt
            for child in ast.walk(element):
                if isinstance(child, ast.Call):
                    self._use(child, inner_ctx)
            return _container([self._value(element, inner_ctx)], node)
        if isinstance(node, ast.IfExp):
            return self._value(node.body, ctx) or self._value(node.orelse, ctx)
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                value = self._value(side, ctx)
                if value is not None and value.kind == "batch":
                    return value
            return None
        ref = self._ref(node, ctx)
        if ref is not None:
            held = self._held_ref(ref)
            return self._metric_value("object", ref, held, node)
        return None

    def _call_value(self, node: ast.Call, ctx: Context) -> Value | None:
        func = node.func
        getattr_ref = self._ref(node, ctx)
        if getattr_ref is not None:  # `getattr(self, f"{stage}_acc")`
            return self._metric_value("object", getattr_ref, self._held_ref(getattr_ref), node)
        if isinstance(func, ast.Name) and func.id in ("float", "round", "abs") and node.args:
            return self._value(node.args[0], ctx)
        if tuple(_chain(func)) in _CASTS and node.args:  # `torch.tensor(f1_score(...), device=...)`
            return self._value(node.args[0], ctx)
        if isinstance(func, ast.Attribute) and func.attr in ("to", "type_as"):  # `value.to(self.device)`
            inner = self._value(func.value, ctx)
            if inner is not None and inner.kind == "batch":
                return inner
        if isinstance(func, ast.Attribute) and func.attr in _WRAPPERS and not node.args:
            inner = self._value(func.value, ctx)
            if inner is not None:
                return inner
        if isinstance(func, ast.Attribute) and func.attr in ("items", "values") and not node.args:
            inner = self._value(func.value, ctx)
            if inner is not None and inner.kind.endswith("-dict"):
                return inner
        ref = self._ref(func, ctx)
        if ref is not None:
            held = self._held_ref(ref)
            kind = "batch-dict" if held is not None and held.kind == "collection" else "batch"
            return self._metric_value(kind, ref, held, node)
        built = self.a._construction(func, {}) if isinstance(func, ast.Call) else None
        if built is not None and built.kind in ("metric", "collection"):  # `AUROC(...)(preds, target)`
            kind = "batch-dict" if built.kind == "collection" else "batch"
            return Value(kind, _describe(built), is_additive(built.name, built.keywords), None, node)
        if isinstance(func, ast.Attribute) and func.attr in ("compute", "forward"):
            ref = self._ref(func.value, ctx)
            if ref is not None:
                held = self._held_ref(ref)
                collection = held is not None and held.kind == "collection"
                computed = func.attr == "compute" and not (node.args or node.keywords)  # `compute(x, y)`: no Metric's
                kind = ("compute" if computed else "batch") + ("-dict" if collection else "")
                return self._metric_value(kind, ref, held, node)
            if func.attr == "compute" and self._evaluate_metric(func.value, ctx) and node.keywords:
                return Value("batch", "evaluate metric", False, None, node)  # `metric.compute(predictions=...)`
        if not isinstance(func, ast.Name) and (helper := self._helper(node, ctx)) is not None:
            return helper
        callee = self.a._callee(func)
        if callee is not None and callee[1][:1].islower():
            keywords = _constant_keywords(node)
            return Value("batch", callee[1], is_additive(callee[1], keywords), None, node)
        name = _chain(func)[-1:] or [""]
        if isinstance(func, ast.Name) and name[0] in self.a.project.metric_functions:
            what = self.a.project.metric_functions[name[0]]
            return Value("batch", what, is_additive(what, _constant_keywords(node)), None, node)
        if isinstance(func, ast.Name) and (helper := self._helper(node, ctx)) is not None:
            return helper
        if name[0] and len(node.args) >= 2 and _names_a_metric(name[0]) and self._unresolved(func):
            return Value("batch", name[0], is_additive(name[0], _constant_keywords(node)), None, node)
        return None

    def _unresolved(self, func: ast.expr) -> bool:
        """A function this file does not define or resolve: a project helper seen only by its name."""
        if isinstance(func, ast.Attribute) and _is_name(func.value, "self"):
            return func.attr not in self.methods
        chain = _chain(func)
        if not chain or chain[0] in ("torch", "np", "numpy", "F", "math"):
            return False
        return not any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == chain[-1]
            for node in self.a.tree.body
        )

    def _evaluate_metric(self, node: ast.AST, ctx: Context) -> bool:
        """A Hugging Face `evaluate` metric (``evaluate.load(...)``), held by a name or an attribute."""

        def loads(expr: ast.AST | None) -> bool:
            if not isinstance(expr, ast.Call):
                return False
            chain = _chain(expr.func)
            return (len(chain) == 2 and chain[0] in self.a._evaluate and chain[1] == "load") or (
                len(chain) == 1 and chain[0] in self.a._evaluate_load
            )

        if _is_self_attr(node):
            return node.attr in self.a.evaluate_attrs  # type: ignore[attr-defined]
        if isinstance(node, ast.Name):
            return ctx.env.get(node.id) == "evaluate" or node.id in self.a.evaluate_names
        return loads(node)

    def _metric_value(self, kind: str, ref: str, held: Held | None, node: ast.AST) -> Value:
        if held is None:
            return Value(kind, ref, kind == "object", ref, node)
        if held.kind in ("collection", "moduledict", "plain", "alias", "list"):
            members = list(held.members.values())
            additive = bool(members) and all(is_additive(member.name, member.keywords) for member in members)
            names = ", ".join(sorted({member.name for member in members})) or "MetricCollection"
            return Value(kind, names, additive, ref, node)
        family = self.a.project.metric_bases.get(held.name, held.name)
        if family in ("Metric", CALLABLE):  # a metric of unknown family: not assumed additive
            return Value(kind, held.name if family != held.name else "metric", False, ref, node)
        if family != held.name:  # a project subclass of a torchmetrics class: that class's family
            return Value(kind, held.name, is_additive(family, held.keywords), ref, node)
        return Value(kind, _describe(held), is_additive(held.name, held.keywords), ref, node)

    def _held_ref(self, ref: str) -> Held | None:
        base, _, key = ref.partition("[")
        held = self.attrs.get(base)
        if held is None and base == "<dynamic>" and self.a.dynamic:
            return self.a.dynamic[0]
        if held is not None and key:
            key = key.rstrip("]").strip("'\"")
            if key == "*" or key not in held.members:
                return next(iter(held.members.values()), None) if held.kind != "collection" else held
            return held.members.get(key)
        return held

    def _ref(self, node: ast.AST, ctx: Context) -> str | None:
        """The metric attribute ``node`` names (``"f1"``, ``"metrics['val']"``), or ``None``."""
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            return found.ref if isinstance(found, Value) and found.kind == "object" else None
        if _is_self_attr(node):
            held = self.attrs.get(node.attr)  # type: ignore[attr-defined]
            return node.attr if held is not None and held.kind in ("metric", "collection") else None  # type: ignore[attr-defined]
        if isinstance(node, ast.Subscript):
            base = node.value.attr if _is_self_attr(node.value) else self._ref(node.value, ctx)  # type: ignore[attr-defined]
            held = self._held_ref(base) if base is not None else None
            if held is None or held.kind not in ("collection", "moduledict", "plain", "alias", "list"):
                return None
            key = self._string(node.slice, ctx)
            if key is not None and (key in held.members or not held.members):
                return f"{base}[{key!r}]"
            return f"{base}[*]"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "self"
        ):
            name = self._string(node.args[1], ctx)
            held = self.attrs.get(name) if name is not None else None
            if name is None and self.a.dynamic:
                return "<dynamic>"  # `getattr(self, name)` over metrics set with `setattr`
            return name if held is not None and held.kind in ("metric", "collection") else None
        return None

    def _string(self, node: ast.AST | None, ctx: Context) -> str | None:
        """The text of a string expression where it resolves (constants, bound names, f-strings, ``+``)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            return found if isinstance(found, str) else None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                elif isinstance(value, ast.FormattedValue):
                    text = self._string(value.value, ctx)
                    if text is None:
                        return None
                    parts.append(text)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._string(node.left, ctx), self._string(node.right, ctx)
            return left + right if left is not None and right is not None else None
        return None


def _held_of(attrs: dict[str, Held], ref: str) -> Held | None:
    base, _, key = ref.partition("[")
    held = attrs.get(base)
    if held is not None and key and held.members:
        return held.members.get(key.rstrip("]").strip("'\""))
    return held


def _reset_attributes(cls: ast.ClassDef) -> set[str]:
    """Every ``self.X`` (or ``self.X[...]``) of the class with a ``reset()`` call anywhere in it."""
    found = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reset":
            target = node.func.value
            while isinstance(target, ast.Subscript):
                target = target.value
            if _is_self_attr(target):
                found.add(target.attr)  # type: ignore[attr-defined]
    return found


def _claimed_stage(ref: str) -> str | None:
    """The one stage an attribute's name claims (``train_acc``: train), if any."""
    words = set(ref.split("[")[0].lower().replace("-", "_").split("_"))
    claimed = {
        stage
        for stage, names in (
            ("train", {"train", "training"}),
            ("val", {"val", "valid", "validation"}),
            ("test", {"test"}),
        )
        if words & names
    }
    return claimed.pop() if len(claimed) == 1 else None


METRIC_KEY = Value("key", "metric name", True)
"""What a loop over a metric container's keys binds: the key of a metric (``for name in self.metrics``)."""


def _tuple(*values: Value | None) -> Value:
    return Value("tuple", "tuple", True, elements=tuple(values))


def _element_of(value: Value) -> Value | None:
    """One element of a container of values."""
    if value.kind not in ("batch-dict", "compute-dict"):
        return value if value.kind == "object" else None
    inner = next((item for item in (value.items or {}).values() if item is not None), None)
    if inner is not None:
        return inner
    inner = next((item for item in value.elements or () if item is not None), None)
    if inner is not None:
        return inner
    return Value(value.kind.removesuffix("-dict"), value.what, value.additive, value.ref, value.node)


def _container(
    values: list[Value | None],
    node: ast.AST,
    items: dict[str, Value] | None = None,
    elements: tuple[Value | None, ...] | None = None,
) -> Value | None:
    """A list, tuple or dict holding per-batch or computed metric values (``None`` when it holds none)."""
    found = [value for value in values if value is not None]
    batch = [value for value in found if value.kind in ("batch", "batch-dict")]
    computed = [value for value in found if value.kind in ("compute", "compute-dict")]
    chosen = batch or computed
    if not chosen:
        if elements is not None and found:
            return Value("tuple", "tuple", True, None, node, elements=elements)
        return None
    kind = "batch-dict" if batch else "compute-dict"
    what = ", ".join(dict.fromkeys(value.what for value in chosen))
    additive = all(value.additive for value in chosen)
    ref = chosen[0].ref if len({value.ref for value in chosen}) == 1 else None
    return Value(kind, what, additive, ref, node, items=items or None, elements=elements)


def _merge(values: list[Value]) -> Value | None:
    """What a function returns over all its ``return`` statements."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    interesting = [value for value in values if value.kind != "tuple"] or values
    first = interesting[0]
    items: dict[str, Value] = {}
    for value in interesting:
        items.update(value.items or {})
    if items and first.kind.endswith("-dict"):
        return Value(first.kind, first.what, first.additive, first.ref, first.node, items, first.elements)
    return first


_METRIC_WORDS = {
    "f1",
    "fbeta",
    "auroc",
    "auc",
    "roc",
    "accuracy",
    "acc",
    "precision",
    "recall",
    "iou",
    "jaccard",
    "dice",
    "mcc",
    "kappa",
    "r2",
    "pearson",
    "spearman",
    "rmse",
    "mae",
    "mse",
    "mape",
    "bleu",
    "rouge",
    "map",
    "ap",
}


def _names_metrics(argument: ast.arg) -> bool:
    """A constructor parameter whose name says it holds metric objects (``metrics``, ``val_metric``)."""
    if "metric" not in argument.arg.lower() or argument.arg.lower().startswith(("log_", "monitor")):
        return False
    if argument.annotation is None:
        return True
    text = ast.dump(argument.annotation)
    return not any(word in text for word in ("'str'", "'bool'", "'int'", "'float'", "DictConfig", "Literal"))


def _names_a_metric(name: str) -> bool:
    """Whether a function's name says it computes a metric (``calc_f1``, ``compute_accuracy``), not a loss."""
    words = [word for word in name.lower().replace("-", "_").split("_") if word]
    return bool(words) and "loss" not in words and any(word in _METRIC_WORDS for word in words)


def _outputs_parameter(method: ast.FunctionDef | ast.AsyncFunctionDef | None) -> str | None:
    """The name of a pre-2.0 epoch-end hook's ``outputs`` parameter."""
    if method is None:
        return None
    params = [arg.arg for arg in method.args.args]
    return params[1] if len(params) >= 2 and params[0] == "self" else None


# ---------------------------------------------------------------------- small helpers


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement of ``body`` in order, the bodies of ``if``/``for``/``with``/``try`` included."""
    for statement in body:
        yield statement
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(statement, name, None)
            if isinstance(inner, list) and not isinstance(statement, (ast.FunctionDef, ast.ClassDef, ast.Lambda)):
                yield from _statements(inner)
        for handler in getattr(statement, "handlers", []):
            yield from _statements(handler.body)


def _calls(statement: ast.stmt) -> list[ast.Call]:
    """The calls of one statement, not those inside nested statement bodies, outermost first."""
    if isinstance(statement, (ast.If, ast.While)):
        roots: list[ast.AST] = [statement.test]
    elif isinstance(statement, ast.For):
        roots = [statement.iter]
    elif isinstance(statement, ast.With):
        roots = [item.context_expr for item in statement.items]
    elif isinstance(statement, (ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        roots = []
    else:
        roots = [statement]
    return [node for root in roots for node in ast.walk(root) if isinstance(node, ast.Call)]


def _chain(node: ast.AST) -> list[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return []


def _is_self_attr(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _looks_like_function(full: str) -> bool:
    module, name = full.rsplit(".", 1)
    return "functional" in module or module.startswith("sklearn.metrics") or "_" in name


def _module_options(tree: ast.Module) -> dict[str, dict[str, ast.expr]]:
    """Names bound once at a module's top level to constant ``self.log`` options (``LOG = dict(on_epoch=True)``)."""
    bound: dict[str, list[ast.expr]] = {}
    for statement in tree.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets = [statement.target]
        value = statement.value if isinstance(statement, (ast.Assign, ast.AnnAssign)) else None
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                bound.setdefault(target.id, []).append(value)
    options = {}
    for name, values in bound.items():
        if len(values) == 1 and (found := _options(values[0])) is not None:
            options[name] = found
    return options


def _constant_keywords(call: ast.Call) -> dict[str, str | None]:
    return {
        keyword.arg: (keyword.value.value if isinstance(keyword.value.value, str) else None)
        for keyword in call.keywords
        if keyword.arg and isinstance(keyword.value, ast.Constant)
    }


def _options(node: ast.AST) -> dict[str, ast.expr] | None:
    """The options of a dict literal or ``dict(...)`` call with constant keys (``**options`` of a log call)."""
    if (
        isinstance(node, ast.Dict)
        and node.keys
        and all(isinstance(key, ast.Constant) and isinstance(key.value, str) for key in node.keys)
    ):
        return {key.value: value for key, value in zip(node.keys, node.values, strict=True)}  # type: ignore[union-attr]
    is_dict_call = isinstance(node, ast.Call) and _is_name(node.func, "dict") and not node.args and node.keywords
    if is_dict_call and all(keyword.arg for keyword in node.keywords):  # type: ignore[attr-defined]
        return {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}  # type: ignore[attr-defined]
    return None


def _flag(node: ast.AST | None, default: bool) -> bool | None:
    if node is None:
        return default
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None  # decided at run time: never guessed


def _moves_to_cuda(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "cuda":
        return True
    if func.attr != "to" or not call.args:
        return False
    target = call.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value.startswith("cuda")
    if isinstance(target, ast.Call) and _chain(target.func)[-1:] == ["device"] and target.args:
        first = target.args[0]
        return isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("cuda")
    return False


def _sums_over_len(function: ast.AST) -> set[int]:
    """The ``sum(...)`` calls that a function divides by a ``len(...)``: a mean taken by hand."""
    return {
        id(node.left)
        for node in ast.walk(function)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.left, ast.Call)
        and _is_name(node.left.func, "sum")
        and isinstance(node.right, ast.Call)
        and _is_name(node.right.func, "len")
    }


def _is_mean(call: ast.Call) -> bool:
    # `x.mean()`, `torch.mean(x)`, `np.mean(x)`, `statistics.mean(x)`
    if isinstance(call.func, ast.Attribute) and call.func.attr == "mean":
        return True
    return _chain(call.func)[-1:] == ["mean"]


def _describe(held: Held) -> str:
    average = held.keywords.get("average")
    if average is not None:
        return f"{held.name}(average={average!r})"
    return f"{held.name} (macro by default)" if held.name.startswith(("Multiclass", "Multilabel")) else held.name


def _running_mean_message(
    label: str, value: Value, hook: str, default: str, notes: str, *, per_batch: bool = False
) -> str:
    what = COMPUTE_IN_STEP.say("what-per-batch" if per_batch else "what-running")
    obj = _object_text(value)
    return COMPUTE_IN_STEP.say(
        label=label, obj=obj, hook=hook, default=default, what=what, metric=value.what, notes=notes
    )


def _batch_mean_message(label: str, value: Value, default: str, notes: str) -> str:
    rule = BATCH_VALUE_ON_EPOCH
    why = rule.say("why-additive" if value.additive else "why-not-additive")
    what = f"self.{value.ref} ({value.what})" if value.ref else value.what
    log = f"self.log_dict(self.{value.ref})" if value.kind == "batch-dict" else f"self.log(name, self.{value.ref})"
    remedy = rule.say("remedy-object", ref=value.ref, log=log) if value.ref else rule.say("remedy-value")
    return rule.say(label=label, what=what, default=default, metric=value.what, why=why, remedy=remedy, notes=notes)


def _object_text(value: Value) -> str:
    return f"self.{value.ref}" if value.ref else value.what


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name).lstrip("_")


def _expr_text(analysis: FileAnalysis, node: ast.AST | None) -> str:
    text = ast.get_source_segment(analysis.source, node) if node is not None else None
    return text.split("(")[0] if text else "metric"


_COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.While, ast.With, ast.Try)


def _statement_of(tree: ast.AST, node: ast.AST) -> ast.stmt | None:
    for candidate in ast.walk(tree):
        simple = isinstance(candidate, ast.stmt) and not isinstance(candidate, _COMPOUND)
        if simple and any(child is node for child in ast.walk(candidate)):
            return candidate  # type: ignore[return-value]
    return None


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name
