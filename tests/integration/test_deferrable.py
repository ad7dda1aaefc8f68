"""Our deferrable mode under dag.test(), which runs the trigger inline and then resumes the task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.utils.state import DagRunState

from tests.integration import db
from tests.integration.dags.parents import OURS, TASK_ID, parent
from tests.integration.names import CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag


def test_durable_deferrable_waits_in_the_trigger_and_keeps_its_record(run_dag: RunDag) -> None:
    dag = parent(OURS, "wait_deferrable_durable")

    with ChildFinisher(CHILD, after=1.5) as finisher:
        result = run_dag(dag)

    (child,) = db.runs_of(CHILD)
    assert finisher.finished == [(child.run_id, DagRunState.SUCCESS)]
    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert "Deferring until the Dag run ends" in result.log
    assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_id") == child.run_id
    # By default a worker resumes the task (end_from_trigger=False), as the stock operator's does.
    assert "finish_on_success=worker" in result.log
    assert "Ending the task here" not in result.log
    assert "Dag run finished in an allowed state" in result.log
    # The resumed, durable task marks its record: a later try can only come from a person's clear.
    assert db.task_state(dag.dag_id, TASK_ID, "triggered_dag_run")["ended"] == "success"


def test_end_from_trigger_ends_the_task_in_the_triggerer(run_dag: RunDag) -> None:
    dag = parent(OURS, "wait_deferrable_end_from_trigger")

    with ChildFinisher(CHILD, after=1.5):
        result = run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    # The trigger ended the task (TaskSuccessEvent); dag.test() resumes it with that event's state
    # instead, and the task finds its run by the XCom it pushed before deferring.
    assert "Ending the task here: the Dag run succeeded" in result.log
    assert "The trigger saw the Dag run succeed" in result.log
