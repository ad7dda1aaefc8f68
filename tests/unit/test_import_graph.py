"""The packages' own modules import each other without a circle, counting imports for type checking too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Each import package and the folder it is built from (hatch maps providers/standard_ext to standard_ext).
PACKAGES = {
    "standard_ext": ROOT / "providers" / "standard_ext",
    "task_sdk_ext": ROOT / "task_sdk_ext",
}

Graph = dict[str, set[str]]


def module_names(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of ``packages``, by its dotted name (a package by the name of its ``__init__``)."""
    modules: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST) -> set[str]:
    """
    Every dotted name ``tree`` imports, wherever the import sits.

    ``ast.walk`` reaches imports under ``if TYPE_CHECKING:`` and inside functions as well as those at the
    top: a circle through any of them still ties the modules together for a reader and a type checker.
    ``from a import b`` yields both ``a`` and ``a.b``, since ``b`` may be a module.
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> Graph:
    """
    The edges from each module to the modules of the same packages it imports.

    Only imports the code writes count: a package ``__init__`` naming its own package (``from pkg import
    x`` inside ``pkg``) is no edge, nor are the parent packages Python initializes on the way.
    """
    graph: Graph = {}
    for name, path in modules.items():
        imported = imported_names(ast.parse(path.read_text(), filename=str(path)))
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """
    Return one circle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it has none.

    A depth-first search: an edge back to a module still on the path closes a circle.
    """
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done and (cycle := visit(target)) is not None:
                return cycle
        on_path.discard(node)
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)) is not None:
            return cycle
    return None


class TestFindCycle:
    def test_no_cycle_in_a_tree(self) -> None:
        assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None

    def test_two_module_circle(self) -> None:
        assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]

    def test_longer_circle_behind_a_clean_start(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}
        assert find_cycle(graph) == ["b", "c", "d", "b"]

    def test_self_import_is_a_circle(self) -> None:
        assert find_cycle({"a": {"a"}}) == ["a", "a"]


class TestImportedNames:
    def test_type_checking_and_function_imports_count(self) -> None:
        source = (
            "from typing import TYPE_CHECKING\n"
            "import pkg.top\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.typed import Thing\n"
            "def f():\n"
            "    from pkg import late\n"
        )
        names = imported_names(ast.parse(source))
        assert {"pkg.top", "pkg.typed", "pkg", "pkg.late"} <= names

    def test_a_circle_through_type_checking_is_found(self, tmp_path: Path) -> None:
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "operator.py").write_text("from pkg.mode import run\n")
        (package / "mode.py").write_text(
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.operator import Op\n"
        )
        graph = import_graph(module_names({"pkg": package}))
        assert find_cycle(graph) == ["pkg.mode", "pkg.operator", "pkg.mode"]


def test_the_packages_have_modules() -> None:
    modules = module_names(PACKAGES)
    assert "standard_ext.operators.trigger_dagrun" in modules
    assert "task_sdk_ext.accessor" in modules


def test_no_import_circle() -> None:
    # Both packages in one graph: a circle may pass through the other package.
    graph = import_graph(module_names(PACKAGES))
    cycle = find_cycle(graph)
    assert cycle is None, "Import circle: " + " -> ".join(cycle or [])
