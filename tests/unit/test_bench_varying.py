"""The varying-length case's figures from the REST API's records (``bench/varying.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.varying import detection, previous_success

if TYPE_CHECKING:
    from tests.e2e.client import Json


def at(second: float) -> str:
    return f"2026-11-21T12:{int(second) // 60:02d}:{second % 60:06.3f}Z"


def child_run(
    run_id: str,
    *,
    due: float,
    start: float,
    end: float | None,
    state: str = "success",
    logical: bool = True,
) -> Json:
    """A child Dag run as ``GET /dagRuns`` gives it, triggered (queued, due, logical date) at ``due``."""
    return {
        "dag_run_id": run_id,
        "state": state,
        "logical_date": at(due) if logical else None,
        "run_after": at(due),
        "queued_at": at(due),
        "start_date": at(start),
        "end_date": None if end is None else at(end),
    }


# A repetition's short run, then the 20 s run it primes, on one child Dag.
PRIME = child_run("prime", due=20, start=21, end=24)
MEASURED = child_run("measured", due=30, start=31, end=51)


def test_detection_is_the_parent_task_end_minus_the_child_run_end() -> None:
    task = {"state": "success", "end_date": at(53.5)}

    assert detection(task, MEASURED) == 2.5
    assert detection({**task, "state": "failed"}, MEASURED) is None
    assert detection(task, {**MEASURED, "state": "running"}) is None


def test_the_prediction_comes_from_the_latest_success_ended_before_the_wait_began() -> None:
    # An earlier round's 20 s run: ended after the short run, but older by logical date, as the history
    # look-up orders them.
    older_long = child_run("older-long", due=0, start=1, end=25)

    assert previous_success([older_long, PRIME, MEASURED], MEASURED) == PRIME


def test_a_run_ended_after_the_wait_began_or_failed_or_later_does_not_count() -> None:
    # Still running when the measured wait began: its end cannot have been predicted from.
    late = child_run("late", due=25, start=26, end=35)
    failed = child_run("failed", due=26, start=27, end=29, state="failed")
    # A later round's short run, triggered after the measured one.
    later = child_run("later", due=40, start=41, end=44)

    assert previous_success([PRIME, late, failed, later, MEASURED], MEASURED) == PRIME
    assert previous_success([late, failed, later, MEASURED], MEASURED) is None


def test_runs_without_a_logical_date_are_ordered_by_when_they_were_due() -> None:
    prime = child_run("prime", due=20, start=21, end=24, logical=False)
    measured = child_run("measured", due=30, start=31, end=51, logical=False)

    assert previous_success([prime, measured], measured) == prime
