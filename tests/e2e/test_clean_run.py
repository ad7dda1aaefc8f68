"""Scenario 1: a durable parent with nothing going wrong triggers one child run and succeeds on try 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import CHILD_DAG, PARENT_TASK

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario


@pytest.mark.timeout(420, method="signal")
def test_durable_parent_triggers_one_child(scenario: Scenario) -> None:
    run_id = scenario.trigger("example_parent_durable", sleep=2, value="clean")

    parent_run = scenario.wait_run_finished("example_parent_durable", run_id, timeout=120)
    child_runs = scenario.wait_runs_finished(CHILD_DAG, 1, timeout=60)

    assert parent_run["state"] == "success"
    assert scenario.client.task_instance("example_parent_durable", run_id, PARENT_TASK)["try_number"] == 1
    assert [run["state"] for run in child_runs] == ["success"]
    assert child_runs[0]["conf"]["value"] == "clean"
    # Write-ahead: the child run id was saved in the task's state store (it is kept after success).
    stored = scenario.client.state_store("example_parent_durable", run_id, PARENT_TASK)
    assert child_runs[0]["dag_run_id"] in str(stored)
