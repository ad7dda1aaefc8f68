"""What the stop scenarios share (``tests/e2e/test_stops*.py``): their Dags' names, connections, clean-up."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from tests.e2e.leaks import known_secrets
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED
from tests.e2e.settings import BOT_USER

if TYPE_CHECKING:
    from tests.e2e.client import Json
    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

# The names of tests/e2e/dags/e2e_stops.py.
CHILD = "stops_child"
CONN_ID, REST_ONLY_CONN_ID = "airflow_api_least_privilege", "airflow_api_rest_only"
FAN_OUT_TASK, SINGLE_TASK = "trigger_items", "trigger_child"


def bot_connection(airflow: EmbeddedAirflow, conn_id: str, host: str) -> dict[str, str]:
    """
    Create ``conn_id`` (unless it exists): the API server at ``host``, signed in to as ``trigger-bot``.

    Returns what no log may show of it (``tests.e2e.leaks.known_secrets``): its password and tokens.
    """
    password = airflow.password_of(BOT_USER)
    airflow.client.create_connection(conn_id, conn_type="http", host=host, login=BOT_USER, password=password)
    return known_secrets(airflow.base_url, BOT_USER, password)


def fail_unfinished(scenario: Scenario) -> None:
    """Mark failed every run the scenario triggered or watched that is still going: none outlives its test."""
    runs = list(scenario.triggered)
    try:
        runs += [
            (dag_id, run["dag_run_id"])
            for dag_id in scenario.watched_dags
            for run in scenario.runs_of(dag_id)
        ]
        for dag_id, run_id in dict.fromkeys(runs):
            if scenario.client.dag_run(dag_id, run_id)["state"] not in FINISHED:
                scenario.client.set_dag_run_state(dag_id, run_id, "failed")
                scenario.note(f"left running by the test: {dag_id} run {run_id}, marked failed")
    except httpx.HTTPError as e:
        # The test's own failure is the one to report.
        scenario.note(f"could not clean up: {e}")


def created_at(run: Json) -> datetime:
    """
    When a Dag run was created: its ``queued_at``.

    ``DagRun.__init__`` (``airflow/models/dagrun.py``) sets it to ``utcnow()`` for a run created queued,
    as the execution API's trigger route creates it (``trigger_dag(..., state=QUEUED)``,
    ``airflow/api/common/trigger_dag.py``), and only a re-queue (a clear) changes it. ``run_after`` is
    the same moment only when the trigger sends none (``run_after or utcnow()``): ``queued_at`` does not
    depend on what the operator sends.
    """
    return datetime.fromisoformat(run["queued_at"])


def wait_for_a_resume(
    scenario: Scenario, dag_id: str, run_id: str, timeout: float, *, deferred: bool = False
) -> Json:
    """
    Wait until the fan-out task runs again after a deferral (its supervisor started the resume); return it.

    :param deferred: it is known to be deferred now; else a deferral is waited for first.
    """

    def resumed() -> Json | None:
        nonlocal deferred
        ti = scenario.client.task_instance(dag_id, run_id, FAN_OUT_TASK)
        deferred = deferred or ti["state"] == "deferred"
        return ti if deferred and ti["state"] == "running" else None

    ti = wait_for(resumed, timeout, f"{dag_id}.{FAN_OUT_TASK} to resume after a deferral", interval=0.2)
    scenario.note(f"{dag_id}.{FAN_OUT_TASK} resumed (try {ti['try_number']})")
    return ti
