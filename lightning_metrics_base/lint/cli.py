"""The command line of the lint: files and folders in, findings out (text, JSON or GitHub annotations).

Exit status, as ruff users expect: 0 when nothing at or above ``--fail-on`` (default ``warning``) is
found, 1 otherwise (or, with ``--diff``, with changes to show), 2 on a usage error; ``--exit-zero``
always exits 0. Text lines read ``path:line:col: CODE [severity] message``; a notebook's read
``path:cell N:line:col: ...``, the line counted within the cell.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from lightning_metrics_base.lint.analysis import FileAnalysis, Finding
from lightning_metrics_base.lint.notebooks import Cell, notebook_cells
from lightning_metrics_base.lint.project import Project
from lightning_metrics_base.lint.rules import ERROR, INFO, RULES, WARNING

_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"}
_SUFFIXES = (".py", ".pyi", ".ipynb")
_SEVERITIES = (INFO, WARNING, ERROR)


def lint_source(source: str, path: str = "<string>", project: Project | None = None) -> list[Finding]:
    """The findings of one file's text (a file that does not parse gives one ``E999`` finding).

    Examples:
        >>> lint_source("x = (")[0].code
        'E999'
    """
    try:
        return FileAnalysis(path, source, project).findings()
    except RecursionError:
        message = "the code nests deeper than the analysis follows; the file is skipped."
        return [Finding(path, 1, 1, "E999", ERROR, message)]
    except SyntaxError as err:
        return [
            Finding(
                path,
                err.lineno or 1,
                (err.offset or 0) or 1,
                "E999",
                ERROR,
                f"SyntaxError: {err.msg}; the file is skipped.",
            )
        ]


def python_files(paths: Iterable[str | Path]) -> list[Path]:
    """The Python files and notebooks of ``paths`` (files as given; folders searched, hidden and env folders skipped).

    A file named on the command line that is neither Python nor a notebook (``README.md``) is left out.

    Raises:
        FileNotFoundError: a path that does not exist.
    """
    files: list[Path] = []
    for given in map(Path, paths):
        if not given.exists():
            raise FileNotFoundError(f"{given}: no such file or folder")
        if given.is_file():
            if given.suffix in _SUFFIXES:
                files.append(given)
            continue
        for path in sorted(path for path in given.rglob("*") if path.suffix in _SUFFIXES and path.is_file()):
            parts = path.relative_to(given).parts[:-1]
            if not any(part.startswith(".") or part in _SKIPPED_FOLDERS for part in parts):
                files.append(path)
    return files


def lint_file(path: Path, project: Project | None = None) -> list[Finding]:
    """The findings of one ``.py`` file or notebook (a notebook's findings carry their cell)."""
    if path.suffix == ".ipynb":
        try:
            cells = notebook_cells(path.read_text(encoding="utf-8", errors="replace"))
        except ValueError as err:
            return [Finding(str(path), 1, 1, "E999", ERROR, f"{err}; the notebook is skipped.")]
        return _lint_cells(str(path), cells, project)
    return lint_source(_read(path), str(path), project)


def _lint_cells(path: str, cells: list[Cell], project: Project | None) -> list[Finding]:
    """A notebook is linted as one program (cells see each other's names); each finding maps back to its cell."""
    findings: list[Finding] = []
    parsed: list[Cell] = []
    for cell in cells:  # a cell that does not parse gets its own E999, the others are still read
        try:
            compile(cell.source, path, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
        except SyntaxError as err:
            findings.append(
                Finding(
                    path,
                    err.lineno or 1,
                    err.offset or 1,
                    "E999",
                    ERROR,
                    f"SyntaxError: {err.msg}; the cell is skipped.",
                    cell=cell.number,
                )
            )
            continue
        parsed.append(cell)
    program, starts = "", []
    for cell in parsed:
        starts.append((program.count("\n") + 1, cell))
        program += cell.source.rstrip("\n") + "\n\n"
    for finding in lint_source(program, path, project):
        start, cell = max((item for item in starts if item[0] <= finding.line), key=lambda item: item[0])
        findings.append(replace(finding, line=finding.line - start + 1, cell=cell.number, fix=()))
    return sorted(findings, key=lambda f: (f.cell or 0, f.line, f.col, f.code))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while syntax trees pile up (restored after).

    A project's trees are millions of objects that stay alive for the whole run; each automatic
    collection walks all of them and nothing is freed, which took more than half the run time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def lint_paths(paths: Iterable[str | Path]) -> list[Finding]:
    """The findings of every Python file and notebook under ``paths``, with the project-wide model of metrics."""
    files = python_files(paths)
    with _collector_paused():
        project = Project.build(file for file in files if file.suffix != ".ipynb")
        findings: list[Finding] = []
        for path in files:
            findings += lint_file(path, project)
        del project  # its trees are freed here, by reference counts, without a collection over them
    return findings


def apply_fixes(source: str, findings: Iterable[Finding]) -> str:
    r"""``source`` with the edits of every fixable finding applied (edits that overlap another are skipped).

    Examples:
        >>> source = "class M:\\n    def __init__(self):\\n        from torchmetrics import F1Score\\n"
        >>> apply_fixes(source, []) == source
        True
    """
    edits = sorted({edit for finding in findings for edit in finding.fix}, reverse=True)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for text_line in lines:
        offsets.append(offsets[-1] + len(text_line.encode("utf-8")))
    data = source.encode("utf-8")
    end_of_last = len(data) + 1
    for line_number, col, end_line, end_col, text in edits:
        start, stop = offsets[line_number - 1] + col, offsets[end_line - 1] + end_col
        if stop > end_of_last:
            continue  # overlaps an edit already made
        data = data[:start] + text.encode("utf-8") + data[stop:]
        end_of_last = start
    return data.decode("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the lint as a command; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="lightning-metrics-lint",
        description="Find the traps of logging torchmetrics from LightningModules and Callbacks.",
    )
    parser.add_argument("paths", nargs="+", help="files or folders to check (.py and .ipynb)")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument("--select", default="", help="only these codes or prefixes, comma-separated (LM101,LM2)")
    parser.add_argument("--ignore", default="", help="leave out these codes or prefixes, comma-separated")
    parser.add_argument("--fix", action="store_true", help="rewrite the shapes that can be fixed safely")
    parser.add_argument("--diff", action="store_true", help="with or without --fix: show the fixes, write nothing")
    parser.add_argument(
        "--fail-on",
        choices=_SEVERITIES,
        default=WARNING,
        help="the lowest severity that makes the exit status 1 (default: warning)",
    )
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings are reported")
    args = parser.parse_args(argv)
    select, ignore = _codes(parser, args.select), _codes(parser, args.ignore)
    try:
        files = python_files(args.paths)
    except FileNotFoundError as err:
        parser.error(str(err))
    if not files:
        print(f"No Python files or notebooks found in {', '.join(args.paths)}.", file=sys.stderr)
        return 0

    def chosen(finding: Finding) -> bool:
        return _chosen(finding.code, select, ignore)

    with _collector_paused():
        project = Project.build(file for file in files if file.suffix != ".ipynb")
        if args.diff or args.fix:
            changed = _fix(files, chosen, project, write=not args.diff)
            if args.diff:
                return 0 if args.exit_zero or not changed else 1
            project = Project.build(file for file in files if file.suffix != ".ipynb")  # the fixed files
        findings = [finding for path in files for finding in lint_file(path, project) if chosen(finding)]
        del project  # its trees are freed here, by reference counts, without a collection over them
    _report(findings, args.format)
    threshold = _SEVERITIES.index(args.fail_on)
    failing = any(_SEVERITIES.index(finding.severity) >= threshold for finding in findings)
    return 1 if failing and not args.exit_zero else 0


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _codes(parser: argparse.ArgumentParser, given: str) -> list[str]:
    codes = [code.strip().upper() for code in given.split(",") if code.strip()]
    for code in codes:
        if code != "ALL" and not any(known.startswith(code) for known in [*RULES, "E999"]):
            parser.error(f"unknown rule code or prefix {code!r}; the codes are {', '.join(RULES)}")
    return codes


def _chosen(code: str, select: list[str], ignore: list[str]) -> bool:
    selected = not select or any(code.startswith(prefix) or prefix == "ALL" for prefix in select)
    return selected and not any(code.startswith(prefix) for prefix in ignore)


def _fix(files: list[Path], chosen: Callable[[Finding], bool], project: Project, write: bool) -> int:
    changed = 0
    for path in files:
        if path.suffix == ".ipynb":
            if any(finding.fix or finding.code.startswith("LM1") for finding in lint_file(path, project)):
                print(f"{path}: notebooks are not rewritten by --fix; fix their findings by hand", file=sys.stderr)
            continue
        source = _read(path)
        findings = [finding for finding in lint_source(source, str(path), project) if chosen(finding) and finding.fix]
        if not findings:
            continue
        fixed = apply_fixes(source, findings)
        if fixed == source:
            continue
        changed += 1
        if write:
            path.write_text(fixed, encoding="utf-8")
            print(f"{path}: fixed {len(findings)} finding(s)", file=sys.stderr)
        else:
            diff = difflib.unified_diff(
                source.splitlines(keepends=True), fixed.splitlines(keepends=True), str(path), str(path)
            )
            sys.stdout.writelines(diff)
    return changed


def _report(findings: list[Finding], form: str) -> None:
    if form == "json":
        fields = ("path", "line", "col", "code", "severity", "message")
        rows = []
        for finding in findings:
            row = {name: getattr(finding, name) for name in fields}
            if finding.cell is not None:
                row["cell"] = finding.cell
            rows.append(row)
        print(json.dumps(rows, indent=2))
        return
    for finding in findings:
        where = f"cell {finding.cell}:" if finding.cell is not None else ""
        if form == "github":
            level = {"error": "error", "warning": "warning"}.get(finding.severity, "notice")
            message = finding.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            if finding.cell is not None:
                message = f"cell {finding.cell}: {message}"
            print(
                f"::{level} file={finding.path},line={finding.line},col={finding.col},title={finding.code}::{message}"
            )
        else:
            print(
                f"{finding.path}:{where}{finding.line}:{finding.col}: {finding.code} [{finding.severity}] "
                f"{finding.message}"
            )
    if form == "text" and findings:
        fixable = sum(1 for finding in findings if finding.fix)
        more = f" ({fixable} fixable with --fix)" if fixable else ""
        print(f"Found {len(findings)} finding(s){more}.", file=sys.stderr)
