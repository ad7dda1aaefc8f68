"""A person clears a durable synchronous parent while it waits: the next try triggers a new child run.

What Airflow 3.3.2 does, observed here: the clear sets the running task instance to ``restarting``
(``max_tries`` untouched) and gives it a new id, so the supervisor's next heartbeat is refused (404/410)
and it SIGTERMs the task process, whose handler calls ``on_kill``; the process is killed some seconds
later. The stopped try finds itself ``restarting`` but cannot write its state store any more (the store
answers 404 for the old id). The executor reports the try's end as a success (it ran to its end, the
supervisor did not fail), so the scheduler raises ``max_tries`` ("was cleared and successfully
terminated") and schedules the next try, which the raised ``max_tries`` makes a re-run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import CHILD_DAG, CHILD_TASK, PARENT_TASK, RECONNECT_EVENT, TRIGGERED_EVENT, lines_with
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import Json
    from tests.e2e.scenario import Scenario

PARENT_DAG = "example_parent_durable"
CLEARED_EVENT = "The task was cleared; triggering a new Dag run"
CLEARED_WHILE_WAITING = "Cleared while this try waited"
# Long enough that the first child still runs when the next try starts: that try has a real choice
# between reconnecting to it and triggering anew.
CHILD_SLEEP = 60
TIMEOUT = 240.0


@pytest.mark.timeout(600, method="signal")
def test_clearing_a_running_durable_parent_triggers_a_new_child(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    client = scenario.client
    run_id = scenario.trigger(PARENT_DAG, sleep=CHILD_SLEEP)
    scenario.wait_task_running(PARENT_DAG, run_id, PARENT_TASK, 1, TIMEOUT)
    scenario.wait_child_working(CHILD_DAG, CHILD_TASK, 1, TIMEOUT)
    scenario.wait_logged(PARENT_DAG, run_id, PARENT_TASK, 1, TRIGGERED_EVENT, TIMEOUT)
    before = client.task_instance(PARENT_DAG, run_id, PARENT_TASK)

    cleared_at = time.monotonic()
    assert len(client.clear_task_instances(PARENT_DAG, run_id, [PARENT_TASK])) == 1
    cleared = client.task_instance(PARENT_DAG, run_id, PARENT_TASK)
    scenario.note(f"cleared {PARENT_TASK} while it waits (try 1, pid {before['pid']}): {cleared['state']}")
    # Airflow keeps max_tries at the clear; only the executor's report of the try's end may raise it.
    if cleared["state"] == "restarting":
        assert cleared["max_tries"] == before["max_tries"]

    def try_2_running() -> Json | None:
        ti = client.task_instance(PARENT_DAG, run_id, PARENT_TASK)
        return ti if ti["try_number"] == 2 and ti["state"] == "running" else None

    try_2 = wait_for(try_2_running, TIMEOUT, "try 2 to start", interval=0.5)
    started_after = time.monotonic() - cleared_at
    record_property("try_2_started_after_clear_s", round(started_after, 1))
    scenario.note(f"try 2 running {started_after:.1f} s after the clear (max_tries {try_2['max_tries']})")
    # Raised once the executor reported try 1's end: what tells try 2 it is a re-run.
    assert try_2["max_tries"] > before["max_tries"]

    parent_run = scenario.wait_run_finished(PARENT_DAG, run_id, TIMEOUT)
    child_runs = scenario.wait_runs_finished(CHILD_DAG, 2, TIMEOUT)
    assert parent_run["state"] == "success"
    assert [run["state"] for run in child_runs] == ["success", "success"]
    assert [t["state"] for t in client.task_tries(PARENT_DAG, run_id, PARENT_TASK)] == ["failed", "success"]

    # The stopped try looked into its stop after on_kill and found itself cleared.
    try_1 = scenario.log(PARENT_DAG, run_id, PARENT_TASK, 1)
    assert lines_with(try_1, CLEARED_WHILE_WAITING), f"try 1 did not look into its stop; its log:\n{try_1}"
    # The next try took it for the person's re-run it is.
    log_2 = scenario.log(PARENT_DAG, run_id, PARENT_TASK, 2)
    cleared_lines = lines_with(log_2, CLEARED_EVENT)
    assert cleared_lines, f"try 2 did not take the clear for a re-run; its log:\n{log_2}"
    assert child_runs[0]["dag_run_id"] in cleared_lines[0]
    assert lines_with(log_2, TRIGGERED_EVENT)
    assert not lines_with(log_2, RECONNECT_EVENT)
    assert parent_run["state"] in FINISHED
