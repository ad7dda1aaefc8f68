"""The provider's layout: folders as floors, no import cycle, no long module, nothing loose at the top.

Every module under ``providers/standard_ext/`` is parsed with :mod:`ast`, so every import of the package
counts: at the top, under ``if TYPE_CHECKING:`` and inside functions alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "standard_ext"
ROOT = Path(__file__).resolve().parents[2] / "providers" / PACKAGE

# The floors, bottom first: a folder may import only itself and the folders before it. The flat top
# level (``__init__``, ``get_provider_info``, ``links``) sits above them all.
FLOORS = ("api", "durable", "wait", "launch", "cancel", "fanout", "triggers", "operators")
TOP = "<top>"
TOP_MODULES = {"__init__", "get_provider_info", "links"}
MAX_LINES = 300


def module_name(path: Path) -> str:
    """The dotted name of a module file (a package's ``__init__`` is named after the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The package's modules that a module imports, wherever in the file the import stands."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # ``from a.b import c`` imports the module ``a.b.c`` when there is one, else a name of ``a.b``.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target == PACKAGE or target.startswith(PACKAGE + "."))
    found.discard(name)
    return found


def floor_of(name: str) -> str:
    """The folder a module belongs to, or the top level."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1] in FLOORS:
        return parts[1]
    if len(parts) == 2 and parts[1] in FLOORS:
        return parts[1]
    return TOP


def rank(floor: str) -> int:
    return len(FLOORS) if floor == TOP else FLOORS.index(floor)


def graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: imports_of(path, name, known) for name, path in modules().items()}


def test_every_folder_imports_only_itself_and_the_folders_below() -> None:
    wrong = [
        f"{name} ({floor_of(name)}) imports {target} ({floor_of(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if rank(floor_of(target)) > rank(floor_of(name))
    ]
    assert not wrong, "imports up the floors " + " > ".join(FLOORS) + " > top level:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    imports = graph()
    cycles: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(imports.get(name, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                cycles.append(" -> ".join(cycle))
            elif target in imports and target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(imports):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


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
