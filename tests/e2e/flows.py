"""The crash-mid-wait flow that several scenarios and the demo share: trigger, kill, watch the retry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tests.e2e.kill import kill_task_process, kill_worker
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED

if TYPE_CHECKING:
    from tests.e2e.client import AirflowClient, Json
    from tests.e2e.kill import KilledWorker
    from tests.e2e.scenario import Scenario

CHILD_DAG = "example_child"
CHILD_TASK = "work"
PARENT_TASK = "trigger_child"
# What our operator logs when a retry finds the child run its earlier try saved still running
# (``standard_ext/operators/modes/durable.py``, ``_resume``).
RECONNECT_EVENT = "Reconnecting to the Dag run saved by an earlier try"
ALREADY_FINISHED_EVENT = "The Dag run saved by an earlier try already finished; not triggering another"
TRIGGERED_EVENT = "Triggered child Dag run"
DEFER_EVENT = "Deferring until the Dag run ends"
# What the e2e Dags' HoldingTriggerDagRunOperator logs while it holds a crash window open.
HOLD_EVENT = "Holding the crash window open"


@dataclass(frozen=True)
class KillOutcome:
    """What Airflow reported once a parent whose worker was killed mid-wait had finished."""

    run_id: str
    parent_run: Json
    task_instance: Json
    child_runs: list[Json]
    killed: KilledWorker
    # Seconds from the SIGKILL until Airflow gave try 1 up (up_for_retry, or try 2 already under way).
    given_up_after: float
    seconds: float


def kill_parent_mid_wait(
    scenario: Scenario, dag_id: str, child_sleep: float, whole_worker: bool = False, timeout: float = 180.0
) -> KillOutcome:
    """
    Trigger ``dag_id`` (a parent of ``example_child``), SIGKILL its task once the child works, wait it out.

    ``whole_worker`` kills the supervisor as well, so the failure is only noticed by the heartbeat
    timeout. ``child_sleep`` must outlast the kill and the retry's start for the retry to find the child
    still running. Returns when the parent run and all child runs it caused have finished.
    """
    started = time.monotonic()
    client = scenario.client
    run_id = scenario.trigger(dag_id, sleep=child_sleep)
    scenario.wait_task_running(dag_id, run_id, PARENT_TASK, 1, timeout)
    scenario.note("try 1 running")
    wait_for(lambda: scenario.runs_of(CHILD_DAG), timeout, f"a {CHILD_DAG} run tagged {scenario.tag}")
    scenario.note("child run created")
    known_children = len(scenario.wait_child_working(CHILD_DAG, CHILD_TASK, 1, timeout))
    ti = client.task_instance(dag_id, run_id, PARENT_TASK)
    killed = (kill_worker if whole_worker else kill_task_process)(ti["pid"], ti["id"])
    killed_at = time.monotonic()
    scenario.note(
        f"SIGKILL {'supervisor and ' if whole_worker else ''}task process of try 1 (pid {ti['pid']})"
    )
    ended = scenario.wait_task(
        dag_id,
        run_id,
        PARENT_TASK,
        lambda ti: ti["state"] == "up_for_retry" or ti["try_number"] >= 2,
        "try 1 to be given up on",
        timeout,
    )
    given_up_after = time.monotonic() - killed_at
    scenario.note(f"try 1 ended: {ended['state'] if ended['try_number'] == 1 else 'retried'}")
    scenario.wait_task_running(dag_id, run_id, PARENT_TASK, 2, timeout)
    scenario.note("try 2 running")
    parent_run = _wait_finished_noting_children(scenario, dag_id, run_id, known_children, timeout)
    # The parent has finished, so every child run it will ever trigger exists; wait for them to end.
    child_runs = scenario.wait_runs_finished(CHILD_DAG, 1, timeout)
    return KillOutcome(
        run_id=run_id,
        parent_run=parent_run,
        task_instance=client.task_instance(dag_id, run_id, PARENT_TASK),
        child_runs=child_runs,
        killed=killed,
        given_up_after=given_up_after,
        seconds=time.monotonic() - started,
    )


def _wait_finished_noting_children(
    scenario: Scenario, dag_id: str, run_id: str, seen: int, timeout: float
) -> Json:
    """Wait for the parent run to finish, noting each child run beyond the ``seen`` ones it triggers."""

    def finished() -> Json | None:
        nonlocal seen
        if (count := len(scenario.runs_of(CHILD_DAG))) > seen:
            seen = count
            scenario.note(f"child run #{count} created")
        run = scenario.client.dag_run(dag_id, run_id)
        return run if run["state"] in FINISHED else None

    run = wait_for(finished, timeout, f"{dag_id} run {run_id} to finish")
    scenario.note(f"{dag_id} run finished: {run['state']}")
    return run


def lines_with(log: str, text: str) -> list[str]:
    """The log lines that contain ``text``."""
    return [line for line in log.splitlines() if text in line]


def logged_at(line: str) -> datetime:
    """When a task log line was written: each begins with its ISO timestamp (``Scenario.log``)."""
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))


def seconds_between(start: str | None, end: str | None) -> float:
    """Seconds between two of the API's ISO timestamps (0 when either is missing)."""
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def child_task_seconds(client: AirflowClient, child_runs: list[Json]) -> float:
    """
    The time the children's tasks held a worker slot, summed: the floor a fan-out's slots divide.

    Not the child runs' own lengths: a run counts as running while its task still waits for a slot.
    """
    total = 0.0
    for run in child_runs:
        ti = client.task_instance(CHILD_DAG, run["dag_run_id"], CHILD_TASK)
        total += seconds_between(ti["start_date"], ti["end_date"])
    return total
