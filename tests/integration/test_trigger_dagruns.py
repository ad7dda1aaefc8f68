"""``TriggerDagRunsOperator`` through Airflow's real task runner and execution API, with ``dag.test()``."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import event, select

from tests.integration import db
from tests.integration.dags.fan_outs import (
    CHUNKS,
    ITEMS,
    TASK_ID,
    fan_out_deferrable,
    fan_out_from_mapped_task,
    fan_out_mapped,
    fan_out_sync,
)
from tests.integration.names import CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import DAG

    from tests.integration.conftest import RunDag


def return_values(dag_id: str) -> dict[int, object]:
    """The fan-out task's return value per map index (-1 when not mapped)."""
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.task_id == TASK_ID, XComModel.key == "return_value"
            )
        ).all()
        return {row.map_index: XComModel.deserialize_value(row) for row in rows}


@pytest.mark.parametrize("dag", [fan_out_sync, fan_out_deferrable], ids=["sync", "deferrable"])
def test_triggers_one_run_per_item_and_returns_their_ids_in_item_order(run_dag: RunDag, dag: DAG) -> None:
    with ChildFinisher(CHILD, after=0.5) as finisher:
        result = run_dag(dag)

    children = db.runs_of(CHILD)
    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert len(children) == len(ITEMS)
    assert sorted(state for _, state in finisher.finished) == [DagRunState.SUCCESS] * len(ITEMS)
    by_id = {child.run_id: child.conf for child in children}
    # Each child has a logical date of its own, as under mapped stock: its {{ ds }} renders.
    dates = [child.logical_date for child in children]
    assert None not in dates
    assert len(set(dates)) == len(ITEMS)
    returned = return_values(dag.dag_id)[-1]
    assert isinstance(returned, list)
    assert [by_id[run_id] for run_id in returned] == ITEMS
    assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_ids") == returned
    assert db.xcom(dag.dag_id, TASK_ID, "trigger_dag_id") == CHILD
    record = db.task_state(dag.dag_id, TASK_ID, "triggered_dag_runs")
    assert record["run_ids"] == returned
    assert record["ended"] == "success"
    assert "Fan-out progress" in result.log


def test_deferrable_defers_while_the_window_is_full_and_resumes(run_dag: RunDag) -> None:
    with ChildFinisher(CHILD, after=0.5):
        result = run_dag(fan_out_deferrable)

    # Four items over a window of two: at least two deferrals, each resumed by dag.test() in line.
    assert result.log.count("Deferring until enough of the fan-out's Dag runs end") >= 2
    assert db.task_outcome(fan_out_deferrable.dag_id, TASK_ID).state == "success"


def test_mapped_over_chunks_each_map_index_fans_out_its_chunk(run_dag: RunDag) -> None:
    with ChildFinisher(CHILD, after=0.5):
        run_dag(fan_out_mapped)

    children = {child.run_id: child.conf for child in db.runs_of(CHILD)}
    assert len(children) == sum(len(chunk) for chunk in CHUNKS)
    values = return_values(fan_out_mapped.dag_id)
    assert sorted(values) == [0, 1]
    for map_index, chunk in enumerate(CHUNKS):
        returned = values[map_index]
        assert isinstance(returned, list)
        assert [children[run_id] for run_id in returned] == chunk


def test_confs_from_a_mapped_task_fan_out_one_run_per_map_index(run_dag: RunDag) -> None:
    with ChildFinisher(CHILD, after=0.5):
        run_dag(fan_out_from_mapped_task)

    assert db.task_outcome(fan_out_from_mapped_task.dag_id, TASK_ID).state == "success"
    children = {child.run_id: child.conf for child in db.runs_of(CHILD)}
    returned = return_values(fan_out_from_mapped_task.dag_id)[-1]
    assert isinstance(returned, list)
    assert [children[run_id] for run_id in returned] == ITEMS


@contextmanager
def children_start_as_created() -> Iterator[None]:
    """Give each child run a start date as it is created: dag.test() runs no scheduler to start it."""

    def start(mapper: Any, connection: Any, run: DagRun) -> None:
        if run.dag_id == CHILD and run.start_date is None:
            run.start_date = datetime.now(UTC)

    event.listen(DagRun, "before_insert", start)
    try:
        yield
    finally:
        event.remove(DagRun, "before_insert", start)


def test_without_history_the_fan_out_learns_the_childs_length_through_the_real_execution_api(
    run_dag: RunDag,
) -> None:
    with children_start_as_created(), ChildFinisher(CHILD, after=0.5):
        result = run_dag(fan_out_sync)

    assert db.task_outcome(fan_out_sync.dag_id, TASK_ID).state == "success"
    # No earlier run of the child: the first wait knows nothing; its ends (read with GetDagRun, which the
    # real supervisor answers) set the next.
    waits = re.findall(r"Checking the fan-out's Dag runs.*?expected_seconds=(\S+)", result.log)
    assert waits[0] == "None"
    assert float(waits[1]) >= 0.5
    assert "Learned how long the child Dag runs from the fan-out's ended runs" in result.log
    assert "Could not read how long a Dag run took" not in result.log
