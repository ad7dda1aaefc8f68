"""How soon the one-task fan-out noticed each child end, from its task's log (``bench/fanout_notice.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fan_out import with_one_task_lags
from bench.fanout_notice import notice_lags, noticed_ends
from bench.model import Noticed
from bench.width_model import WidthCase, WidthResults
from bench.width_targets import NOTICE_P95_SECONDS, notice_target
from tests.unit.test_bench_width_report import width_results


def progress(at: str, done: int) -> str:
    # As tests.e2e.client renders the log endpoint's events: timestamp, level, event, then the fields.
    return (
        f'2026-12-07T21:10:{at}Z info Fan-out progress dag_id="bench_fan_out_child_one_task" done={done} '
        f"succeeded={done} failed=0 active={8 - done} not_started=0 items=8"
    )


def ended(at: str, item: int) -> str:
    return (
        f'2026-12-07T21:10:{at}Z info Dag run of the fan-out ended dag_id="c" run_id="r{item}" '
        f'item={item} state="success"'
    )


def child(end: str | None, state: str = "success") -> dict[str, Any]:
    return {"state": state, "end_date": None if end is None else f"2026-12-07T21:10:{end}+00:00"}


def test_each_progress_line_marks_the_ends_it_newly_counts() -> None:
    lines = [
        "2026-12-07T21:10:00.000000Z info Deferring until enough of the fan-out's Dag runs end ends=8",
        progress("11.000000", 2),
        progress("14.000000", 2),
        progress("20.500000", 5),
    ]

    assert [t.second + t.microsecond / 1e6 for t in noticed_ends(lines)] == [11, 11, 20.5, 20.5, 20.5]


def test_the_synchronous_path_s_lines_mark_one_end_each() -> None:
    assert len(noticed_ends([ended("11.000000", 0), ended("12.000000", 3)])) == 2


def test_lines_of_two_processes_are_taken_in_time_order_and_a_resumed_count_adds_nothing() -> None:
    # The trigger's line can come after the task's later line in the rendered log.
    lines = [
        progress("20.000000", 3),
        ended("12.000000", 0),
        progress("15.000000", 2),
        progress("25.000000", 3),
    ]

    assert [t.second for t in noticed_ends(lines)] == [12, 15, 20]


def test_each_ended_child_is_paired_with_the_notice_of_its_rank() -> None:
    lines = [progress("11.000000", 1), progress("14.000000", 3)]
    # Ended at 10, 12 and 13; one still running; one failed without an end date cannot be paired.
    children = [child("12.000000"), child("10.000000"), child("13.000000"), child(None, "running")]

    assert notice_lags(lines, children) == [1.0, 2.0, 1.0]


def test_ends_the_log_never_counted_have_no_lag() -> None:
    assert notice_lags([progress("11.000000", 1)], [child("10.000000"), child("10.500000")]) == [1.0]


class FakeClient:
    """The REST client's task log, one text per try."""

    def __init__(self, logs: dict[int, list[str]]) -> None:
        self.logs = logs
        self.asked: list[int] = []

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        self.asked.append(try_number)
        return "\n".join(self.logs[try_number])


def one_task(try_number: int) -> dict[str, Any]:
    return {
        "task_id": "trigger_children",
        "map_index": -1,
        "try_number": try_number,
        "dag_id": "p",
        "dag_run_id": "r",
    }


def test_the_one_task_fan_out_s_lags_come_from_every_try_s_log() -> None:
    client = FakeClient({1: [progress("11.000000", 1)], 2: [progress("15.000000", 2)]})
    found = Noticed(lags=[], last_child=None, run_end=3.0)

    lags = with_one_task_lags(
        client,  # type: ignore[arg-type]
        found,
        task_instances=[one_task(2)],
        children=[child("10.000000"), child("12.000000")],
    )

    assert client.asked == [1, 2]
    assert lags == Noticed(lags=[1.0, 3.0], last_child=3.0, run_end=3.0)


def test_the_last_child_is_named_only_when_every_end_was_counted() -> None:
    client = FakeClient({1: [progress("11.000000", 1)]})

    lags = with_one_task_lags(
        client,  # type: ignore[arg-type]
        Noticed(lags=[], last_child=None, run_end=None),
        task_instances=[one_task(1)],
        children=[child("10.000000"), child("12.000000")],
    )

    assert (lags.lags, lags.last_child) == ([1.0], None)


def test_a_mapped_fan_out_keeps_its_tasks_lags_and_reads_no_log() -> None:
    client = FakeClient({})
    mapped = Noticed(lags=[0.5], last_child=0.5, run_end=1.0)

    kept = with_one_task_lags(
        client,  # type: ignore[arg-type]
        mapped,
        task_instances=[{**one_task(1), "map_index": 0}],
        children=[child("10.000000")],
    )

    assert kept is mapped
    assert client.asked == []


def _with_one_task(results: WidthResults, **notice: Any) -> WidthResults:
    cases = [
        WidthCase(**{**vars(c), **notice}) if c.label.startswith("ours, TriggerDagRunsOperator") else c
        for c in results.cases
    ]
    return WidthResults(**{**vars(results), "cases": cases})


@pytest.mark.parametrize(
    ("notice", "verdict"),
    [
        ({"notice_p50": 2.0, "notice_p95": NOTICE_P95_SECONDS, "noticed": 60}, "met"),
        ({"notice_p50": 2.0, "notice_p95": NOTICE_P95_SECONDS + 0.1, "noticed": 60}, "missed"),
        # Children whose end was never counted fail the target whatever the others' lags.
        ({"notice_p50": 2.0, "notice_p95": 1.0, "noticed": 59}, "missed"),
        ({"notice_p50": None, "notice_p95": None, "noticed": None}, "not run"),
    ],
)
def test_the_notice_target_holds_the_p95_of_every_child(notice: dict[str, Any], verdict: str) -> None:
    found = notice_target(_with_one_task(width_results(), **notice), slots=32, count=60)

    assert found.verdict == verdict
