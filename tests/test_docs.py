"""Every Python example in the README and the docs runs (blocks of one page share a namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return PYTHON_BLOCK.findall(page.read_text())


def test_every_page_with_code_is_collected() -> None:
    with_code = {page.name for page in PAGES if python_blocks(page)}
    assert {"README.md", "index.md", "configuring.md", "logging.md", "migrating.md"} <= with_code


@pytest.mark.parametrize("page", [page for page in PAGES if python_blocks(page)], ids=lambda page: page.name)
def test_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples use paths relative to the repository, e.g. docs/examples/
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, block in enumerate(python_blocks(page)):
        code = compile(block, f"{page.name}[block {index}]", "exec")
        exec(code, namespace)


def test_docstring_examples_use_the_section_the_api_reference_renders_as_code() -> None:
    # mkdocstrings (griffe) reads "Examples:" as an examples section; "Example:" becomes an admonition
    # that runs the example together into one quoted paragraph.
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((ROOT / "lightning_metrics_base").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip() == "Example:"
    ]
    assert offenders == []


def test_api_reference_names_exist() -> None:
    import importlib.util

    for target in re.findall(r"^::: (\S+)$", (ROOT / "docs" / "api.md").read_text(), re.MULTILINE):
        module_name, _, attribute = target.rpartition(".")
        module = importlib.import_module(module_name)
        assert hasattr(module, attribute) or importlib.util.find_spec(target) is not None, target


def test_the_constructor_reads_well_in_help_and_the_api_reference() -> None:
    import inspect

    import docstring_parser

    from lightning_metrics_base import MetricAwareModule

    # LightningCLI's `--help` prints these descriptions as they are: no reST markup
    params = docstring_parser.parse(MetricAwareModule.__doc__ or "").params
    assert {param.arg_name for param in params} >= {"metrics", "track_best", "log_figures", "buffer_batches"}
    assert not [param.arg_name for param in params if "``" in (param.description or "")]
    # defaults are values, not names a reader cannot resolve
    defaults = {name: param.default for name, param in inspect.signature(MetricAwareModule).parameters.items()}
    assert defaults["stages"] == ("train", "val", "test") and MetricAwareModule.buffer_bytes == 16 * 2**20
    assert "epoch_metrics:" in (MetricAwareModule.__doc__ or "")
    api = (ROOT / "docs" / "api.md").read_text()
    assert "show_bases: false" in api  # the internal base holding the hook defaults stays out of the page


def test_the_api_reference_documents_exactly_the_exports() -> None:
    import lightning_metrics_base

    documented = re.findall(
        r"^::: lightning_metrics_base\.(\w+)$", (ROOT / "docs" / "api.md").read_text(), re.MULTILINE
    )
    assert sorted(documented) == sorted(lightning_metrics_base.__all__)
    assert len(lightning_metrics_base.__all__) <= 6
