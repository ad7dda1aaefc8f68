"""The deferrable durable parent's crash points: before the deferral, in the triggerer, while resuming.

``parent_deferrable`` and the ``chain_deferrable_*`` links (``tests/e2e/dags``) hold the window before
the wait or before the resume open on try 1 when the conf asks, so the test can SIGKILL the task in it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import (
    ALREADY_FINISHED_EVENT,
    CHILD_DAG,
    CHILD_TASK,
    DEFER_EVENT,
    HOLD_EVENT,
    PARENT_TASK,
    RECONNECT_EVENT,
    TRIGGERED_EVENT,
    lines_with,
)
from tests.e2e.kill import kill_task_process
from tests.e2e.polling import wait_for

if TYPE_CHECKING:
    from tests.e2e.client import Json
    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

PARENT = "parent_deferrable"
LINK_TASK = "trigger_next"
# How long try 1 holds a crash window open: an upper bound on the test's reaction, cut short by the kill.
HOLD = 120


def kill_in_hold(scenario: Scenario, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> None:
    """SIGKILL try 1 of the task once its log says it holds a crash window open."""
    ti = scenario.wait_task_running(dag_id, run_id, task_id, 1, timeout=180, map_index=map_index)
    scenario.wait_logged(dag_id, run_id, task_id, 1, HOLD_EVENT, timeout=60, map_index=map_index)
    kill_task_process(ti["pid"], ti["id"])
    scenario.note(f"SIGKILL {dag_id}.{task_id}[{map_index}] try 1 in its hold (pid {ti['pid']})")


def finished_parent_and_child(scenario: Scenario, run_id: str) -> tuple[Json, Json, Json]:
    """Wait out the parent run; return it, its task instance and its one child run (asserting one)."""
    parent_run = scenario.wait_run_finished(PARENT, run_id, timeout=240)
    children = scenario.wait_runs_finished(CHILD_DAG, 1, timeout=60)
    assert len(children) == 1, [run["dag_run_id"] for run in children]
    return parent_run, scenario.client.task_instance(PARENT, run_id, PARENT_TASK), children[0]


@pytest.mark.timeout(360, method="signal")
def test_killed_between_trigger_and_deferral_the_retry_defers_on_the_same_run(scenario: Scenario) -> None:
    run_id = scenario.trigger(PARENT, sleep=20, hold_before_wait=HOLD)
    kill_in_hold(scenario, PARENT, run_id, PARENT_TASK)

    parent_run, ti, child = finished_parent_and_child(scenario, run_id)

    assert parent_run["state"] == "success"
    assert ti["try_number"] == 2
    assert child["state"] == "success"
    try_1 = scenario.log(PARENT, run_id, PARENT_TASK, 1)
    assert child["dag_run_id"] in lines_with(try_1, TRIGGERED_EVENT)[0]
    assert not lines_with(try_1, DEFER_EVENT)
    try_2 = scenario.log(PARENT, run_id, PARENT_TASK, 2)
    assert child["dag_run_id"] in lines_with(try_2, RECONNECT_EVENT)[0]
    assert child["dag_run_id"] in lines_with(try_2, DEFER_EVENT)[0]
    assert not lines_with(try_2, TRIGGERED_EVENT)


@pytest.mark.timeout(360, method="signal")
def test_killed_while_resuming_the_retry_finds_the_run_finished(scenario: Scenario) -> None:
    run_id = scenario.trigger(PARENT, sleep=3, hold_before_resume=HOLD)
    scenario.wait_task(PARENT, run_id, PARENT_TASK, lambda ti: ti["state"] == "deferred", "deferred", 180)
    scenario.note("try 1 deferred")
    kill_in_hold(scenario, PARENT, run_id, PARENT_TASK)

    parent_run, ti, child = finished_parent_and_child(scenario, run_id)

    assert parent_run["state"] == "success"
    assert ti["try_number"] == 2
    assert child["state"] == "success"
    try_2 = scenario.log(PARENT, run_id, PARENT_TASK, 2)
    assert child["dag_run_id"] in lines_with(try_2, ALREADY_FINISHED_EVENT)[0]
    assert not lines_with(try_2, TRIGGERED_EVENT)
    assert not lines_with(try_2, DEFER_EVENT)


@pytest.mark.timeout(420, method="signal")
def test_triggerer_killed_and_restarted_mid_wait_the_wait_resumes(
    scenario: Scenario, airflow: EmbeddedAirflow
) -> None:
    # The new triggerer takes the dead one's triggers over only once its heartbeat is older than
    # [triggerer] triggerer_health_check_threshold (30 s): the child must outlast that to be waited on.
    run_id = scenario.trigger(PARENT, sleep=75)
    scenario.wait_task(PARENT, run_id, PARENT_TASK, lambda ti: ti["state"] == "deferred", "deferred", 180)
    scenario.wait_child_working(CHILD_DAG, CHILD_TASK, 1, timeout=120)
    killed_at = datetime.now(UTC)
    killed = airflow.restart_triggerer()
    scenario.note(f"SIGKILL triggerer (pids {killed}); a new one started")

    parent_run, ti, child = finished_parent_and_child(scenario, run_id)

    assert parent_run["state"] == "success"
    # The task never failed: the new triggerer resumed its wait, and the task resumed once.
    assert ti["try_number"] == 1
    assert child["state"] == "success"
    # The child ended after the kill, so only the new triggerer can have seen it end.
    assert datetime.fromisoformat(child["end_date"]) > killed_at
    try_1 = scenario.log(PARENT, run_id, PARENT_TASK, 1)
    assert len(lines_with(try_1, TRIGGERED_EVENT)) == 1
    assert lines_with(try_1, "Dag run finished in an allowed state")


@pytest.mark.timeout(420, method="signal")
def test_deferrable_chain_killed_before_the_middle_deferral_runs_each_link_once(scenario: Scenario) -> None:
    client = scenario.client
    run_id = scenario.trigger(
        "chain_deferrable_a",
        sleep=15,
        value="end of chain",
        hold_before_wait=HOLD,
        hold_only_in=["chain_deferrable_b"],
    )
    b_run = wait_for(lambda: scenario.runs_of("chain_deferrable_b"), 120, "the chain_deferrable_b run")
    b_run_id = b_run[0]["dag_run_id"]
    kill_in_hold(scenario, "chain_deferrable_b", b_run_id, LINK_TASK)

    chain_a = scenario.wait_run_finished("chain_deferrable_a", run_id, timeout=240)
    b_runs = scenario.wait_runs_finished("chain_deferrable_b", 1, timeout=30)
    c_runs = scenario.wait_runs_finished("example_chain_c", 1, timeout=30)

    assert chain_a["state"] == "success"
    assert [run["state"] for run in b_runs] == ["success"]
    assert [run["state"] for run in c_runs] == ["success"]
    assert client.task_instance("chain_deferrable_a", run_id, LINK_TASK)["try_number"] == 1
    assert client.task_instance("chain_deferrable_b", b_run_id, LINK_TASK)["try_number"] == 2
    try_2 = scenario.log("chain_deferrable_b", b_run_id, LINK_TASK, 2)
    assert c_runs[0]["dag_run_id"] in lines_with(try_2, RECONNECT_EVENT)[0]
    assert c_runs[0]["dag_run_id"] in lines_with(try_2, DEFER_EVENT)[0]
    assert c_runs[0]["conf"]["path"] == ["chain_deferrable_a", "chain_deferrable_b"]
    assert c_runs[0]["conf"]["value"] == "end of chain"
