"""Scenario 3: the stock operator, killed mid-wait, triggers a second child run on retry (the comparison)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import kill_parent_mid_wait

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario


@pytest.mark.timeout(420, method="signal")
def test_stock_parent_killed_mid_wait_triggers_a_second_child(scenario: Scenario) -> None:
    outcome = kill_parent_mid_wait(scenario, "example_parent_stock", child_sleep=20)

    assert outcome.parent_run["state"] == "success"
    assert outcome.task_instance["try_number"] == 2
    # This pins the bug the durable operator fixes: the retry could not know its child, so it made another.
    assert len(outcome.child_runs) == 2, [run["dag_run_id"] for run in outcome.child_runs]
    assert {run["state"] for run in outcome.child_runs} == {"success"}
