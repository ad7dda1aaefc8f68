"""How soon a fan-out's children were noticed, from the REST API's records (``bench/fan_out.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench.dags.bench import FAN_OUT_TASK
from bench.fan_out import noticed

if TYPE_CHECKING:
    from tests.e2e.client import Json


def at(second: float) -> str:
    return f"2026-11-21T12:{int(second) // 60:02d}:{second % 60:06.3f}Z"


def child(item: int, end: float | None, state: str = "success") -> Json:
    """A child run as ``GET /dagRuns`` gives it; its conf's item is the map index that triggered it."""
    return {
        "dag_run_id": f"child-{item}",
        "state": state,
        "end_date": None if end is None else at(end),
        "conf": {"sleep": 10, "tag": "t", "item": item},
    }


def task(map_index: int, end: float | None, state: str = "success", task_id: str = FAN_OUT_TASK) -> Json:
    """A parent task instance as ``GET /taskInstances`` lists it, one per map index."""
    return {
        "task_id": task_id,
        "map_index": map_index,
        "state": state,
        "end_date": None if end is None else at(end),
    }


PARENT = {"state": "success", "end_date": at(100.0)}


def test_each_task_and_the_last_child_and_the_run_end_are_measured_from_the_child_ends() -> None:
    children = [child(0, 30.0), child(1, 60.0), child(2, 45.0)]
    tasks = [task(-1, 5.0, task_id="build_confs"), task(0, 31.0), task(1, 63.5), task(2, 47.0)]

    found = noticed(PARENT, tasks, children)

    assert found.lags == pytest.approx([1.0, 3.5, 2.0])
    # The child that ended last (item 1, at 60 s): its task ended 3.5 s later, the run 40 s later.
    assert found.last_child == pytest.approx(3.5)
    assert found.run_end == pytest.approx(40.0)


def test_a_task_that_did_not_succeed_gives_no_figure_for_its_child() -> None:
    children = [child(0, 30.0), child(1, 60.0), child(2, None, state="running")]
    tasks = [task(0, 31.0), task(1, 90.0, state="failed"), task(2, None, state="running")]

    found = noticed({"state": "stalled", "end_date": at(90.0)}, tasks, children)

    assert found.lags == pytest.approx([1.0])
    assert found.last_child is None
    # A fan-out failed to free its slots did not end on its own: no run end.
    assert found.run_end is None


def test_no_finished_child_gives_no_figures() -> None:
    found = noticed(PARENT, [task(0, None, state="failed")], [child(0, None, state="queued")])

    assert (found.lags, found.last_child, found.run_end) == ([], None, None)
