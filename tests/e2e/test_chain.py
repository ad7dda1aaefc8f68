"""Scenario 7: a durable chain a -> b -> c with b's task killed mid-wait: each link's child runs once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import RECONNECT_EVENT, lines_with
from tests.e2e.kill import kill_task_process
from tests.e2e.polling import wait_for

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario

TASK = "trigger_next"
# The links of dags/example_chain.py.
CHAIN_A, CHAIN_B, CHAIN_C = "example_chain_a", "example_chain_b", "example_chain_c"


@pytest.mark.timeout(420, method="signal")
def test_killing_the_middle_link_triggers_each_link_once(scenario: Scenario) -> None:
    client = scenario.client
    run_id = scenario.trigger(CHAIN_A, sleep=25, value="end of chain")

    # chain_c working means chain_b's task is inside its wait: kill it there.
    scenario.wait_child_working(CHAIN_C, "work", 1, timeout=180)
    chain_b_run = wait_for(lambda: scenario.runs_of(CHAIN_B), 30, f"the {CHAIN_B} run")[0]["dag_run_id"]
    ti = scenario.wait_task_running(CHAIN_B, chain_b_run, TASK, 1, timeout=30)
    kill_task_process(ti["pid"], ti["id"])
    scenario.note(f"SIGKILL task process of chain_b.{TASK} try 1 (pid {ti['pid']})")

    chain_a = scenario.wait_run_finished(CHAIN_A, run_id, timeout=240)
    chain_b_runs = scenario.wait_runs_finished(CHAIN_B, 1, timeout=30)
    chain_c_runs = scenario.wait_runs_finished(CHAIN_C, 1, timeout=30)

    assert chain_a["state"] == "success"
    assert [run["state"] for run in chain_b_runs] == ["success"]
    assert [run["state"] for run in chain_c_runs] == ["success"]
    assert client.task_instance(CHAIN_A, run_id, TASK)["try_number"] == 1
    assert client.task_instance(CHAIN_B, chain_b_run, TASK)["try_number"] == 2
    reconnects = lines_with(scenario.log(CHAIN_B, chain_b_run, TASK, 2), RECONNECT_EVENT)
    assert reconnects, "chain_b's retry did not reconnect to its chain_c run"
    assert chain_c_runs[0]["dag_run_id"] in reconnects[0]
    # The conf travelled down the chain, each link adding itself to the path.
    assert chain_c_runs[0]["conf"]["path"] == [CHAIN_A, CHAIN_B]
    assert chain_c_runs[0]["conf"]["value"] == "end of chain"
