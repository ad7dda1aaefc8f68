"""A durable task that finds a run saved by an earlier try reconnects to it and triggers nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.utils.state import DagRunState

from tests.integration import db
from tests.integration.dags.saved_run import CHILD_RUN_ID_KEY, SAVED_RUN_DAG, TASK_ID, saved_run
from tests.integration.names import CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag

# The child run the "earlier try" triggered before it died; still running when the task starts again.
EARLIER_CHILD_RUN = "triggered_by_an_earlier_try"
CHILD_SECONDS = 2.0


def test_reconnects_to_the_saved_running_child(run_dag: RunDag) -> None:
    db.create_run(CHILD, EARLIER_CHILD_RUN, state=DagRunState.RUNNING)

    with ChildFinisher(CHILD, after=CHILD_SECONDS) as finisher:
        result = run_dag(saved_run, run_conf={CHILD_RUN_ID_KEY: EARLIER_CHILD_RUN})

    outcome = db.task_outcome(SAVED_RUN_DAG, TASK_ID)
    assert (outcome.state, outcome.try_number) == ("success", 1)
    assert "Reconnecting to the Dag run saved by an earlier try" in result.log
    # No new run: the one the record names was waited on until it ended.
    assert [run.run_id for run in db.runs_of(CHILD)] == [EARLIER_CHILD_RUN]
    assert finisher.finished == [(EARLIER_CHILD_RUN, DagRunState.SUCCESS)]
    assert db.xcom(SAVED_RUN_DAG, TASK_ID, "trigger_run_id") == EARLIER_CHILD_RUN
