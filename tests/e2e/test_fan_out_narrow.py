"""Fan-outs wider than the worker slots, on an Airflow with ``[core] parallelism = 4``.

A synchronous wait holds a slot per parent; with every slot held no child can start, so a synchronous
fan-out this wide stalls (measured once, in docs/deferrable.md; not waited for here). A deferrable parent
gives its slot up while it waits, so the fan-out finishes at any width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.flows import (
    ALREADY_FINISHED_EVENT,
    CHILD_DAG,
    DEFER_EVENT,
    RECONNECT_EVENT,
    TRIGGERED_EVENT,
    child_task_seconds,
    lines_with,
    seconds_between,
)
from tests.e2e.settings import NARROW
from tests.e2e.test_deferrable_crash_points import kill_in_hold

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import Json
    from tests.e2e.scenario import Scenario

pytestmark = pytest.mark.airflow_setup(NARROW)

TASK = "trigger_children"
WIDTH = 30
CHILD_SLEEP = 10
# Spread over the fan-out, so the kills land while other parents are waiting and children running.
VICTIMS = (2, 13, 24)


def makespan_note(scenario: Scenario, parent_run: Json, children: list[Json]) -> str:
    """The parent run's length beside what its children alone need of the slots, for the record."""
    makespan = seconds_between(parent_run["start_date"], parent_run["end_date"])
    child_seconds = child_task_seconds(scenario.client, children)
    assert NARROW.parallelism is not None
    floor = child_seconds / NARROW.parallelism
    note = (
        f"{len(children)} children on {NARROW.parallelism} slots: makespan {makespan:.0f}s, "
        f"children's total runtime / slots {floor:.0f}s, ratio {makespan / floor:.2f}"
    )
    scenario.note(note)
    return note


@pytest.mark.timeout(900, method="signal")
def test_deferrable_durable_fan_out_of_30_on_4_slots_with_3_parents_killed_before_deferring(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    client = scenario.client
    run_id = scenario.trigger(
        "fan_out_deferrable", count=WIDTH, sleep=CHILD_SLEEP, hold_items=list(VICTIMS), hold=120
    )
    for item in VICTIMS:
        kill_in_hold(scenario, "fan_out_deferrable", run_id, TASK, map_index=item)

    parent_run = scenario.wait_run_finished("fan_out_deferrable", run_id, timeout=600)
    children = scenario.wait_runs_finished(CHILD_DAG, WIDTH, timeout=60)
    record_property("fan_out_30_on_4_slots", makespan_note(scenario, parent_run, children))

    mapped = {
        ti["map_index"]: ti
        for ti in client.task_instances("fan_out_deferrable", run_id)
        if ti["task_id"] == TASK
    }
    assert parent_run["state"] == "success"
    assert {i: ti["state"] for i, ti in mapped.items()} == {i: "success" for i in range(WIDTH)}
    # Exactly one child run per item: no try of any parent triggered a second one.
    assert sorted(run["conf"]["item"] for run in children) == list(range(WIDTH))
    assert {run["state"] for run in children} == {"success"}
    child_of = {run["conf"]["item"]: run["dag_run_id"] for run in children}
    for item in VICTIMS:
        assert mapped[item]["try_number"] >= 2
        # Try 1 triggered the child and died before deferring.
        try_1 = scenario.log("fan_out_deferrable", run_id, TASK, 1, item)
        assert child_of[item] in lines_with(try_1, TRIGGERED_EVENT)[0]
        assert not lines_with(try_1, DEFER_EVENT)
        # A later try carried on with that same run: deferred on it or, when its slot came after the
        # child had ended (every slot busy), found it finished. No later try triggered anything.
        later = later_logs(scenario, run_id, item, mapped[item]["try_number"])
        carried_on = lines_with(later, RECONNECT_EVENT) + lines_with(later, ALREADY_FINISHED_EVENT)
        assert carried_on, later
        assert all(child_of[item] in line for line in carried_on)
        assert not lines_with(later, TRIGGERED_EVENT)
    # A parent whose trigger fires before the scheduler has processed its worker's exit on deferral
    # can be failed by that stale event (apache/airflow#67287); durable, its retry finds the child
    # finished. Recorded, not asserted: it depends on timing.
    extra = sorted(i for i, ti in mapped.items() if ti["try_number"] > (2 if i in VICTIMS else 1))
    scenario.note(f"parents that took a try more than their kill explains: {extra}")


def later_logs(scenario: Scenario, run_id: str, item: int, last_try: int) -> str:
    """The logs of tries 2 to ``last_try`` of one mapped parent; a try without a log is skipped."""
    logs = []
    for try_number in range(2, last_try + 1):
        try:
            logs.append(scenario.log("fan_out_deferrable", run_id, TASK, try_number, item))
        except httpx.HTTPStatusError as e:
            # A try failed by the race above before it started has no log, in the API or on disk.
            if e.response.status_code != 404:
                raise
    return "\n".join(logs)


# The two example fan-outs (dags/): one deferred task per item, and one task for all the items.
@pytest.mark.parametrize("dag_id", ["example_fan_out_mapped", "example_fan_out"])
@pytest.mark.timeout(600, method="signal")
def test_example_fan_out_wider_than_the_slots_finishes(scenario: Scenario, dag_id: str) -> None:
    assert NARROW.parallelism is not None
    width = 2 * NARROW.parallelism
    run_id = scenario.trigger(dag_id, count=width, sleep=2)

    parent_run = scenario.wait_run_finished(dag_id, run_id, timeout=400)
    children = scenario.wait_runs_finished(CHILD_DAG, width, timeout=60)

    assert parent_run["state"] == "success"
    assert sorted(run["conf"]["item"] for run in children) == list(range(width))
    assert {run["state"] for run in children} == {"success"}
