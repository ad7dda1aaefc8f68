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
    # The trigger ended the task (TaskSuccessEvent); dag.test() resumes it with that event's state
    # instead, and the task finds its run by the XCom it pushed before deferring.
    assert "Ending the task here: the Dag run succeeded" in result.log
    assert "The trigger saw the Dag run succeed" in result.log
