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

from lightning_metrics_base.lint.rules import (
    BEST_TRACKERS,
    ERROR,
    INFO,
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


@dataclass
class Held:
    """What an attribute or a local name holds: a metric, a collection of metrics, or a container of them."""

    kind: str  # "metric", "collection", "moduledict", "plain"
    name: str  # the class name, e.g. "MulticlassF1Score" or "MetricCollection"
    keywords: dict[str, str | None] = field(default_factory=dict)
    members: dict[str, Held] = field(default_factory=dict)
    node: ast.AST | None = None
    source: int = 0  # identity of the object built: two names holding one object share it


@dataclass(frozen=True)
class Value:
    """What an expression evaluates to, as far as the traps go."""

    kind: str  # "batch" (computed on one batch), "compute", "object", "batch-dict", "compute-dict"
    what: str  # the metric's class or function name
    additive: bool
    ref: str | None = None  # the attribute of the metric object, when there is one
    node: ast.AST | None = None  # the expression that computed it


@dataclass
class Context:
    """Where a function body runs: the hook (its logging defaults), the logging receiver and bound names."""

    hook: str
    defaults: HookDefaults
    receiver: str = "self"  # `pl_module` in a Callback hook
    env: dict[str, Any] = field(default_factory=dict)
    depth: int = 0


@dataclass
class Usage:
    """What a class does with each metric attribute, gathered over all its hooks."""

    stages: dict[str, set[str]] = field(default_factory=dict)
    first_use: dict[tuple[str, str], ast.AST] = field(default_factory=dict)
    reset: set[str] = field(default_factory=set)
    logged_object: dict[str, ast.AST] = field(default_factory=dict)
    logged_compute: dict[str, ast.AST] = field(default_factory=dict)
    computed_at_epoch_end: dict[str, ast.AST] = field(default_factory=dict)
    fed_elsewhere: set[str] = field(default_factory=set)


_LOG_ATTRS = ("log", "log_dict")
_WRAPPERS = ("item", "detach", "cpu", "float", "clone", "mean", "squeeze")


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

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.tree = ast.parse(source, filename=path)
        self.lines = source.splitlines()
        self._findings: dict[tuple[int, int, str], Finding] = {}
        self._classes: dict[str, str] = {}  # alias -> torchmetrics/sklearn origin of a class or function
        self._modules: dict[str, str] = {}  # alias -> "torchmetrics" | "sklearn" | "torch.nn"
        self._sources = 0
        self._current_attrs: dict[str, Held] = {}
        self.monitors = self._monitors()

    # ------------------------------------------------------------------ driver

    def findings(self) -> list[Finding]:
        """Every finding of the file, ordered by position, one per position and code."""
        self._read_imports()
        self._module_scope()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef):
                self._class(node)
        return sorted(self._findings.values(), key=lambda f: (f.line, f.col, f.code))

    def _add(self, node: ast.AST, code: str, severity: str, message: str, fix: tuple[Any, ...] = ()) -> None:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        if self._suppressed(line, code):
            return
        key = (line, col, code)
        if key not in self._findings:
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

    def _read_imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    root = alias.name.split(".")[0]
                    if root in ("torchmetrics", "sklearn"):
                        self._modules[alias.asname or root] = root if alias.asname is None else alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                root = node.module.split(".")[0]
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
        if chain and chain[0] in self._modules:
            module = self._modules[chain[0]]
            full = ".".join([module, *chain[1:]])
            return full.split(".")[0], chain[-1]
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
                members = self._members(node.args[0] if node.args else None, env)
                return Held("collection", name, keywords, members, node, self._sources)
            if name in ("ClasswiseWrapper", "MinMaxMetric", "MultioutputWrapper", "BootStrapper", "Running"):
                inner = self._construction(node.args[0], env) if node.args else None
                if inner is not None and inner.kind == "metric":
                    return Held("metric", inner.name, inner.keywords, {}, node, self._sources)
            return Held("metric", name, keywords, {}, node, self._sources)
        if chain and chain[-1] == "ModuleDict":
            members = self._members(node.args[0] if node.args else None, env)
            if members and all(member.kind in ("metric", "collection") for member in members.values()):
                self._sources += 1
                return Held("moduledict", "ModuleDict", {}, members, node, self._sources)
        if chain and chain[-1] == "clone" and isinstance(node.func, ast.Attribute):
            base = self._held(node.func.value, env) or self._attr_held(node.func.value, self._current_attrs)
            if base is not None and base.kind in ("collection", "metric"):
                return self._copy(base, node)
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

    def _module_scope(self) -> None:
        for statement in self.tree.body:
            self._scope_constructions(statement, "module scope")
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for default in [*node.args.defaults, *node.args.kw_defaults]:
                    held = self._construction(default) if default is not None else None
                    if default is not None and held is not None and held.kind in ("metric", "collection"):
                        self._add(
                            default,
                            "LM206",
                            WARNING,
                            f"{held.name} as a default argument of {node.name}() is built once and shared by every"
                            " call and every module: its state leaks between them. Default to None and construct"
                            " the metric in `__init__`.",
                        )

    def _scope_constructions(self, node: ast.stmt, where: str) -> None:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for held, place in self._constructions_in(node.value):
                self._add(
                    place,
                    "LM206",
                    WARNING,
                    f"{held.name} at {where} is one object shared by every module that uses it: its state leaks"
                    " between modules and runs, and it is not registered with any module. Construct it in"
                    " `__init__`.",
                )

    def _constructions_in(self, node: ast.AST) -> Iterator[tuple[Held, ast.AST]]:
        for child in ast.walk(node):
            held = self._construction(child)
            if held is not None and held.kind in ("metric", "collection") and child is not None:
                yield held, child

    # ------------------------------------------------------------------ one class

    def _class(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            self._scope_constructions(statement, f"class scope of {node.name}")
        methods = {item.name: item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
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
        self._class_rules(node, attrs, usage)

    def _attributes(self, methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]) -> dict[str, Held]:
        """``self.X`` as ``__init__``, ``setup`` and ``configure_*`` assign it (every branch)."""
        attrs: dict[str, Held] = {}
        self._current_attrs = attrs
        for name, method in methods.items():
            if name not in ("__init__", "setup") and not name.startswith("configure_"):
                continue
            env: dict[str, Any] = {}
            for statement in _statements(method.body):
                if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
                    for call in _calls(statement):
                        self._moves(call, attrs)
                    continue
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                held = self._construction(statement.value, env) or self._held(statement.value, env)
                held = held or self._attr_held(statement.value, attrs)
                if held is None and isinstance(statement.value, (ast.Dict, ast.List, ast.Tuple, ast.Call)):
                    held = self._plain(statement.value, env, attrs)
                self._moves_in(statement.value, attrs, env)
                for target in targets:
                    if isinstance(target, ast.Name) and held is not None:
                        env[target.id] = held
                    elif _is_self_attr(target) and held is not None:
                        self._assign_attr(attrs, target.attr, held, statement)  # type: ignore[attr-defined]
        return attrs

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
        fresh = {key: held for key, held in members.items() if held.node is not None and _is_call(held.node)}
        if not members:
            return None
        self._sources += 1
        return Held("plain", "dict", {}, members, node, self._sources) if fresh else None

    def _attr_held(self, node: ast.AST, attrs: dict[str, Held]) -> Held | None:
        if _is_self_attr(node):
            return attrs.get(node.attr)  # type: ignore[attr-defined]
        return None

    def _assign_attr(self, attrs: dict[str, Held], name: str, held: Held, statement: ast.stmt) -> None:
        if held.kind == "plain":
            self._add(
                statement,
                "LM202",
                WARNING,
                f"self.{name} holds Metric objects in a plain {type(held.node).__name__.lower()}: they are not"
                " registered submodules, so they do not move to the module's device, are not seen by DDP and"
                " are left out of the module. Hold them in `nn.ModuleDict` or a `MetricCollection`.",
            )
        for other, existing in attrs.items():
            shared = {member.source for member in held.members.values()} & {
                member.source for member in existing.members.values()
            }
            if (
                other != name
                and held.kind == "collection" == existing.kind
                and shared
                and existing.source != held.source
            ):
                self._add(
                    statement,
                    "LM201",
                    ERROR,
                    f"self.{name} and self.{other} are two MetricCollections built on one dict of metrics: they hold"
                    " the same metric objects, so their stages share one state. Build one collection and give each"
                    " stage a copy: `collection.clone(prefix=...)`.",
                )
            if other != name and existing.source == held.source and held.kind in ("metric", "collection"):
                self._add(
                    statement,
                    "LM201",
                    ERROR,
                    f"self.{name} and self.{other} are one {held.name} object: the stages that use them share"
                    f" one state. Give each its own copy (`{_expr_text(self, held.node)}.clone(prefix=...)`).",
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
                self._add(
                    call,
                    "LM204",
                    WARNING,
                    f"`.{call.func.attr}(...)` on the metric {held.name}: a metric registered on the module (an"
                    " attribute, `nn.ModuleDict` or `MetricCollection`) moves with it to the device Lightning"
                    " chooses; moving it by hand pins it to one device. Remove the call.",
                )

    # ------------------------------------------------------------------ rules over the whole class

    def _class_rules(self, node: ast.ClassDef, attrs: dict[str, Held], usage: Usage) -> None:
        for attr, stages in usage.stages.items():
            held = attrs.get(attr.split("[")[0])
            if len(stages) < 2 or (held is not None and held.name in BEST_TRACKERS):
                continue
            ordered = sorted(stages, key=lambda stage: ("train", "val", "test").index(stage))
            place = usage.first_use[(attr, ordered[1])]
            self._add(
                place,
                "LM201",
                ERROR,
                f"self.{attr} is updated or computed in {' and '.join(ordered)}: the stages share one state, so"
                " each epoch value mixes them (and the sanity check leaks into training). Give each stage its own"
                " copy (`metric.clone()`, or `MetricCollection.clone(prefix=...)`).",
            )
        for attr, place in usage.computed_at_epoch_end.items():
            held = attrs.get(attr.split("[")[0])
            if held is not None and held.name in BEST_TRACKERS:
                continue
            base = attr.split("[")[0]
            if base in usage.reset or attr in usage.reset or attr in usage.logged_object or base in usage.logged_object:
                continue
            if attr in usage.fed_elsewhere:
                continue
            self._add(
                place,
                "LM301",
                WARNING,
                f"self.{attr}.compute() at the epoch end, but self.{base} is never reset nor logged as an object"
                " (Lightning resets logged objects): its state spans every epoch since the start. Call"
                f" `self.{attr}.reset()` after compute, or log the object: `self.log(name, self.{attr})`.",
            )
        for attr, place in usage.logged_compute.items():
            if attr in usage.logged_object:
                self._add(
                    place,
                    "LM302",
                    WARNING,
                    f"self.{attr} is logged as an object and its compute() is logged too: Lightning resets the object"
                    " after its epoch value, so the two disagree. Log it one way: the object.",
                )

    # ------------------------------------------------------------------ monitors

    def _monitors(self) -> set[str]:
        names = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.keyword) and node.arg == "monitor" and isinstance(node.value, ast.Constant):
                names.add(str(node.value.value))
            if isinstance(node, ast.Dict):
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

    def run(self, function: ast.FunctionDef | ast.AsyncFunctionDef, ctx: Context) -> None:
        for statement in _statements(function.body):
            self._statement(statement, ctx)

    # ------------------------------------------------------------------ statements

    def _statement(self, statement: ast.stmt, ctx: Context) -> None:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            value = self._value(statement.value, ctx)
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    ctx.env[target.id] = value if value is not None else self._string(statement.value, ctx)
        if isinstance(statement, ast.Return) and statement.value is not None and ctx.defaults.per_batch:
            self._returned(statement.value, ctx)
        for call in _calls(statement):
            self._call(call, ctx)

    def _returned(self, node: ast.AST, ctx: Context) -> None:
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                found = self._value(value, ctx) if value is not None else None
                if isinstance(key, ast.Constant) and found is not None and found.kind == "batch":
                    self.returned[str(key.value)] = found

    # ------------------------------------------------------------------ calls

    def _call(self, call: ast.Call, ctx: Context) -> None:
        func = call.func
        construction = self.a._construction(call, {})
        if construction is not None and construction.kind in ("metric", "collection") and ctx.defaults.per_batch:
            self.a._add(
                call,
                "LM203",
                WARNING,
                f"{construction.name}(...) is built in {ctx.hook}, once per batch: a fresh metric sees one batch"
                " and is never synced or reset by anyone. Construct it once in `__init__` and update it here.",
            )
        on_receiver = isinstance(func, ast.Attribute) and _is_name(func.value, ctx.receiver)
        if on_receiver and isinstance(func, ast.Attribute) and func.attr in _LOG_ATTRS:
            self._log(call, ctx)
            return
        if isinstance(func, ast.Attribute) and func.attr == "append" and _is_self_attr(func.value) and call.args:
            value = self._value(call.args[0], ctx)
            if value is None and isinstance(call.args[0], ast.Dict):
                for item in call.args[0].values:
                    value = value or self._value(item, ctx)
            if value is not None and value.kind == "batch" and ctx.defaults.per_batch:
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
        stage = ctx.defaults.stage
        if stage is not None:
            self.usage.stages.setdefault(ref, set()).add(stage)
            self.usage.first_use.setdefault((ref, stage), call)
        if method == "compute" and not ctx.defaults.per_batch:
            self.usage.computed_at_epoch_end.setdefault(ref, call)
        self._fed(call, ctx, into_metric=method != "compute")

    def _fed(self, call: ast.Call, ctx: Context, into_metric: bool = False) -> None:
        # a compute() result fed into another metric (a best tracker) is used up there; and `reset()` calls
        for argument in call.args if into_metric else []:
            value = self._value(argument, ctx)
            if value is not None and value.kind == "compute" and value.ref is not None:
                self.usage.fed_elsewhere.add(value.ref)
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "reset":
            ref = self._ref(func.value, ctx)
            if ref is not None:
                self.usage.reset.add(ref)
            elif _is_self_attr(func.value):
                self.usage.reset.add(func.value.attr)  # type: ignore[attr-defined]

    def _helper(self, call: ast.Call, ctx: Context) -> None:
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"):
            return
        method = self.methods.get(func.attr)
        if method is None or hook_defaults(func.attr) is not None or ctx.depth >= 3:
            return
        params = [arg.arg for arg in method.args.args][1:]
        env: dict[str, Any] = {}
        for param, argument in zip(params, call.args, strict=False):
            env[param] = self._string(argument, ctx) or self._value(argument, ctx)
        for keyword in call.keywords:
            if keyword.arg:
                env[keyword.arg] = self._string(keyword.value, ctx) or self._value(keyword.value, ctx)
        self.run(method, Context(ctx.hook, ctx.defaults, ctx.receiver, env, ctx.depth + 1))

    # ------------------------------------------------------------------ self.log

    def _log(self, call: ast.Call, ctx: Context) -> None:
        func = call.func
        assert isinstance(func, ast.Attribute)
        keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
        on_epoch = _flag(keywords.get("on_epoch"), ctx.defaults.on_epoch)
        sync_dist = _flag(keywords.get("sync_dist"), False)
        if func.attr == "log":
            name_node = call.args[0] if call.args else keywords.get("name")
            value_node = call.args[1] if len(call.args) > 1 else keywords.get("value")
            name = self._string(name_node, ctx) if name_node is not None else None
            if value_node is not None:
                self._logged(call, ctx, name, value_node, on_epoch, sync_dist, single=True)
        else:
            values = call.args[0] if call.args else keywords.get("dictionary")
            if isinstance(values, ast.Dict):
                for key, value in zip(values.keys, values.values, strict=True):
                    name = self._string(key, ctx) if key is not None else None
                    self._logged(call, ctx, name, value, on_epoch, sync_dist, single=False, at=value)
            elif values is not None:
                self._logged(call, ctx, None, values, on_epoch, sync_dist, single=True)

    def _logged(
        self,
        call: ast.Call,
        ctx: Context,
        name: str | None,
        node: ast.expr,
        on_epoch: bool | None,
        sync_dist: bool | None,
        *,
        single: bool,
        at: ast.AST | None = None,
    ) -> None:
        value = self._value(node, ctx)
        if value is None:
            return
        label = f"{name}: " if name else ""
        monitored = (
            f" `{name}` is monitored (ModelCheckpoint, EarlyStopping or a scheduler), so it also picks the wrong"
            " checkpoint."
            if name in self.a.monitors
            else ""
        )
        place = at or call
        if value.kind == "object" and value.ref:
            self.usage.logged_object.setdefault(value.ref, call)
            if sync_dist:
                self._sync_dist(place, label, value)
            return
        if value.kind in ("compute", "compute-dict") and value.ref:
            self.usage.logged_compute.setdefault(value.ref, call)
            if sync_dist:
                self._sync_dist(place, label, value)
        if not ctx.defaults.per_batch or (value.kind.startswith("compute") and self._best_tracker(value)):
            return
        if on_epoch is not True:
            if value.kind.startswith("compute") and on_epoch is False:
                self._running_value(place, label, value, ctx)
            return
        default = "" if _given(call, "on_epoch") else f" (the {ctx.hook} default)"
        fix = self._fix(call, node, value, ctx) if single else ()
        if value.kind in ("compute", "compute-dict"):
            self.a._add(place, "LM102", ERROR, _running_mean_message(label, value, ctx.hook, default, monitored), fix)
        else:
            severity = WARNING if value.additive else ERROR
            self.a._add(place, "LM101", severity, _batch_mean_message(label, value, default, monitored), fix)

    def _best_tracker(self, value: Value) -> bool:
        held = self._held_ref(value.ref) if value.ref else None
        return held is not None and held.name in BEST_TRACKERS

    def _running_value(self, place: ast.AST, label: str, value: Value, ctx: Context) -> None:
        # logged per step only: each value is the metric over the batches so far, synced every step under DDP
        self.a._add(
            place,
            "LM102",
            WARNING,
            f"{label}{_object_text(value)}.compute() in {ctx.hook} runs every batch: it logs the metric over the"
            " batches seen so far (and syncs across processes each time). Log the object instead,"
            f" `self.log(name, {_object_text(value)})`, and Lightning computes it once per epoch.",
        )

    def _sync_dist(self, place: ast.AST, label: str, value: Value) -> None:
        self.a._add(
            place,
            "LM303",
            INFO,
            f"{label}sync_dist=True on {_object_text(value)}{'.compute()' if value.kind != 'object' else ''}: Metric"
            " objects sync their state across processes themselves; sync_dist adds a second, useless reduction."
            " Drop it.",
        )

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
        if value.node is node and value.kind in ("compute", "compute-dict"):
            return ((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, obj),)
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
            )
        if isinstance(node, ast.Name) and value.kind in ("batch", "batch-dict"):
            return ((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, obj),)
        return ()

    # ------------------------------------------------------------------ LM103

    def _mean_of_batches(self, call: ast.Call, ctx: Context) -> None:
        if ctx.defaults.per_batch or not _is_mean(call):
            return
        for child in ast.walk(call):
            if _is_self_attr(child) and child.attr in self.appended:  # type: ignore[attr-defined]
                value = self.appended[child.attr]  # type: ignore[attr-defined]
                self._lm103(call, value, f"self.{child.attr}")  # type: ignore[attr-defined]
                return
            if isinstance(child, ast.Subscript) and isinstance(child.slice, ast.Constant):
                key = child.slice.value
                if isinstance(key, str) and key in self.returned:
                    self._lm103(call, self.returned[key], f"the step outputs' {key!r}")
                    return

    def _lm103(self, call: ast.Call, value: Value, source: str) -> None:
        self.a._add(
            call,
            "LM103",
            WARNING if value.additive else ERROR,
            f"the mean of per-batch {value.what} values from {source} is not the {value.what} over the epoch"
            " (batches weigh alike and the metric is "
            + ("additive only on one process" if value.additive else "not an average of batch values")
            + "). Accumulate with a Metric: update it in the step and compute it once at the epoch end.",
        )

    # ------------------------------------------------------------------ values and references

    def _value(self, node: ast.AST | None, ctx: Context) -> Value | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            return found if isinstance(found, Value) else None
        if isinstance(node, ast.Call):
            func = node.func
            getattr_ref = self._ref(node, ctx)
            if getattr_ref is not None:  # `getattr(self, f"{stage}_acc")`
                held = self._held_ref(getattr_ref)
                return Value("object", held.name if held else getattr_ref, True, getattr_ref, node)
            if isinstance(func, ast.Name) and func.id in ("float", "round") and node.args:
                return self._value(node.args[0], ctx)
            if isinstance(func, ast.Attribute) and func.attr in _WRAPPERS and not node.args:
                inner = self._value(func.value, ctx)
                if inner is not None:
                    return inner
            ref = self._ref(func, ctx)
            if ref is not None:
                held = self._held_ref(ref)
                kind = "batch-dict" if held is not None and held.kind == "collection" else "batch"
                return self._metric_value(kind, ref, held, node)
            if isinstance(func, ast.Attribute) and func.attr in ("compute", "forward"):
                ref = self._ref(func.value, ctx)
                if ref is not None:
                    held = self._held_ref(ref)
                    collection = held is not None and held.kind == "collection"
                    kind = ("compute" if func.attr == "compute" else "batch") + ("-dict" if collection else "")
                    return self._metric_value(kind, ref, held, node)
            callee = self.a._callee(func)
            if callee is not None and callee[1][:1].islower():
                keywords = _constant_keywords(node)
                return Value("batch", callee[1], is_additive(callee[1], keywords), None, node)
            return None
        if isinstance(node, ast.Subscript):
            inner = self._value(node.value, ctx)
            if inner is not None and inner.kind in ("batch-dict", "compute-dict"):
                return Value(inner.kind.removesuffix("-dict"), inner.what, inner.additive, inner.ref, inner.node)
        ref = self._ref(node, ctx)
        if ref is not None:
            held = self._held_ref(ref)
            return Value("object", held.name if held else ref, True, ref, node)
        return None

    def _metric_value(self, kind: str, ref: str, held: Held | None, node: ast.AST) -> Value:
        if held is None:
            return Value(kind, ref, True, ref, node)
        if held.kind == "collection":
            additive = all(is_additive(member.name, member.keywords) for member in held.members.values())
            names = ", ".join(sorted({member.name for member in held.members.values()})) or "MetricCollection"
            return Value(kind, names, additive and bool(held.members), ref, node)
        return Value(kind, _describe(held), is_additive(held.name, held.keywords), ref, node)

    def _held_ref(self, ref: str) -> Held | None:
        base, _, key = ref.partition("[")
        held = self.attrs.get(base)
        if held is not None and key:
            return held.members.get(key.rstrip("]").strip("'\""))
        return held

    def _ref(self, node: ast.AST, ctx: Context) -> str | None:
        """The metric attribute ``node`` names (``"f1"``, ``"metrics['val']"``), or ``None``."""
        if isinstance(node, ast.Name):
            found = ctx.env.get(node.id)
            return found.ref if isinstance(found, Value) and found.kind == "object" else None
        if _is_self_attr(node):
            held = self.attrs.get(node.attr)  # type: ignore[attr-defined]
            return node.attr if held is not None and held.kind in ("metric", "collection") else None  # type: ignore[attr-defined]
        if isinstance(node, ast.Subscript) and _is_self_attr(node.value):
            held = self.attrs.get(node.value.attr)  # type: ignore[attr-defined]
            key = self._string(node.slice, ctx)
            if held is not None and key is not None and key in held.members:
                return f"{node.value.attr}[{key!r}]"  # type: ignore[attr-defined]
            return None
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


def _is_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call)


def _looks_like_function(full: str) -> bool:
    module, name = full.rsplit(".", 1)
    return "functional" in module or module.startswith("sklearn.metrics") or "_" in name


def _constant_keywords(call: ast.Call) -> dict[str, str | None]:
    return {
        keyword.arg: (keyword.value.value if isinstance(keyword.value.value, str) else None)
        for keyword in call.keywords
        if keyword.arg and isinstance(keyword.value, ast.Constant)
    }


def _flag(node: ast.AST | None, default: bool) -> bool | None:
    if node is None:
        return default
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None  # decided at run time: never guessed


def _given(call: ast.Call, name: str) -> bool:
    return any(keyword.arg == name for keyword in call.keywords)


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


def _running_mean_message(label: str, value: Value, hook: str, default: str, monitored: str) -> str:
    return (
        f"{label}{_object_text(value)}.compute() is logged from {hook} with on_epoch=True{default}: every step"
        " logs the metric over the batches seen so far and Lightning averages those running values, which is"
        f" not the {value.what} over the epoch. Pass the Metric object to self.log"
        f" (`self.log(..., {_object_text(value)})`) and Lightning computes it once per epoch.{monitored}"
    )


def _batch_mean_message(label: str, value: Value, default: str, monitored: str) -> str:
    why = (
        "additive, so the mean is right on one process with equal batches, but wrong under DDP or uneven batches"
        if value.additive
        else "not an average of batch values"
    )
    what = f"self.{value.ref} ({value.what})" if value.ref else value.what
    log = "self.log_dict(self.{0})" if value.kind == "batch-dict" else "self.log(name, self.{0})"
    remedy = (
        f"Update the metric in the step and log the Metric object: `self.{value.ref}(preds, target)` then"
        f" `{log.format(value.ref)}`."
        if value.ref
        else "Keep a torchmetrics metric for it, update it in the step and log the Metric object."
    )
    return (
        f"{label}{what} is computed per batch and logged with on_epoch=True{default}: Lightning logs the mean of"
        f" the batch values, and {value.what} is {why}. {remedy}{monitored}"
    )


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
