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
DOCS_SITE = "https://airflow-durable-trigger.readthedocs.io/en/latest/"
REPOSITORY = "https://github.com/airflow-durable-trigger/airflow-durable-trigger/blob/main/"
# Markdown links and images: [text](target) with no scheme, i.e. a path inside the repository.
LOCAL_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_readme_stays_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the detail to docs/"


@pytest.mark.parametrize("path", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_link_inside_the_repository_resolves(path: Path) -> None:
    missing = [
        target for target in LOCAL_LINK.findall(path.read_text()) if not (path.parent / target).exists()
    ]
    assert missing == [], f"{path.relative_to(ROOT)} links to files that do not exist: {missing}"


# A test named in the docs as evidence: ``test_x.py``, ``tests/unit/test_x.py`` or ``test_x.py::TestY``.
TEST_REFERENCE = re.compile(r"(test_[a-z0-9_]+\.py)(?:::(\w+))?")


@pytest.mark.parametrize("path", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_test_the_docs_name_exists(path: Path) -> None:
    files = {file.name: file for file in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for name, symbol in TEST_REFERENCE.findall(path.read_text()):
        if name not in files:
            missing.append(name)
        elif symbol and not re.search(rf"^(class|def|async def) {symbol}\b", files[name].read_text(), re.M):
            missing.append(f"{name}::{symbol}")
    assert missing == [], f"{path.relative_to(ROOT)} names tests that do not exist: {missing}"


def test_every_readme_link_to_the_project_resolves() -> None:
    # The README is also the package's page on PyPI, where relative links break: it links to the docs
    # site and the repository by URL, and each URL must name a page or file that exists here.
    links = re.findall(r"\]\((https?://[^)\s]+)\)", README.read_text())
    ours = [link for link in links if link.startswith((DOCS_SITE, REPOSITORY))]
    assert len(ours) >= 10, "the README should link to the docs pages and the repository files"
    missing = [link for link in ours if not local_file(link).exists()]
    assert missing == [], f"README.md links to pages or files that do not exist: {missing}"


def local_file(link: str) -> Path:
    """The file in this checkout that a docs-site or repository URL stands for."""
    if link.startswith(DOCS_SITE):
        page = link.removeprefix(DOCS_SITE).removesuffix(".html") or "index"
        return ROOT / "docs" / f"{page}.md"
    return ROOT / link.removeprefix(REPOSITORY)


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
