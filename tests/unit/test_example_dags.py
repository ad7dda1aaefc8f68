"""Every example Dag in ``dags/`` imports cleanly and the documented dag ids are all there."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAG_IDS = {
    "child",
    "parent_durable",
    "parent_stock",
    "chain_a",
    "chain_b",
    "chain_c",
    "fan_out",
    "fan_out_one_task",
    "answer_question",
    "ask_question",
    "ask_question_sync",
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    # Parsing only: DagBag imports the files and builds the Dag objects without a database or scheduler.
    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_expected_dag_ids(dagbag: DagBag) -> None:
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_unpaused_manual_only(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    # The end-to-end tests trigger these Dags right after parsing; a paused or scheduled Dag would stall them.
    assert dag.is_paused_upon_creation is False
    assert dag.timetable.can_be_scheduled is False
