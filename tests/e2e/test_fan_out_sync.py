"""Scenario 6: the synchronous durable operator mapped over 10 confs, 3 killed mid-wait: 10 children.

Synchronous, each waiting parent holds a worker slot while its child needs another: 20 slots for this
fan-out, which Airflow's default of 32 covers. Wider than the slots, it stalls (see docs/deferrable.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import CHILD_DAG, CHILD_TASK, RECONNECT_EVENT, lines_with
from tests.e2e.kill import kill_task_process

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario

DAG = "fan_out_sync"
TASK = "trigger_children"
COUNT = 10
KILLED = 3


@pytest.mark.timeout(480, method="signal")
def test_mapped_parents_killed_mid_wait_reconnect_each_to_its_own_child(scenario: Scenario) -> None:
    client = scenario.client
    run_id = scenario.trigger(DAG, count=COUNT, sleep=30)

    # The child's conf carries its item, which is also the map index of the parent that triggered it.
    working = scenario.wait_child_working(CHILD_DAG, CHILD_TASK, KILLED, timeout=180)
    victims = sorted(run["conf"]["item"] for run in working)[:KILLED]
    for map_index in victims:
        ti = scenario.wait_task_running(DAG, run_id, TASK, 1, timeout=30, map_index=map_index)
        kill_task_process(ti["pid"], ti["id"])
        scenario.note(f"SIGKILL task process of {TASK}[{map_index}] try 1 (pid {ti['pid']})")

    parent_run = scenario.wait_run_finished(DAG, run_id, timeout=300)
    child_runs = scenario.wait_runs_finished(CHILD_DAG, COUNT, timeout=60)

    mapped = {ti["map_index"]: ti for ti in client.task_instances(DAG, run_id) if ti["task_id"] == TASK}
    assert parent_run["state"] == "success"
    assert {i: ti["state"] for i, ti in mapped.items()} == {i: "success" for i in range(COUNT)}
    assert {i for i, ti in mapped.items() if ti["try_number"] == 2} == set(victims)
    assert len(child_runs) == COUNT, sorted(run["conf"]["item"] for run in child_runs)
    assert sorted(run["conf"]["item"] for run in child_runs) == list(range(COUNT))
    assert {run["state"] for run in child_runs} == {"success"}
    # Each killed parent's retry reconnected to its own child (the store is per map index).
    child_of = {run["conf"]["item"]: run["dag_run_id"] for run in child_runs}
    for map_index in victims:
        log = scenario.log(DAG, run_id, TASK, 2, map_index)
        reconnects = lines_with(log, RECONNECT_EVENT)
        assert reconnects, f"{TASK}[{map_index}] try 2 did not reconnect; its log:\n{log}"
        assert child_of[map_index] in reconnects[0]
