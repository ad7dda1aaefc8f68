"""The crash suite on PostgreSQL and the CeleryExecutor, each component a process of its own.

Two Celery workers: ``worker-1`` serves the default queue (the children), ``worker-2`` the parents'
queue. A lost machine is a worker's whole process tree SIGKILLed (worker, pool, task supervisors and
task processes); nothing reports the deaths, so the scheduler gives the tries up when their heartbeats
time out, and a new worker takes the retries. Run by ``make test-distributed``, never by ``make test``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import (
    CHILD_DAG,
    CHILD_TASK,
    PARENT_TASK,
    RECONNECT_EVENT,
    TRIGGERED_EVENT,
    lines_with,
    seconds_between,
)
from tests.e2e.settings import CELERY, HEARTBEAT_TIMEOUT, PARENTS_QUEUE

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

pytestmark = pytest.mark.airflow_setup(CELERY)

# Long enough to outlive the kill, the heartbeat timeout and a new worker's start: the retries must
# find their children still running to show the reconnect.
CHILD_SLEEP = HEARTBEAT_TIMEOUT + 40


def replace_parents_worker(scenario: Scenario, airflow: EmbeddedAirflow) -> str:
    """
    SIGKILL the parents' worker's whole process tree and start a new worker on the parents' queue.

    Return when the kill happened, as the API writes timestamps.
    """
    # The scenarios share one Airflow: an earlier one may have replaced the worker already.
    (lost,) = airflow.workers.serving(PARENTS_QUEUE)
    killed_at = datetime.now(UTC).isoformat()
    killed = airflow.workers.kill(lost)
    scenario.note(f"SIGKILL {lost}'s process tree ({len(killed)} processes)")
    new = f"{lost}-replaced-{uuid.uuid4().hex[:4]}"
    airflow.start_worker(new, (PARENTS_QUEUE,))
    airflow.workers.wait_ready(new)
    scenario.note(f"{new} ready")
    return killed_at


@pytest.mark.timeout(300, method="signal")
def test_clean_run(scenario: Scenario) -> None:
    run_id = scenario.trigger("example_parent_durable", sleep=2)

    parent_run = scenario.wait_run_finished("example_parent_durable", run_id, timeout=180)
    children = scenario.wait_runs_finished(CHILD_DAG, 1, timeout=60)

    assert parent_run["state"] == "success"
    assert [run["state"] for run in children] == ["success"]
    ti = scenario.client.task_instance("example_parent_durable", run_id, PARENT_TASK)
    # Sent to Celery's default queue and run by one of its workers.
    assert ti["queue"] == "default"
    assert ti["hostname"]


@pytest.mark.timeout(480, method="signal")
def test_a_lost_worker_retries_on_a_new_one_and_reconnects_to_the_one_child(
    scenario: Scenario, airflow: EmbeddedAirflow, record_property: Callable[[str, object], None]
) -> None:
    dag_id = "parent_durable_parents_queue"
    run_id = scenario.trigger(dag_id, sleep=CHILD_SLEEP)
    scenario.wait_task_running(dag_id, run_id, PARENT_TASK, 1, timeout=180)
    scenario.wait_child_working(CHILD_DAG, CHILD_TASK, 1, timeout=180)

    killed_at = replace_parents_worker(scenario, airflow)
    parent_run = scenario.wait_run_finished(dag_id, run_id, timeout=300)
    children = scenario.wait_runs_finished(CHILD_DAG, 1, timeout=120)

    assert parent_run["state"] == "success"
    assert len(children) == 1, [run["dag_run_id"] for run in children]
    assert children[0]["state"] == "success"
    tries = scenario.client.task_tries(dag_id, run_id, PARENT_TASK)
    assert [t["state"] for t in tries] == ["failed", "success"]
    assert {t["queue"] for t in tries} == {PARENTS_QUEUE}
    try_2 = scenario.log(dag_id, run_id, PARENT_TASK, 2)
    assert children[0]["dag_run_id"] in lines_with(try_2, RECONNECT_EVENT)[0]
    assert not lines_with(try_2, TRIGGERED_EVENT)
    # The outage users see: the scheduler gives try 1 up once its heartbeat times out, then try 2 waits
    # for a free worker on the queue.
    outage = seconds_between(killed_at, tries[1]["start_date"])
    record_property("lost_worker_kill_to_try_2_start_seconds", round(outage, 1))
    scenario.note(f"worker killed to try 2 started: {outage:.1f}s (heartbeat timeout {HEARTBEAT_TIMEOUT}s)")


@pytest.mark.timeout(600, method="signal")
def test_a_lost_worker_under_a_ten_way_synchronous_fan_out_leaves_ten_children(
    scenario: Scenario, airflow: EmbeddedAirflow, record_property: Callable[[str, object], None]
) -> None:
    dag_id, task_id, count = "fan_out_sync_parents_queue", "trigger_children", 10
    run_id = scenario.trigger(dag_id, count=count, sleep=CHILD_SLEEP)
    scenario.wait_child_working(CHILD_DAG, CHILD_TASK, count, timeout=240)

    killed_at = replace_parents_worker(scenario, airflow)
    parent_run = scenario.wait_run_finished(dag_id, run_id, timeout=400)
    children = scenario.wait_runs_finished(CHILD_DAG, count, timeout=120)

    mapped = [ti for ti in scenario.client.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
    assert parent_run["state"] == "success"
    assert sorted(run["conf"]["item"] for run in children) == list(range(count))
    assert {run["state"] for run in children} == {"success"}
    # Every parent was on the lost worker: each retried once and reconnected to its own child.
    assert {(ti["state"], ti["try_number"]) for ti in mapped} == {("success", 2)}
    child_of = {run["conf"]["item"]: run["dag_run_id"] for run in children}
    for map_index in range(count):
        try_2 = scenario.log(dag_id, run_id, task_id, 2, map_index)
        assert child_of[map_index] in lines_with(try_2, RECONNECT_EVENT)[0]
        assert not lines_with(try_2, TRIGGERED_EVENT)
    outage = max(seconds_between(killed_at, ti["start_date"]) for ti in mapped)
    record_property("fan_out_10_kill_to_last_try_2_start_seconds", round(outage, 1))
    scenario.note(f"worker killed to the last of 10 tries 2 started: {outage:.1f}s")


@pytest.mark.timeout(900, method="signal")
def test_a_thirty_way_deferrable_fan_out_survives_a_triggerer_restart_with_thirty_children(
    scenario: Scenario, airflow: EmbeddedAirflow, record_property: Callable[[str, object], None]
) -> None:
    dag_id, task_id, width = "fan_out_deferrable", "trigger_children", 30
    run_id = scenario.trigger(dag_id, count=width, sleep=10)
    scenario.wait_task(
        dag_id, run_id, task_id, lambda ti: ti["state"] == "deferred", "deferred", timeout=240, map_index=0
    )
    killed = airflow.restart_triggerer()
    scenario.note(f"SIGKILL triggerer ({len(killed)} processes) and start a new one")

    parent_run = scenario.wait_run_finished(dag_id, run_id, timeout=600)
    children = scenario.wait_runs_finished(CHILD_DAG, width, timeout=120)

    mapped = [ti for ti in scenario.client.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
    assert parent_run["state"] == "success"
    assert {ti["state"] for ti in mapped} == {"success"}
    assert sorted(run["conf"]["item"] for run in children) == list(range(width))
    assert {run["state"] for run in children} == {"success"}
    makespan = seconds_between(parent_run["start_date"], parent_run["end_date"])
    record_property("fan_out_30_celery_triggerer_restart_makespan_seconds", round(makespan))
    scenario.note(f"30 children with a triggerer restart: makespan {makespan:.0f}s")
