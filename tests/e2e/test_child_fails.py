"""Scenario 5: a failing child makes each durable parent retry trigger exactly one fresh child run."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import CHILD_DAG, PARENT_TASK, TRIGGERED_EVENT, lines_with

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario

RETRIES = 2  # as in dags/example_parent_durable.py


@pytest.mark.timeout(420, method="signal")
def test_each_retry_triggers_one_new_child_until_retries_run_out(scenario: Scenario) -> None:
    run_id = scenario.trigger("example_parent_durable", sleep=1, fail=True)

    parent_run = scenario.wait_run_finished("example_parent_durable", run_id, timeout=240)
    child_runs = scenario.wait_runs_finished(CHILD_DAG, 1, timeout=60)

    assert parent_run["state"] == "failed"
    ti = scenario.client.task_instance("example_parent_durable", run_id, PARENT_TASK)
    assert (ti["state"], ti["try_number"]) == ("failed", RETRIES + 1)
    assert len(child_runs) == RETRIES + 1
    assert {run["state"] for run in child_runs} == {"failed"}
    # Each try triggered exactly one of them, a different one each time.
    triggered_by_try = []
    for try_number in range(1, RETRIES + 2):
        log = scenario.log("example_parent_durable", run_id, PARENT_TASK, try_number)
        triggered = [_run_id(line) for line in lines_with(log, TRIGGERED_EVENT)]
        assert len(triggered) == 1, f"try {try_number} triggered {triggered}; its log:\n{log}"
        triggered_by_try += triggered
    assert sorted(triggered_by_try) == sorted(run["dag_run_id"] for run in child_runs)


def _run_id(log_line: str) -> str:
    match = re.search(r'run_id="([^"]+)"', log_line)
    assert match, log_line
    return match.group(1)
