"""Scenarios 2 and 4: a durable parent killed mid-wait reconnects to its child run on retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import PARENT_TASK, RECONNECT_EVENT, TRIGGERED_EVENT, kill_parent_mid_wait, lines_with
from tests.e2e.settings import HEARTBEAT_TIMEOUT, MIN_HEARTBEAT_INTERVAL

if TYPE_CHECKING:
    from tests.e2e.flows import KillOutcome
    from tests.e2e.scenario import Scenario


def assert_reconnected_once(scenario: Scenario, outcome: KillOutcome) -> None:
    assert outcome.parent_run["state"] == "success"
    assert outcome.task_instance["try_number"] == 2
    assert len(outcome.child_runs) == 1, [run["dag_run_id"] for run in outcome.child_runs]
    child = outcome.child_runs[0]
    assert child["state"] == "success"
    try_2 = scenario.log("example_parent_durable", outcome.run_id, PARENT_TASK, 2)
    reconnects = lines_with(try_2, RECONNECT_EVENT)
    assert reconnects, f"try 2 did not reconnect; its log:\n{try_2}"
    assert child["dag_run_id"] in reconnects[0]
    assert not lines_with(try_2, TRIGGERED_EVENT)


@pytest.mark.timeout(420, method="signal")
def test_task_process_killed_mid_wait_reconnects(scenario: Scenario) -> None:
    outcome = kill_parent_mid_wait(scenario, "example_parent_durable", child_sleep=20)

    assert_reconnected_once(scenario, outcome)
    # The supervisor saw its task process die and said so at once; no heartbeat timeout was involved.
    assert outcome.given_up_after < HEARTBEAT_TIMEOUT


@pytest.mark.timeout(420, method="signal")
def test_whole_worker_killed_mid_wait_reconnects_after_heartbeat_timeout(scenario: Scenario) -> None:
    # Nothing reports the death, so the retry starts only after the heartbeat timeout; the child must
    # still be running then for the retry to reconnect rather than find it finished.
    outcome = kill_parent_mid_wait(
        scenario, "example_parent_durable", child_sleep=HEARTBEAT_TIMEOUT + 30, whole_worker=True
    )

    assert outcome.killed.supervisor_pid is not None
    assert_reconnected_once(scenario, outcome)
    # Nobody reported try 1's death: the scheduler gave it up when its heartbeat (last sent up to one
    # interval before the kill) timed out.
    assert outcome.given_up_after >= HEARTBEAT_TIMEOUT - MIN_HEARTBEAT_INTERVAL - 1
    tries = scenario.client.task_tries("example_parent_durable", outcome.run_id, PARENT_TASK)
    assert [t["state"] for t in tries] == ["failed", "success"]
