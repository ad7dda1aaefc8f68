"""
``auto_clear_failed_tasks`` on a real Airflow: a failed child run resumes where it failed, under its run id.

The Dags are in ``tests/e2e/dags/e2e_resume.py``: a child of three chained tasks whose second fails on its
first try only. The parents clear through the connection ``airflow_api_default`` (the Airflow's own API
server, as its admin). The try numbers come from the REST API: the cleared task ran twice, the others once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.scenario import Scenario

CHILD = "resume_child"
CHILD_TASKS = ("first", "second", "third")
ITEMS, FAILING = 8, (2, 5)


def try_numbers(scenario: Scenario, run_id: str) -> tuple[int, ...]:
    """Each child task's try number in the run, in chain order, as the REST API gives it."""
    return tuple(scenario.client.task_instance(CHILD, run_id, task)["try_number"] for task in CHILD_TASKS)


@pytest.mark.usefixtures("api_connection")
@pytest.mark.timeout(300, method="signal")
def test_the_parent_succeeds_with_one_child_run_whose_failed_task_ran_twice(scenario: Scenario) -> None:
    run_id = scenario.trigger("resume_parent")

    parent = scenario.wait_run_finished("resume_parent", run_id, timeout=240)

    assert parent["state"] == "success"
    ti = scenario.client.task_instance("resume_parent", run_id, "trigger_child")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    (child,) = scenario.runs_of(CHILD)
    assert child["state"] == "success"
    assert try_numbers(scenario, child["dag_run_id"]) == (1, 2, 1)
    retry_log = scenario.log("resume_parent", run_id, "trigger_child", 2)
    assert "Cleared the failed tasks of the Dag run; waiting on it again" in retry_log
    assert "second" in retry_log


@pytest.mark.usefixtures("api_connection")
@pytest.mark.timeout(360, method="signal")
def test_a_fan_out_redrives_its_two_failed_items_in_place(scenario: Scenario) -> None:
    run_id = scenario.trigger("resume_fan_out")

    parent = scenario.wait_run_finished("resume_fan_out", run_id, timeout=300)

    assert parent["state"] == "success"
    ti = scenario.client.task_instance("resume_fan_out", run_id, "trigger_children")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    children = scenario.runs_of(CHILD)
    assert len(children) == ITEMS
    assert {child["state"] for child in children} == {"success"}
    by_item = {child["conf"]["item"]: child["dag_run_id"] for child in children}
    for item, child_run_id in by_item.items():
        expected = (1, 2, 1) if item in FAILING else (1, 1, 1)
        assert try_numbers(scenario, child_run_id) == expected, f"item {item}"


@pytest.mark.timeout(360, method="signal")
def test_without_the_flag_each_retry_triggers_new_runs(scenario: Scenario) -> None:
    run_id = scenario.trigger("resume_fan_out_off")

    parent = scenario.wait_run_finished("resume_fan_out_off", run_id, timeout=300)

    # A new run's second task is on its first try again, so the failing items fail again.
    assert parent["state"] == "failed"
    children = scenario.wait_runs_finished(CHILD, ITEMS + len(FAILING), timeout=60)
    assert len(children) == ITEMS + len(FAILING)
    failed = sorted(child["conf"]["item"] for child in children if child["state"] == "failed")
    assert failed == sorted(FAILING * 2)
    assert all(try_numbers(scenario, child["dag_run_id"])[1] == 1 for child in children)
