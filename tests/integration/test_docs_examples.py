"""
The complete Dag examples of the README and the docs run as written, under ``dag.test()``.

A block counts as complete when it defines and creates a Dag and uses the package (``tests.doc_blocks``);
every block, complete or not, is parsed by ``tests/unit/test_docs_blocks.py``. The children the examples
trigger exist under their ids (``dags/docs_children.py``), and a ``ChildFinisher`` plays the scheduler for
each, with a result for every task the example asks a result of.
"""

from __future__ import annotations

import ast
import re
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk import DAG

from tests.doc_blocks import Block, python_blocks
from tests.integration import db
from tests.integration.conftest import INTEGRATION_DIR
from tests.integration.names import DOCS_CHILDREN
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.integration.conftest import RunDag

# dag.test() runs only a Dag its bundle holds: each example is a Dag file of the test Dags' folder while
# its test runs (.gitignore keeps one a killed test left out of the repository).
DAGS_FOLDER = INTEGRATION_DIR / "dags"

COMPLETE = [block for block in python_blocks() if block.complete]


@contextmanager
def as_dag_file(block: Block) -> Iterator[Path]:
    """Write the block as a Dag file of the test Dags' folder for as long as the context lasts."""
    # One left by a test the timeout ended (it exits the process: no finally runs) goes first.
    for stale in DAGS_FOLDER.glob("docs_example_*.py"):
        stale.unlink()
    stem = re.sub(r"\W", "_", block.path.stem)
    path = DAGS_FOLDER / f"docs_example_{stem}_{block.line}.py"
    path.write_text(block.code)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def created_dags(path: Path) -> list[DAG]:
    """Run a Dag file; return the Dags it creates (what a bare ``@dag`` function call returns kept)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    # `fan_in()` at the end of a Dag file creates the Dag and drops it: keep what each bare call returns.
    tree.body = [
        ast.copy_location(
            ast.Assign(targets=[ast.Name(id=f"_created_{i}", ctx=ast.Store())], value=stmt.value), stmt
        )
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
        else stmt
        for i, stmt in enumerate(tree.body)
    ]
    namespace: dict[str, Any] = {"__name__": path.stem, "__file__": str(path)}
    exec(compile(ast.fix_missing_locations(tree), str(path), "exec"), namespace)  # noqa: S102
    return [value for value in namespace.values() if isinstance(value, DAG)]


def test_the_readme_and_the_guides_have_complete_examples() -> None:
    assert {block.path.name for block in COMPLETE} >= {"README.md", "fan-out.md", "accessor.md"}


# A scheduled run has a logical date; one triggered by hand in Airflow 3 may have none, and then no ds.
@pytest.mark.parametrize("test_kwargs", [{}, {"logical_date": None}], ids=["with_logical_date", "without"])
@pytest.mark.parametrize("block", COMPLETE, ids=[block.name for block in COMPLETE])
def test_a_complete_example_runs_as_written(
    run_dag: RunDag, block: Block, test_kwargs: dict[str, Any]
) -> None:
    with as_dag_file(block) as path, ExitStack() as finishers:
        (dag,) = created_dags(path)
        children = {task.trigger_dag_id for task in dag.tasks if hasattr(task, "trigger_dag_id")}
        for child in sorted(children):
            returns = {task_id: f"{task_id} of {child}" for task_id in DOCS_CHILDREN.get(child, ())}
            finishers.enter_context(ChildFinisher(child, after=1.0, returns=returns))
        result = run_dag(dag, **test_kwargs)

    states = {task.task_id: db.task_outcome(dag.dag_id, task.task_id).state for task in dag.tasks}
    assert set(states.values()) == {"success"}, result.log[-3000:]
    for child in children:
        assert db.runs_of(child), f"{block.name} triggered no run of {child!r}"
