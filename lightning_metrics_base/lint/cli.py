"""The command line of the lint: files and folders in, findings out (text, JSON or GitHub annotations).

Exit status: 0 without findings, 1 with findings (or, with ``--diff``, with changes to show), 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from lightning_metrics_base.lint.analysis import FileAnalysis, Finding
from lightning_metrics_base.lint.rules import ERROR, RULES

_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"}


def lint_source(source: str, path: str = "<string>") -> list[Finding]:
    """The findings of one file's text (a file that does not parse gives one ``E999`` finding).

    Examples:
        >>> lint_source("x = (")[0].code
        'E999'
    """
    try:
        return FileAnalysis(path, source).findings()
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
    """The Python files of ``paths`` (files as given; folders searched, hidden and virtual-env folders skipped).

    Raises:
        FileNotFoundError: a path that does not exist.
    """
    files: list[Path] = []
    for given in map(Path, paths):
        if not given.exists():
            raise FileNotFoundError(f"{given}: no such file or folder")
        if given.is_file():
            files.append(given)
            continue
        for path in sorted(given.rglob("*.py")):
            parts = path.relative_to(given).parts[:-1]
            if not any(part.startswith(".") or part in _SKIPPED_FOLDERS for part in parts):
                files.append(path)
    return files


def lint_paths(paths: Iterable[str | Path]) -> list[Finding]:
    """The findings of every Python file under ``paths``, file by file."""
    findings: list[Finding] = []
    for path in python_files(paths):
        findings += lint_source(path.read_text(encoding="utf-8", errors="replace"), str(path))
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
    parser.add_argument("paths", nargs="+", help="files or folders to check")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument("--select", default="", help="only these codes or prefixes, comma-separated (LM101,LM2)")
    parser.add_argument("--ignore", default="", help="leave out these codes or prefixes, comma-separated")
    parser.add_argument("--fix", action="store_true", help="rewrite the two simplest shapes into the right one")
    parser.add_argument("--diff", action="store_true", help="with or without --fix: show the fixes, write nothing")
    args = parser.parse_args(argv)
    select, ignore = _codes(parser, args.select), _codes(parser, args.ignore)
    try:
        files = python_files(args.paths)
    except FileNotFoundError as err:
        parser.error(str(err))

    def chosen(finding: Finding) -> bool:
        return _chosen(finding.code, select, ignore)

    if args.diff or args.fix:
        changed = _fix(files, chosen, write=not args.diff)
        if args.diff:
            return 1 if changed else 0
    findings = [finding for path in files for finding in lint_source(_read(path), str(path)) if chosen(finding)]
    _report(findings, args.format)
    return 1 if findings else 0


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


def _fix(files: list[Path], chosen: Callable[[Finding], bool], write: bool) -> int:
    changed = 0
    for path in files:
        source = _read(path)
        findings = [finding for finding in lint_source(source, str(path)) if chosen(finding) and finding.fix]
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
        print(json.dumps([{name: getattr(finding, name) for name in fields} for finding in findings], indent=2))
        return
    for finding in findings:
        if form == "github":
            level = {"error": "error", "warning": "warning"}.get(finding.severity, "notice")
            message = finding.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            print(
                f"::{level} file={finding.path},line={finding.line},col={finding.col},title={finding.code}::{message}"
            )
        else:
            print(f"{finding.path}:{finding.line}:{finding.col}: {finding.code} {finding.message}")
    if form == "text" and findings:
        fixable = sum(1 for finding in findings if finding.fix)
        more = f" ({fixable} fixable with --fix)" if fixable else ""
        print(f"Found {len(findings)} finding(s){more}.", file=sys.stderr)
