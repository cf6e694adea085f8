"""docs/architecture.md's table of layers is true of the code.

The table lists the layers "top (imported by everything) to bottom (imports everything)";
its "where" column names the files and folders of each layer. Checked here:

* every path the table names exists;
* every Python module under ``electra_tf/`` is placed on the page: by its own path, or by
  the deepest folder named that contains it (a package's ``__init__.py`` is its folder,
  unless the table names the ``__init__.py`` itself); a path named in two rows is an error;
* the order is true: a module imports only modules of its own row or of rows above it.
  Every ``import`` / ``from ... import`` in the file counts, at module level and inside
  functions (a lazy import is a dependency all the same); ``from electra_tf import x`` is
  module ``electra_tf.x`` when x is a module, else the package that defines x. Modules of
  one row may import each other both ways.

How the "where" column is read: every inline-code span holding a ``/`` is a path from the
repository root (``electra_tf/data/`` is a folder, ``electra_tf/loading.py`` a file). A
bare file name (``strategy.py``) is a sibling of the path written before it; inside the
parentheses right after a folder (``electra_tf/data/`` (``corpus.py``, ...)) it is a file
of that folder. Other spans (``FORMATS``) and words are not paths.

Pure Python (``ast``, no TensorFlow); the checks run on any tree, so the tests at the end
show on small made-up trees that each check reports what it must.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = Path("docs") / "architecture.md"
PACKAGE = "electra_tf"
TABLE_HEADING = re.compile(r"^#{1,6}\s+Layers\b")
WHERE_TOKEN = re.compile(r"`([^`]+)`|(\()|(\))")
FILE_NAME = re.compile(r"^[\w.-]+\.py$")


class Row(NamedTuple):
    number: int  # 1 = the top row
    layer: str
    paths: tuple  # repository-relative POSIX paths; folders end with "/"

    def __str__(self):
        return f"row {self.number} '{self.layer}'"


# ---------------------------------------------------------------------------
# Reading the page
# ---------------------------------------------------------------------------

def _cells(line: str) -> list:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def where_paths(cell: str) -> list:
    """The paths a "where" cell names, in order (see the module docstring)."""
    paths, last, depth = [], None, 0
    for match in WHERE_TOKEN.finditer(cell):
        span, opening, closing = match.groups()
        if opening:
            depth += 1
        elif closing:
            depth = max(depth - 1, 0)
        else:
            span = span.strip()
            if "/" in span:
                path = span[2:] if span.startswith("./") else span
                if depth == 0:
                    last = path
            elif FILE_NAME.match(span):
                if last is None:
                    raise ValueError(f"bare file name `{span}` with no path before it in "
                                     f"the cell {cell!r}: write its path")
                folder = (PurePosixPath(last) if depth and last.endswith("/")
                          else PurePosixPath(last).parent)
                path = (folder / span).as_posix()
            else:
                continue
            paths.append(path)
    return paths


def layer_table(markdown: str) -> list:
    """The rows of the first table after the "Layers" heading, top to bottom."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if TABLE_HEADING.match(line)), None)
    if start is None:
        raise AssertionError(f"{PAGE} has no '## Layers ...' heading")
    table = []
    for line in lines[start + 1:]:
        if line.lstrip().startswith("|"):
            table.append(_cells(line))
        elif table or line.startswith("#"):
            break
    if len(table) < 3:
        raise AssertionError(f"no table under the 'Layers' heading of {PAGE}")
    header = [cell.lower() for cell in table[0]]
    if "where" not in header:
        raise AssertionError(f"the layer table of {PAGE} has no 'where' column: {table[0]}")
    layer_col = header.index("layer") if "layer" in header else 0
    where_col = header.index("where")
    return [Row(number, cells[layer_col], tuple(where_paths(cells[where_col])))
            for number, cells in enumerate(table[2:], start=1)]


# ---------------------------------------------------------------------------
# Reading the code
# ---------------------------------------------------------------------------

def python_modules(root: Path) -> dict:
    """``{dotted module name: repository-relative path}`` of every .py file of the package."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = relative.as_posix()
    return modules


def _owner(name: str, modules: dict):
    """The module that defines ``name``: itself, or the nearest package above it."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict) -> list:
    """``[(line, imported module)]`` of the package's modules that ``module`` imports
    anywhere in its file (module level, functions, classes)."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                     else source for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _owner(name, modules)
                if target and target != module:
                    found.append((node.lineno, target))
    return sorted(set(found))


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

def missing_paths(root: Path, rows: list) -> list:
    return [f"{row} names `{path}`, which does not exist" for row in rows
            for path in row.paths if not (root / path).exists()]


def placements(root: Path, rows: list):
    """``({module: row}, problems)``: each module's row by the most specific path naming
    it (its file, else the deepest folder above it; ``__init__.py`` counts as its folder)."""
    named: dict = {}
    for row in rows:
        for path in row.paths:
            named.setdefault(path.rstrip("/"), []).append(row)
    problems = [f"`{path}` is named in {' and '.join(map(str, sorted(set(naming))))}: "
                f"name it in one row" for path, naming in named.items() if len(set(naming)) > 1]
    placed = {}
    for module, path in python_modules(root).items():
        # Its file, then every folder above it (an __init__.py's first is its package).
        candidates = [path] + [folder.as_posix() for folder in PurePosixPath(path).parents
                               if folder.as_posix() != "."]
        candidate = next((c for c in candidates if c in named), None)
        if candidate is None:
            problems.append(f"{path} is not placed: name it (or a folder holding it) in the "
                            f"'where' column of the row whose layer it belongs to")
        else:
            placed[module] = min(named[candidate])
    return placed, sorted(set(problems))


def imports_against_the_order(root: Path, placed: dict) -> list:
    """``"file:lines: A (row r) imports B (row s below it)"`` for every import of a lower row."""
    modules = python_modules(root)
    problems = []
    for module, row in sorted(placed.items(), key=lambda item: modules[item[0]]):
        lines_by_target: dict = {}
        for line, target in imports_of(module, root / modules[module], modules):
            lines_by_target.setdefault(target, []).append(str(line))
        for target, lines in lines_by_target.items():
            target_row = placed.get(target)
            if target_row is not None and target_row.number > row.number:
                problems.append(f"{modules[module]}:{','.join(lines)}: {module} ({row}) "
                                f"imports {target} ({target_row} below it)")
    return problems


def architecture_problems(root: Path) -> list:
    rows = layer_table((root / PAGE).read_text(encoding="utf-8"))
    placed, problems = placements(root, rows)
    return missing_paths(root, rows) + problems + imports_against_the_order(root, placed)


def _report(problems: list) -> str:
    return f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# The repository
# ---------------------------------------------------------------------------

def test_layer_table_names_existing_paths():
    rows = layer_table((REPO / PAGE).read_text(encoding="utf-8"))
    assert len(rows) > 5, f"the layer table of {PAGE} is (almost) empty: is the parse broken?"
    problems = missing_paths(REPO, rows)
    assert not problems, f"fix the 'where' column of {PAGE}: " + _report(problems)


def test_every_module_is_placed_on_the_page():
    rows = layer_table((REPO / PAGE).read_text(encoding="utf-8"))
    _, problems = placements(REPO, rows)
    assert not problems, f"modules missing from the layer table of {PAGE}: " + _report(problems)


def test_modules_import_only_their_row_and_rows_above():
    rows = layer_table((REPO / PAGE).read_text(encoding="utf-8"))
    placed, _ = placements(REPO, rows)
    assert len(placed) > 50, "almost no module is placed: is the parse broken?"
    problems = imports_against_the_order(REPO, placed)
    assert not problems, (
        f"imports that go down the layer table of {PAGE} (top: imported by everything). "
        "Either the import is a layering fault of the code (move the code, or the import), "
        "or the page misorders the rows (move the imported module's row above, or put both "
        "in one row): " + _report(problems))


# ---------------------------------------------------------------------------
# The checks themselves, on made-up trees
# ---------------------------------------------------------------------------

def _tree(root: Path, files: dict) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")
    return root


def _page(*rows: str) -> str:
    return ("# House\n\n## Layers, top to bottom\n\n| layer | concept | where |\n"
            "| --- | --- | --- |\n" + "".join(f"| {row} |\n" for row in rows)
            + "\n## Conventions\n\n| not | this |\n| --- | --- |\n| a | b |\n")


CODE = {
    "electra_tf/__init__.py": '__version__ = "1"\n',
    "electra_tf/base.py": "import os\n",
    "electra_tf/config.py": "from electra_tf import base\n",
    "electra_tf/net/__init__.py": "from electra_tf.net.layers import Layer\n",
    "electra_tf/net/layers.py": "from electra_tf.config import x\nclass Layer: pass\n",
    "electra_tf/net/models.py": "from . import layers\n",
    "electra_tf/names.py": ("from electra_tf import __version__\n"
                            "def f():\n    from electra_tf.net import models\n"),
    "electra_tf/tool.py": "import electra_tf.names\nfrom electra_tf.net import Layer\n",
}


@pytest.mark.parametrize("cell, expected", [
    ("`electra_tf/loading.py`", ["electra_tf/loading.py"]),
    ("`electra_tf/training/runtime.py`, `strategy.py`",
     ["electra_tf/training/runtime.py", "electra_tf/training/strategy.py"]),
    ("`electra_tf/models/`, `detection.py`", ["electra_tf/models/", "electra_tf/detection.py"]),
    ("`electra_tf/data/` (`corpus.py`, the one `FORMATS`), `cli.py`",
     ["electra_tf/data/", "electra_tf/data/corpus.py", "electra_tf/cli.py"]),
    ("top level, `electra_tf/cli.py`", ["electra_tf/cli.py"]),
    ("`electra_tf/config.py`, `configs/`", ["electra_tf/config.py", "configs/"]),
])
def test_where_cells_are_read(cell, expected):
    assert where_paths(cell) == expected


def test_a_bare_name_needs_a_path_before_it():
    with pytest.raises(ValueError, match="no path before it"):
        where_paths("`runtime.py`")


def test_imports_are_resolved_everywhere_in_the_file(tmp_path):
    root = _tree(tmp_path, CODE)
    modules = python_modules(root)
    assert imports_of("electra_tf.names", root / "electra_tf/names.py", modules) == [
        (1, "electra_tf"), (3, "electra_tf.net.models")]
    assert imports_of("electra_tf.tool", root / "electra_tf/tool.py", modules) == [
        (1, "electra_tf.names"), (2, "electra_tf.net")]
    assert imports_of("electra_tf.net.models", root / "electra_tf/net/models.py",
                      modules) == [(1, "electra_tf.net.layers")]


def test_a_true_page_has_no_problem(tmp_path):
    root = _tree(tmp_path, {**CODE, "docs/architecture.md": _page(
        "base | b | `electra_tf/__init__.py`, `base.py`",
        "config | c | `electra_tf/config.py`",
        "networks | n | `electra_tf/net/` (`layers.py`, `models.py`), `names.py`",
        "tools | t | `electra_tf/tool.py`")})
    assert architecture_problems(root) == []


def test_misordered_rows_unplaced_modules_and_missing_paths_are_reported(tmp_path):
    root = _tree(tmp_path, {**CODE, "docs/architecture.md": _page(
        "config | c | `electra_tf/config.py`, `gone.py`",
        "base | b | `electra_tf/__init__.py`, `base.py`",
        "names | x | `electra_tf/names.py`",
        "networks | n | `electra_tf/net/layers.py`, `models.py`",
        "tools | t | `electra_tf/tool.py`, `electra_tf/config.py`")})
    assert architecture_problems(root) == [
        "row 1 'config' names `electra_tf/gone.py`, which does not exist",
        "`electra_tf/config.py` is named in row 1 'config' and row 5 'tools': name it in one "
        "row",
        "electra_tf/net/__init__.py is not placed: name it (or a folder holding it) in the "
        "'where' column of the row whose layer it belongs to",
        "electra_tf/config.py:1: electra_tf.config (row 1 'config') imports electra_tf.base "
        "(row 2 'base' below it)",
        # An import inside a function counts as much as one at the top.
        "electra_tf/names.py:3: electra_tf.names (row 3 'names') imports "
        "electra_tf.net.models (row 4 'networks' below it)",
    ]
