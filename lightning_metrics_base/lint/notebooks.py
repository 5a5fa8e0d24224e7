"""Jupyter notebooks for the lint: their code cells as Python, IPython magics and shell lines blanked.

Only the standard library (``json``): a notebook is read as its JSON, never run or imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Cell magics whose body is still Python (`%%time` times the cell, `%%capture` captures its output).
_PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun", "debug", "autoreload")


@dataclass(frozen=True)
class Cell:
    """One code cell: its number as ruff counts them (code cells from 1) and its source, magics blanked."""

    number: int
    source: str


def notebook_cells(text: str) -> list[Cell]:
    r"""The code cells of a notebook's JSON text, with IPython-only lines made harmless.

    A magic (``%matplotlib inline``), a shell line (``!pip install x``, ``files = !ls``) or a help
    query (``obj?``) becomes ``pass`` at its indentation, so line numbers and blocks are kept.

    Raises:
        ValueError: the text is not a notebook (not JSON, or no ``cells`` list).

    Examples:
        >>> cells = notebook_cells(json.dumps({"cells": [
        ...     {"cell_type": "markdown", "source": ["# Title"]},
        ...     {"cell_type": "code", "source": ["%matplotlib inline\n", "import torch"]},
        ... ]}))
        >>> [(cell.number, cell.source) for cell in cells]
        [(1, 'pass\nimport torch')]
    """
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a notebook: {err.msg} at line {err.lineno}") from err
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a notebook: no list of cells")
    found = []
    number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        text_of_cell = "".join(source) if isinstance(source, list) else str(source)
        found.append(Cell(number, _blank_magics(text_of_cell)))
    return found


def _blank_magics(source: str) -> str:
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split()[0] if lines[0].lstrip()[2:].split() else ""
        if magic not in _PYTHON_CELL_MAGICS:
            return "\n".join("" for _ in lines)  # `%%bash`, `%%writefile`: not Python
        lines[0] = ""
    return "\n".join(_blank_line(line) for line in lines)


def _blank_line(line: str) -> str:
    stripped = line.strip()
    indent = line[: len(line) - len(line.lstrip())]
    magic = stripped.startswith(("%", "!")) or (stripped.endswith("?") and not stripped.startswith("#"))
    shell_assignment = "=" in stripped and stripped.split("=", 1)[1].lstrip().startswith(("!", "%"))
    if magic or shell_assignment:
        return f"{indent}pass"
    return line
