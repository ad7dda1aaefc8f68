"""The README is a front door: short, every link inside the repository resolves, and its example parses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow.sdk import DAG

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Markdown links and images: [text](target) with no scheme, i.e. a path inside the repository.
LOCAL_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_readme_stays_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the detail to docs/"


@pytest.mark.parametrize("path", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_link_inside_the_repository_resolves(path: Path) -> None:
    missing = [
        target for target in LOCAL_LINK.findall(path.read_text()) if not (path.parent / target).exists()
    ]
    assert missing == [], f"{path.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_readme_example_is_a_dag_that_parses(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

    blocks = PYTHON_BLOCK.findall(README.read_text())
    examples = [block for block in blocks if "@dag" in block]
    assert len(examples) == 1, "the README should have exactly one complete example Dag"
    (tmp_path / "readme_example.py").write_text(examples[0])

    bag = DagBag(dag_folder=str(tmp_path))

    assert bag.import_errors == {}
    dag: DAG = bag.dags["nightly_load"]
    task = dag.get_task("run_transform")
    assert isinstance(task, TriggerDagRunOperator)
    assert task.durable is True
