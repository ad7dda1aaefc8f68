"""One synchronous ``TriggerDagRunsOperator`` task fans 40 items out over 4 slots, killed mid-way.

The parent (``e2e_fan_out_one_task``, ``tests/e2e/dags/e2e_fan_out_one_task.py``) keeps at most 8 child runs
active; one item fails on its first run only; the parent's task process is SIGKILLed once at least 10
items are done and several runs are active. Of the 4 slots the parent holds one and the child tasks at
most 3 (the child's ``max_active_tis_per_dag``), so most of the window's runs wait queued: the window, not
the slots, bounds the active runs, and a retry of the parent never waits for a slot.

Whether the item fails before the kill (the killed try stops starting items; the next try redrives it)
or after it (the next try reconnects, sees it fail, stops; the try after redrives it) depends on timing.
What holds either way, and is asserted: 41 child runs (40 first runs and one redrive), each item with
exactly one successful run, the failing item with a failed run and then a successful one, exactly one
redrive in all the tries' logs, the retry after the kill carrying on with the saved runs (reconnecting to
runs that were active at the kill, keeping the succeeded), the results in item order, and never more than
8 child runs active.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from tests.e2e.flows import TRIGGERED_EVENT, lines_with, seconds_between
from tests.e2e.kill import kill_task_process
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED
from tests.e2e.settings import NARROW

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.e2e.client import AirflowClient, Json
    from tests.e2e.scenario import Scenario

pytestmark = pytest.mark.airflow_setup(NARROW)

PARENT_DAG = "e2e_fan_out_one_task"
CHILD_DAG = "e2e_fan_out_one_task_child"
PARENT_TASK = "trigger_items"
CHILD_TASK = "work"
ITEMS = 40
# The Dag's max_active.
MAX_ACTIVE = 8
# Started once 5 items are done and queued behind others, so it usually fails around the kill.
FAIL_ITEM = 12
CHILD_SLEEP = 4
# Mid-way: this many items done, and this many runs active, so the next try still finds some running
# (it needs a slot first, which a child may take).
DONE_AT_KILL = 10
ACTIVE_AT_KILL = 6
TIMEOUT = 300.0
ACTIVE = frozenset({"queued", "running"})

# What the operator logs (standard_ext/operators/modes/fanout_plan.py and fanout_mode.py).
CARRY_ON_EVENT = "Carrying on with the fan-out saved by an earlier try"
REDRIVE_EVENT = "Redriving the items whose Dag runs failed, under new run ids"
ENDED_EVENT = "Dag run of the fan-out ended"
SAVED_EVENT = "Saved the fan-out's run ids"


@dataclass(frozen=True)
class Kill:
    """The parent's try that was SIGKILLed, and the child runs as they were at that moment."""

    try_number: int
    pid: int
    done: int
    active_run_ids: frozenset[str]
    failed_before: bool


def kill_parent_mid_way(scenario: Scenario, run_id: str) -> Kill:
    """SIGKILL the parent's task process (whichever try runs) once the fan-out is mid-way."""
    client = scenario.client

    def mid_way() -> Kill | None:
        runs = scenario.runs_of(CHILD_DAG)
        done = [run for run in runs if run["state"] in FINISHED]
        active = [run for run in runs if run["state"] in ACTIVE]
        if len(done) < DONE_AT_KILL or len(active) < ACTIVE_AT_KILL:
            return None
        ti = client.task_instance(PARENT_DAG, run_id, PARENT_TASK)
        if ti["state"] != "running" or not ti["pid"]:
            return None
        try:
            kill_task_process(ti["pid"], ti["id"])
        except psutil.NoSuchProcess:
            # That try ended just now; the next one will be mid-way soon enough.
            return None
        return Kill(
            try_number=ti["try_number"],
            pid=ti["pid"],
            done=len(done),
            active_run_ids=frozenset(run["dag_run_id"] for run in active),
            failed_before=any(run["state"] == "failed" for run in done),
        )

    kill = wait_for(mid_way, TIMEOUT, f"{PARENT_TASK} running mid-way through the fan-out", interval=0.5)
    scenario.note(
        f"SIGKILL task process of {PARENT_TASK} try {kill.try_number} (pid {kill.pid}) with "
        f"{kill.done} items done, {len(kill.active_run_ids)} active, item {FAIL_ITEM} "
        f"{'already' if kill.failed_before else 'not yet'} failed"
    )
    return kill


def max_active(runs: list[Json]) -> int:
    """
    The most runs active at one instant, a run active from its creation (``queued_at``) to its end.

    The operator counts a run active from its trigger until a check sees it ended, which is longer on both
    sides, so this never counts more than the operator's window held. An end and a start at the same
    instant do not overlap (the operator starts an item only after it saw another end).
    """
    events: list[tuple[datetime, int]] = []
    for run in runs:
        start = run.get("queued_at") or run["start_date"]
        events += [(datetime.fromisoformat(start), 1), (datetime.fromisoformat(run["end_date"]), -1)]
    most = active = 0
    for _, change in sorted(events):
        active += change
        most = max(most, active)
    return most


def xcom_value(client: AirflowClient, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
    """A task's XCom as the REST API stores it (JSON), decoded."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
    value = client._get(path)["value"]
    return json.loads(value) if isinstance(value, str) else value


def carry_on_counts(line: str) -> dict[str, int]:
    """How many items the carry-on line says the try reconnected to, kept, redrove, triggered as saved."""
    names = "trigger_saved|reconnect|keep|redrive"
    return {name: int(value) for name, value in re.findall(rf"\b({names})=(\d+)\b", line)}


@pytest.mark.timeout(600, method="signal")
def test_one_task_fans_40_items_out_on_4_slots_killed_mid_way_with_one_redrive(
    scenario: Scenario, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    client = scenario.client
    marker_dir = tmp_path / "first-runs"
    marker_dir.mkdir()
    run_id = scenario.trigger(
        PARENT_DAG, count=ITEMS, sleep=CHILD_SLEEP, fail_item=FAIL_ITEM, marker_dir=str(marker_dir)
    )
    kill = kill_parent_mid_way(scenario, run_id)
    killed_at = time.monotonic()
    scenario.wait_task_running(PARENT_DAG, run_id, PARENT_TASK, kill.try_number + 1, TIMEOUT)
    retry_after = time.monotonic() - killed_at
    record_property("fan_out_one_task_retry_running_after_kill_s", round(retry_after, 1))
    scenario.note(f"try {kill.try_number + 1} running {retry_after:.1f}s after the kill")

    parent_run = scenario.wait_run_finished(PARENT_DAG, run_id, TIMEOUT)
    children = scenario.wait_runs_finished(CHILD_DAG, ITEMS + 1, timeout=60)
    ti = client.task_instance(PARENT_DAG, run_id, PARENT_TASK)
    tries = client.task_tries(PARENT_DAG, run_id, PARENT_TASK)
    logs = {t: scenario.log(PARENT_DAG, run_id, PARENT_TASK, t) for t in range(1, ti["try_number"] + 1)}
    redrives = [(t, line) for t, log in logs.items() for line in lines_with(log, REDRIVE_EVENT)]
    most = max_active(children)
    makespan = seconds_between(parent_run["start_date"], parent_run["end_date"])
    record_property("fan_out_one_task_makespan_s", round(makespan, 1))
    record_property("fan_out_one_task_max_active_runs", most)
    record_property("fan_out_one_task_killed_try", kill.try_number)
    record_property("fan_out_one_task_failed_before_kill", kill.failed_before)
    record_property("fan_out_one_task_redrive_try", [t for t, _ in redrives])
    scenario.note(
        f"{len(children)} child runs, at most {most} active; makespan {makespan:.0f}s; "
        f"redrive in try {[t for t, _ in redrives]}; {ti['try_number']} tries"
    )

    # The parent succeeded on its last try; every earlier one failed (the killed one, and the one that
    # saw the item fail when that came after the kill).
    assert parent_run["state"] == "success"
    assert ti["state"] == "success"
    assert ti["try_number"] > kill.try_number
    assert [t["state"] for t in tries] == ["failed"] * (ti["try_number"] - 1) + ["success"]

    # 40 first runs and one redrive; every item has one successful run; the failing item failed first.
    assert len(children) == ITEMS + 1, Counter(run["conf"]["item"] for run in children)
    runs_of_item: dict[int, list[Json]] = {}
    for run in sorted(children, key=lambda run: run["queued_at"]):
        runs_of_item.setdefault(run["conf"]["item"], []).append(run)
    assert sorted(runs_of_item) == list(range(ITEMS))
    states = {item: [run["state"] for run in runs] for item, runs in runs_of_item.items()}
    assert states == {item: ["failed", "success"] if item == FAIL_ITEM else ["success"] for item in states}
    succeeded = [runs_of_item[item][-1]["dag_run_id"] for item in range(ITEMS)]
    failed_run_id = runs_of_item[FAIL_ITEM][0]["dag_run_id"]

    # Never more than the window active, counted strictly (from each run's creation to its end).
    assert most <= MAX_ACTIVE

    # Results in item order, and the run ids the parent ends with are the successful runs.
    results = xcom_value(client, PARENT_DAG, run_id, PARENT_TASK, "return_value")
    assert results == [{CHILD_TASK: {"item": item}} for item in range(ITEMS)]
    assert xcom_value(client, PARENT_DAG, run_id, PARENT_TASK, "trigger_run_ids") == succeeded

    # The ids were saved once, by try 1; every later try carried on with them.
    assert [t for t, log in logs.items() if lines_with(log, SAVED_EVENT)] == [1]
    assert all(lines_with(logs[t], CARRY_ON_EVENT) for t in range(2, ti["try_number"] + 1))
    # The try after the kill reconnected to runs that were active at the kill, and kept the succeeded.
    after = logs[kill.try_number + 1]
    carry_on = carry_on_counts(lines_with(after, CARRY_ON_EVENT)[0])
    record_property("fan_out_one_task_carry_on", carry_on)
    scenario.note(f"try {kill.try_number + 1} carried on: {carry_on}")
    assert carry_on["reconnect"] >= 1, after
    assert carry_on["keep"] >= DONE_AT_KILL - 1, after
    waited_on = {rid for rid in kill.active_run_ids for line in lines_with(after, ENDED_EVENT) if rid in line}
    assert waited_on, f"try {kill.try_number + 1} waited on none of the runs active at the kill:\n{after}"

    # Exactly one redrive, of the failing item's failed run, in all the tries.
    assert len(redrives) == 1, redrives
    assert f"items=[{FAIL_ITEM}]" in redrives[0][1]
    assert failed_run_id in redrives[0][1]
    # No run was triggered twice, and every trigger was one of this scenario's child runs.
    triggered = Counter(
        rid for log in logs.values() for line in lines_with(log, TRIGGERED_EVENT) for rid in _run_ids(line)
    )
    assert set(triggered) <= {run["dag_run_id"] for run in children}
    assert max(triggered.values()) == 1


def _run_ids(line: str) -> list[str]:
    return re.findall(r'run_id="([^"]+)"', line)
