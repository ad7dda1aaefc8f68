"""
``cancel_on_kill`` on a real Airflow: a parent stopped by a person cancels its child run; nothing else does.

The parents (``tests/e2e/dags/e2e_cancel.py``) cancel through the connection ``airflow_api_default``,
which each test makes sure exists: the Airflow's own API server, as its admin. A person marks the waiting
parent task failed through the REST API, as from the UI; the child run must be failed within 30 s on the
synchronous path and 45 s on the deferred one (the supervisor's next heartbeat, or the triggerer's next
look at its triggers, then on_kill). Each test prints the time it measured. No log of a parent that
cancelled may show the connection's password, nor any token the api-server issues (``tests.e2e.leaks``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import TRIGGERED_EVENT, lines_with, logged_at
from tests.e2e.kill import kill_task_process
from tests.e2e.leaks import leaked
from tests.e2e.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import Json
    from tests.e2e.scenario import Scenario

CHILD, CHILD_TASK, PARENT_TASK = "cancel_child", "work", "trigger_child"
CANCELLED_EVENT = "Cancelled the child Dag run"
# What the supervisor logs as it sends SIGTERM to a try the server no longer runs.
SIGTERM_EVENT = "Server indicated the task shouldn't be running anymore"


def start_waiting(scenario: Scenario, dag_id: str, *, deferred: bool) -> tuple[str, Json]:
    """Trigger ``dag_id`` and return its run id and its child run once the child works and it waits."""
    run_id = scenario.trigger(dag_id, sleep=120)
    (child,) = scenario.wait_child_working(CHILD, CHILD_TASK, 1, timeout=180)
    waiting = "deferred" if deferred else "running"
    scenario.wait_task(dag_id, run_id, PARENT_TASK, lambda ti: ti["state"] == waiting, waiting, timeout=120)
    return run_id, child


def child_state(scenario: Scenario, child: Json) -> str:
    state: str = scenario.client.dag_run(CHILD, child["dag_run_id"])["state"]
    return state


@pytest.mark.timeout(420, method="signal")
@pytest.mark.parametrize(
    ("dag_id", "deferred", "within"), [("cancel_sync", False, 30.0), ("cancel_deferred", True, 45.0)]
)
def test_a_parent_marked_failed_cancels_its_child(
    scenario: Scenario,
    api_connection: dict[str, str],
    dag_id: str,
    deferred: bool,
    within: float,
    record_property: Callable[[str, object], None],
) -> None:
    run_id, child = start_waiting(scenario, dag_id, deferred=deferred)

    marked_at = time.monotonic()
    scenario.client.set_task_instance_state(dag_id, run_id, PARENT_TASK, "failed")
    scenario.note(f"{dag_id}.{PARENT_TASK} marked failed")
    wait_for(lambda: child_state(scenario, child) == "failed", within, f"{CHILD} run failed", 0.5)
    seconds = time.monotonic() - marked_at

    scenario.note(f"the child run failed {seconds:.1f} s after the parent was marked failed")
    record_property(f"{dag_id}_marked_to_child_failed_seconds", round(seconds, 1))
    assert len(scenario.runs_of(CHILD)) == 1
    log = scenario.log(dag_id, run_id, PARENT_TASK, 1)
    (cancelled,) = lines_with(log, CANCELLED_EVENT)
    assert leaked(log, api_connection) == []
    if not deferred:
        # The supervisor's SIGTERM (it logs why) runs on_kill; its SIGKILL follows 5 s later.
        (stopped,) = lines_with(log, SIGTERM_EVENT)
        spent = (logged_at(cancelled) - logged_at(stopped)).total_seconds()
        scenario.note(
            f"on_kill cancelled {spent:.2f} s after the SIGTERM, {5 - spent:.2f} s before the SIGKILL"
        )
        record_property("sync_on_kill_cancelled_after_sigterm_seconds", round(spent, 2))
        assert spent < 5


@pytest.mark.timeout(420, method="signal")
@pytest.mark.usefixtures("api_connection")
def test_a_fan_out_marked_failed_cancels_every_child(scenario: Scenario) -> None:
    run_id = scenario.trigger("cancel_fan_out", sleep=120)
    children = scenario.wait_child_working(CHILD, CHILD_TASK, 3, timeout=180)

    marked_at = time.monotonic()
    scenario.client.set_task_instance_state("cancel_fan_out", run_id, "trigger_children", "failed")
    wait_for(
        lambda: all(child_state(scenario, child) == "failed" for child in children),
        30,
        "3 child runs failed",
        0.5,
    )

    scenario.note(
        f"3 child runs failed {time.monotonic() - marked_at:.1f} s after the parent was marked failed"
    )
    assert len(scenario.runs_of(CHILD)) == 3


@pytest.mark.timeout(420, method="signal")
@pytest.mark.usefixtures("api_connection")
def test_without_cancel_on_kill_the_child_goes_on(scenario: Scenario) -> None:
    run_id, child = start_waiting(scenario, "keep_sync", deferred=False)

    scenario.client.set_task_instance_state("keep_sync", run_id, PARENT_TASK, "failed")
    # The supervisor ends the try once its heartbeat learns of the mark: its log says so.
    scenario.wait_logged("keep_sync", run_id, PARENT_TASK, 1, "Task killed!", timeout=60)

    assert child_state(scenario, child) == "running"
    scenario.client.set_dag_run_state(CHILD, child["dag_run_id"], "failed")  # not left running


@pytest.mark.timeout(420, method="signal")
@pytest.mark.usefixtures("api_connection")
def test_a_durable_parent_killed_with_retries_left_keeps_its_child_and_reconnects(scenario: Scenario) -> None:
    run_id, child = start_waiting(scenario, "cancel_sync", deferred=False)
    ti = scenario.client.task_instance("cancel_sync", run_id, PARENT_TASK)

    kill_task_process(ti["pid"], ti["id"])
    scenario.note("SIGKILL the task process of try 1")
    scenario.wait_task_running("cancel_sync", run_id, PARENT_TASK, 2, timeout=180)

    assert child_state(scenario, child) == "running"
    try_2 = scenario.wait_logged(
        "cancel_sync",
        run_id,
        PARENT_TASK,
        2,
        "Reconnecting to the Dag run saved by an earlier try",
        timeout=60,
    )
    assert child["dag_run_id"] in try_2
    assert len(scenario.runs_of(CHILD)) == 1
    # Done: the parent's run marked failed stops try 2, which cancels the child (not left running).
    scenario.client.set_dag_run_state("cancel_sync", run_id, "failed")
    wait_for(lambda: child_state(scenario, child) == "failed", 30, f"{CHILD} run failed", 0.5)


@pytest.mark.timeout(300, method="signal")
def test_a_connection_that_cannot_be_read_fails_the_task_before_the_trigger(scenario: Scenario) -> None:
    run_id = scenario.trigger("cancel_bad_connection", sleep=5)

    run = scenario.wait_run_finished("cancel_bad_connection", run_id, timeout=180)

    assert run["state"] == "failed"
    assert scenario.runs_of(CHILD) == []
    tries = scenario.client.task_tries("cancel_bad_connection", run_id, PARENT_TASK)
    # A configuration error: failed at once, no retry spent on it.
    assert [t["state"] for t in tries] == ["failed"]
    log = scenario.log("cancel_bad_connection", run_id, PARENT_TASK, 1)
    assert "no_such_connection" in log
    assert not lines_with(log, TRIGGERED_EVENT)
