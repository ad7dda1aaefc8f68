"""The example Dags in ``dags/``: they import cleanly, are named and documented as examples, and their
``[START ...]``/``[END ...]`` markers are the ones the docs include."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"
DAG_FILES = sorted(DAGS_FOLDER.glob("*.py"))
# The docs name these ids (docs/examples.md); users' Dags must not collide with them, hence the prefix.
EXPECTED_DAG_IDS = {
    "example_child",
    "example_parent_durable",
    "example_parent_stock",
    "example_chain_a",
    "example_chain_b",
    "example_chain_c",
    "example_fan_out_mapped",
    "example_fan_out",
    "example_answer_question",
    "example_ask_question",
    "example_ask_question_sync",
}
MARKER = re.compile(r"#\s*\[(START|END) (\w+)\]")
# A docs include of an example: ```{literalinclude} ../dags/<file>.py with :start-after: "[START <name>]".
DOCS_INCLUDE = re.compile(
    r"literalinclude\}\s*\.\./dags/(?P<file>\w+\.py)\s*\n(?:\s*:[\w-]+:.*\n)*?\s*:start-after:\s*\"?"
    r"\[START (?P<name>\w+)\]"
)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    # Parsing only: DagBag imports the files and builds the Dag objects without a database or scheduler.
    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)


def markers(path: Path) -> list[tuple[str, str]]:
    """The ``(START|END, name)`` markers of ``path``, in file order."""
    return [(match[1], match[2]) for match in MARKER.finditer(path.read_text())]


class TestParsing:
    def test_no_import_errors(self, dagbag: DagBag) -> None:
        assert dagbag.import_errors == {}

    def test_every_file_defines_dags(self, dagbag: DagBag) -> None:
        files_with_dags = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
        assert files_with_dags == {path.name for path in DAG_FILES}

    def test_expected_dag_ids(self, dagbag: DagBag) -> None:
        assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS

    @pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
    def test_unpaused_manual_only(self, dagbag: DagBag, dag_id: str) -> None:
        dag = dagbag.dags[dag_id]
        # The end-to-end tests trigger these Dags right after parsing; a paused or scheduled Dag would stall them.
        assert dag.is_paused_upon_creation is False
        assert dag.timetable.can_be_scheduled is False


class TestNaming:
    def test_dag_ids_start_with_example(self, dagbag: DagBag) -> None:
        assert [dag_id for dag_id in dagbag.dag_ids if not dag_id.startswith("example_")] == []

    @pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
    def test_file_names_start_with_example(self, path: Path) -> None:
        assert path.name.startswith("example_")


class TestDocs:
    @pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
    def test_module_docstring_names_its_dags(self, dagbag: DagBag, path: Path) -> None:
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring, f"{path.name} has no module docstring"
        ids = [dag.dag_id for dag in dagbag.dags.values() if Path(dag.fileloc) == path]
        # The chain's docstring names all its links; the request/response one names the Dags a reader starts.
        assert any(dag_id in docstring for dag_id in ids), f"{path.name}'s docstring names none of {ids}"

    @pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
    def test_dag_has_doc_md(self, dagbag: DagBag, dag_id: str) -> None:
        # Shown on the Dag's page in the UI: someone who finds the example there learns what it shows.
        assert (dagbag.dags[dag_id].doc_md or "").strip()


class TestMarkers:
    @pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
    def test_every_start_has_an_end_after_it(self, path: Path) -> None:
        open_markers: list[str] = []
        for kind, name in markers(path):
            if kind == "START":
                assert name not in open_markers, f"{path.name}: [START {name}] twice before its END"
                open_markers.append(name)
            else:
                assert name in open_markers, f"{path.name}: [END {name}] without a [START {name}] before it"
                open_markers.remove(name)
        assert open_markers == [], f"{path.name}: no [END ...] for {open_markers}"

    def test_marker_names_are_unique_across_files(self) -> None:
        starts = Counter(name for path in DAG_FILES for kind, name in markers(path) if kind == "START")
        assert [name for name, count in starts.items() if count > 1] == []

    def test_marker_names_are_howtos(self) -> None:
        names = {name for path in DAG_FILES for _, name in markers(path)}
        assert names, "no markers in dags/"
        assert [name for name in names if not name.startswith("howto_")] == []

    def test_docs_include_only_markers_that_exist(self) -> None:
        doc_files = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
        texts = {doc.name: doc.read_text() for doc in doc_files if doc.exists()}
        includes = [
            (doc, match["file"], match["name"])
            for doc, text in texts.items()
            for match in DOCS_INCLUDE.finditer(text)
        ]
        # Every include of an example was read: one the pattern missed would go unchecked.
        assert len(includes) == sum(text.count("literalinclude} ../dags/") for text in texts.values())
        missing = [
            (doc, file, name)
            for doc, file, name in includes
            if not (DAGS_FOLDER / file).exists() or ("START", name) not in markers(DAGS_FOLDER / file)
        ]
        assert missing == []
