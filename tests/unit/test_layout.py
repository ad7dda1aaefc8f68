"""The provider's layout: folders as floors, no import cycle, no long module, nothing loose at the top.

Every module under ``providers/standard_ext/`` is parsed with :mod:`ast` (the graph of
``test_import_graph``), so every import of the package counts: at the top, under ``if TYPE_CHECKING:`` and
inside functions alike. Relative imports, which that graph does not follow, are refused.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.test_import_graph import find_cycle, import_graph, module_names

PACKAGE = "standard_ext"
ROOT = Path(__file__).resolve().parents[2] / "providers" / PACKAGE

# The floors, bottom first: a folder may import only itself and the folders before it. The flat top
# level (``__init__``, ``get_provider_info``, ``links``) sits above them all.
FLOORS = ("api", "durable", "wait", "launch", "cancel", "resume", "fanout", "triggers", "ui", "operators")
TOP = "<top>"
TOP_MODULES = {"__init__", "get_provider_info", "links"}
MAX_LINES = 300


def floor_of(name: str) -> str:
    """The folder a module belongs to, or the top level."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else TOP


def rank(floor: str) -> int:
    """How high a floor stands: the top level above every folder."""
    return len(FLOORS) if floor == TOP else FLOORS.index(floor)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by the name of its ``__init__``)."""
    return module_names({PACKAGE: ROOT})


def graph() -> dict[str, set[str]]:
    """The package's modules each imports, counting imports under ``TYPE_CHECKING`` and in functions."""
    return import_graph(modules())


def test_every_folder_imports_only_itself_and_the_folders_below() -> None:
    wrong = [
        f"{name} ({floor_of(name)}) imports {target} ({floor_of(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if rank(floor_of(target)) > rank(floor_of(name))
    ]
    assert not wrong, "imports up the floors " + " > ".join(FLOORS) + " > top level:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_past_the_line_limit() -> None:
    long = {
        name: count
        for name, path in modules().items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules past {MAX_LINES} lines: " + ", ".join(f"{n} ({c})" for n, c in long.items())


def test_the_top_level_holds_only_the_entry_points() -> None:
    loose = sorted(path.stem for path in ROOT.glob("*.py") if path.stem not in TOP_MODULES)
    stray = sorted(
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and path.name not in FLOORS and path.name != "__pycache__"
    )
    assert not loose, f"modules at the top of {PACKAGE}: {loose} (only {sorted(TOP_MODULES)} belong there)"
    assert not stray, f"folders of {PACKAGE} outside the floors {FLOORS}: {stray}"


def test_no_relative_import() -> None:
    relative = [
        f"{name}:{node.lineno}"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative, f"relative imports (write {PACKAGE}.… in full): {relative}"
