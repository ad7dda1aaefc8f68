"""``cancel_on_kill`` under dag.test(): the connection is read and signed in with before the trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fake_api import DAG_RUN_PATCH, TOKEN
from tests.integration import db
from tests.integration.conftest import API_PASSWORD
from tests.integration.dags.cancelling import (
    MISSING_CONNECTION,
    TASK_ID,
    TIMEOUT_RUN_ID,
    deferrable,
    deferred_timeout,
    fan_out,
    missing_connection,
    synchronous,
)
from tests.integration.names import CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from tests.fake_api import FakeApi
    from tests.integration.conftest import RunDag


@pytest.mark.parametrize("dag", [synchronous, deferrable, fan_out], ids=["sync", "deferrable", "fan-out"])
def test_a_parent_signs_in_first_and_runs_as_usual(run_dag: RunDag, api: FakeApi, dag: DAG) -> None:
    with ChildFinisher(CHILD, after=0.5):
        result = run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert {run.state for run in db.runs_of(CHILD)} == {"success"}
    assert TOKEN in api.routes()
    # Nothing stopped the parent: nothing was cancelled, and the password never reached the log.
    assert DAG_RUN_PATCH not in api.routes()
    assert API_PASSWORD not in result.log


def test_a_missing_connection_fails_the_task_before_the_trigger(run_dag: RunDag, api: FakeApi) -> None:
    result = run_dag(missing_connection)

    assert db.task_outcome(missing_connection.dag_id, TASK_ID).state == "failed"
    assert db.runs_of(CHILD) == []
    assert MISSING_CONNECTION in result.log


def test_a_deferred_execution_timeout_cancels_the_child_and_fails_the_task(
    run_dag: RunDag, api: FakeApi
) -> None:
    # The API shows the child running, as a real one would be; dag.test() never runs it.
    api.runs[(CHILD, TIMEOUT_RUN_ID)] = "running"

    result = run_dag(deferred_timeout)

    assert db.task_outcome(deferred_timeout.dag_id, TASK_ID).state == "failed"
    assert "TaskDeferralTimeout" in result.log
    assert api.runs[(CHILD, TIMEOUT_RUN_ID)] == "failed"
    assert "execution_timeout on the last try" in result.log
