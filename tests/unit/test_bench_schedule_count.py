"""The bench's computed request counts (``bench/schedule_count.py``) against the operator's real wait."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bench.model import Machine, Results
from bench.runner import schedule_figures
from bench.schedule_count import (
    LONG_CHILD_SECONDS,
    WAIT_EXTRA_MESSAGES,
    WAIT_EXTRA_REQUESTS,
    figure,
    our_requests,
    stock_checks,
)
from bench.targets import REQUESTS_FACTOR, requests_target
from standard_ext.wait import schedule as poll_schedule

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, Parent

WAITING: dict[str, Any] = {"wait_for_completion": True, "logical_date": None}
# What each of our wait's checks sends (standard_ext.wait.runs.task_progress).
CHECK = "GetTaskStates"


@pytest.mark.parametrize("seconds", [2.0, 20.0, 120.0, LONG_CHILD_SECONDS])
def test_our_computed_requests_are_what_the_synchronous_wait_sends(
    supervisor: FakeSupervisor, make_parent: Callable[..., Parent], clock: Clock, seconds: float
) -> None:
    # The steady state the bench computes for: the child Dag's last success took as long.
    supervisor.add_dag("child", run_seconds=seconds)
    supervisor.add_run("child", "earlier", seconds=seconds)
    clock.traveller.shift(seconds + 60)

    make_parent(**WAITING).run()

    kinds = supervisor.kinds_sent()
    waited = kinds[kinds.index("TriggerDagRun") + 1 :]
    assert len(waited) == our_requests(child_seconds=seconds)
    # Beyond its checks (one task-state question each), the wait sends what the figure adds, once each.
    beyond_checks = Counter(kind for kind in waited if kind != CHECK)
    assert beyond_checks == Counter(message.__name__ for message in WAIT_EXTRA_MESSAGES)
    assert WAIT_EXTRA_REQUESTS == len(WAIT_EXTRA_MESSAGES)


@pytest.mark.parametrize("seconds", [2.0, 90.0, LONG_CHILD_SECONDS])
def test_the_computed_stock_checks_are_what_the_stock_wait_sends(
    supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch, seconds: float
) -> None:
    # The stock loop itself (the task runner's _handle_trigger_dag_run), at its defaults, on the fake.
    from airflow.providers.common.compat.sdk import DagRunTriggerException
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator as Stock
    from airflow.sdk.execution_time import task_runner
    from structlog import get_logger

    from tests.fake_task import FakeTaskInstance

    supervisor.add_dag("child", run_seconds=seconds)
    # The loop sleeps with time.sleep: the test's clock moves instead.
    monkeypatch.setattr(time, "sleep", clock.traveller.shift)
    ti = FakeTaskInstance()
    context: Any = {"ti": ti, "task_instance": ti}
    stock = Stock(task_id="stock", trigger_dag_id="child", wait_for_completion=True)
    with pytest.raises(DagRunTriggerException) as prepared:
        stock.execute(context)
    # What follows the wait (the task's success handling) is not what is counted here.
    monkeypatch.setattr(task_runner, "_handle_current_task_success", lambda *args: ("done", "success"))

    task_runner._handle_trigger_dag_run(prepared.value, context, ti, get_logger())  # type: ignore[arg-type]

    sent = supervisor.kinds_sent()
    assert sent.count("GetDagRunState") == stock_checks(child_seconds=seconds)
    assert figure(seconds).stock == stock_checks(child_seconds=seconds)


def test_our_figure_walks_the_operators_schedule_anchored_at_the_first_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walked: list[poll_schedule.Schedule] = []

    def every_half_minute(schedule: poll_schedule.Schedule) -> Iterator[float]:
        walked.append(schedule)
        return itertools.count(0.0, 30.0)

    monkeypatch.setattr(poll_schedule, "check_offsets", every_half_minute)

    # The checks at 30, ..., 3600 s (none at 0: a run just triggered is first checked at the first step),
    # and the requests the wait makes besides.
    assert figure(LONG_CHILD_SECONDS).ours == 120 + WAIT_EXTRA_REQUESTS
    (schedule,) = walked
    # Seen started at its first check, as the wait's own Schedule.seen leaves it; predicted from an hour.
    assert (schedule.started_after, schedule.expected_seconds) == (0.0, LONG_CHILD_SECONDS)


def test_the_hour_long_target_reads_the_figure_the_runner_computes() -> None:
    figures = schedule_figures((2, 20))
    long = figures[-1]
    results = Results(
        started_at=datetime(2026, 11, 21, tzinfo=UTC),
        seconds=0.0,
        repetitions=1,
        quick=True,
        lengths=(2, 20),
        machine=Machine(2, "Linux", "3.11", "3.3.2", "1.21.0", (0.0, 0.0, 0.0)),
        schedule=figures,
    )

    target = requests_target(results)

    assert [f.child_seconds for f in figures] == [2.0, 20.0, LONG_CHILD_SECONDS]
    assert long == figure(LONG_CHILD_SECONDS)
    assert target.measured == f"{long.ours} computed (stock {long.stock} computed)"
    # The bound on the real schedule: a child that outlives no prediction costs no overdue checks.
    assert long.ours <= REQUESTS_FACTOR * long.stock
    assert target.verdict == "met"
