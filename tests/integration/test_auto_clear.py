"""``auto_clear_failed_tasks`` under dag.test(): the connection is read and the clear permission asked before the trigger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fake_api import CLEAR, CLEAR_CHECK, TOKEN
from tests.integration import db
from tests.integration.conftest import API_PASSWORD
from tests.integration.dags.resuming import (
    MISSING_CONNECTION,
    TASK_ID,
    deferrable,
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
    assert api.routes()[:2] == [TOKEN, CLEAR_CHECK]
    # The child succeeded: nothing was cleared, and the password never reached the log.
    assert CLEAR not in api.routes()
    assert API_PASSWORD not in result.log


def test_a_missing_connection_fails_the_task_before_the_trigger(run_dag: RunDag, api: FakeApi) -> None:
    result = run_dag(missing_connection)

    assert db.task_outcome(missing_connection.dag_id, TASK_ID).state == "failed"
    assert db.runs_of(CHILD) == []
    assert f"auto_clear_failed_tasks needs the Airflow connection {MISSING_CONNECTION!r}" in result.log
