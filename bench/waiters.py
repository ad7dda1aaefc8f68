"""
Deferred parents on a real triggerer (``python -m bench --width``): what N waiters cost it, ours and stock's.

For each number of waiters and each operator, one after the other: a parent run of
``bench_waiters_<operator>`` maps one deferrable task per waiter, each triggering a run of the paused
``bench_paused_target``: the runs stay queued, so every waiter waits for as long as the bench measures
it, and the waiters are the same ones from the window's start to its end. Once all are deferred, the
bench does nothing for ``window`` seconds (no REST request), then reads:

- the triggerer's **CPU seconds** over the window (its process and the trigger runner, ``bench.cpu``);
- its **requests per second**, ours' and stock's alike: the in-process requests httpx logged in the
  triggerer's log over the window, by route (``bench.triggerer_requests``);
- ours' shared poller's **ticks** on the child Dag in the same log (``bench.triggerer_log``): how many
  wakes those requests took.

Should the triggerer's log carry no request (its logging plugin not loaded), the requests per second
are computed instead and say so: ours from the ticks, stock's from ``poke_interval``.

An idle window first, with no parent at all, is the triggerer's own baseline. Then the parent runs and
their children are marked failed, which ends the waits, and the next measurement waits for the
triggerer to drop the triggers.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)

from bench import triggerer_log, triggerer_requests
from bench.dags.bench import FAN_OUT_TASK, PAUSED_TARGET, WAITERS
from bench.schedule_count import default_of
from bench.width import read_from, size
from bench.width_model import IDLE, TRIGGERER, WaitersSample
from bench.width_plan import minutes, waiters_seconds
from tests.e2e.polling import wait_for
from tests.e2e.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.width_airflow import PostgresLocalAirflow
    from tests.e2e.client import AirflowClient, Json

# 1000 on request only (--waiters 1000): one mapped parent of 1000 deferrable tasks, at the triggerer's
# default [triggerer] capacity of 1000 triggers and under [core] max_map_length (1024); its parents take
# about eight minutes to defer on 2 cores.
WAITER_COUNTS = (1, 50, 200)
# Three of stock's poke intervals: each of its triggers polls three times, and ours' back-off reaches it.
WINDOW_SECONDS = 180.0
# How long the parents may take to defer, beyond a few seconds each.
DEFER_TIMEOUT_SECONDS = 300.0
# After the release: the triggerer cancels the triggers of tasks no longer deferred within its loop.
SETTLE_SECONDS = 15.0
OPERATORS = ("stock", "ours")


class TriggererLog(Protocol):
    """What ``logged`` reads of a width Airflow: its triggerer's log, and whether it carries the requests."""

    @property
    def triggerer_log(self) -> Path:
        """The triggerer's log."""

    def logs_requests(self) -> bool:
        """Whether the triggerer's log carries its in-process requests."""


def run(
    airflow: PostgresLocalAirflow,
    *,
    waiter_counts: tuple[int, ...],
    window: float,
    on_sample: Callable[[WaitersSample], None],
    on_error: Callable[[str, Exception], None],
    progress: Callable[[str], None] = print,
) -> None:
    """
    Measure the idle triggerer, then each operator's waiters at each count; a failure does not stop the rest.

    :param airflow: a running width Airflow.
    :param waiter_counts: the numbers of deferred parents.
    :param window: the seconds each measurement lasts.
    :param on_sample: given each measurement as it ends.
    :param on_error: given the name of a measurement that failed and why.
    :param progress: where the progress lines go.
    """
    plan = [(IDLE, 0), *((operator, n) for n in waiter_counts for operator in OPERATORS)]
    for operator, waiters in plan:
        name = f"{waiters} deferred parents, {operator}"
        planned = waiters_seconds(waiters=waiters, window=window, slots=airflow.slots)
        progress(f"[waiters] {name}: planned {minutes(planned)}")
        began = time.monotonic()
        try:
            found = measure(airflow, operator=operator, waiters=waiters, window=window)
        except Exception as e:
            on_error(name, e)
            continue
        progress(line(found, time.monotonic() - began, planned))
        on_sample(found)


def measure(airflow: PostgresLocalAirflow, *, operator: str, waiters: int, window: float) -> WaitersSample:
    """
    One measurement: ``waiters`` parents of ``operator`` deferred, then ``window`` seconds of waiting.

    :param airflow: a running width Airflow.
    :param operator: ``stock``, ``ours`` or ``IDLE`` (no parent).
    :param waiters: the deferred parents (0 with ``IDLE``).
    :param window: the seconds measured.
    """
    poke_interval = default_of(StockTriggerDagRunOperator, "poke_interval")
    if operator == IDLE:
        offset = size(airflow.triggerer_log)
        start, end, cpu = _window(airflow, window)
        sample = WaitersSample(
            operator=IDLE,
            waiters=0,
            deferred=0,
            settled=0.0,
            window=window,
            triggerer_cpu=cpu,
            poke_interval=poke_interval,
        )
        return logged(sample, airflow, offset=offset, start=start, end=end)
    client = airflow.client
    scenario = Scenario(client, f"waiters-{operator}-{waiters}", echo=False)
    dag_id = WAITERS[operator]
    began = time.monotonic()
    run_id = scenario.trigger(dag_id, count=waiters)
    try:
        wait_for(
            lambda: deferred(client.task_instances(dag_id, run_id)) >= waiters,
            DEFER_TIMEOUT_SECONDS + 5.0 * waiters,
            f"{waiters} deferred tasks in {dag_id} run {run_id}",
            interval=2.0,
        )
        settled = time.monotonic() - began
        offset = size(airflow.triggerer_log)
        start, end, cpu = _window(airflow, window)
        still = deferred(client.task_instances(dag_id, run_id))
    finally:
        # Whatever happened: waiters left deferred would be in the next measurement's triggerer.
        release(client, scenario, dag_id, run_id)
    sample = WaitersSample(
        operator=operator,
        waiters=waiters,
        deferred=still,
        settled=settled,
        window=window,
        triggerer_cpu=cpu,
        poke_interval=poke_interval,
    )
    return logged(sample, airflow, offset=offset, start=start, end=end)


def logged(
    sample: WaitersSample, airflow: TriggererLog, *, offset: int, start: datetime, end: datetime
) -> WaitersSample:
    """
    ``sample`` with what the triggerer's log says of its window: its requests, by route, and ours' ticks.

    :param sample: the measurement, its CPU seconds read.
    :param airflow: the width Airflow it ran on.
    :param offset: the size of the triggerer's log before the window (``bench.width.size``).
    :param start: the window's start.
    :param end: its end.
    """
    lines = read_from(airflow.triggerer_log, offset)
    found = triggerer_log.ticks_between(triggerer_log.ticks(lines, dag_id=PAUSED_TARGET), start, end)
    ticked = sample.operator == "ours" and bool(found)
    sample = replace(
        sample,
        poll_ticks=len(found) if ticked else None,
        poller_waiting=max(tick.waiting for tick in found) if ticked else None,
    )
    if not airflow.logs_requests():
        return sample
    requests = triggerer_requests.between(triggerer_requests.parse(lines), start, end)
    return replace(sample, requests=len(requests), routes=triggerer_requests.by_route(requests))


def deferred(task_instances: list[Json]) -> int:
    """
    How many of a waiters run's tasks are deferred.

    :param task_instances: the run's task instances, mapped ones expanded.
    """
    return sum(ti["task_id"] == FAN_OUT_TASK and ti["state"] == "deferred" for ti in task_instances)


def release(client: AirflowClient, scenario: Scenario, dag_id: str, run_id: str) -> None:
    """
    End the waits: the parent run and its children marked failed, then time for the triggers to go.

    The children too: queued runs left behind would be the scheduler's to look at in every later case.
    """
    client.set_dag_run_state(dag_id, run_id, "failed")
    for child in scenario.runs_of(PAUSED_TARGET):
        if child["state"] not in ("success", "failed"):
            client.set_dag_run_state(PAUSED_TARGET, child["dag_run_id"], "failed")
    time.sleep(SETTLE_SECONDS)


def _window(airflow: PostgresLocalAirflow, window: float) -> tuple[datetime, datetime, float]:
    """Sleep ``window`` seconds, sending nothing; return when it began and ended, and the triggerer's CPU s."""
    start = datetime.now(UTC)
    before = airflow.cpu_seconds()[TRIGGERER]
    time.sleep(window)
    spent = airflow.cpu_seconds()[TRIGGERER].since(before).total
    return start, datetime.now(UTC), spent


def line(sample: WaitersSample, took: float, planned: float) -> str:
    """The progress line of one measurement."""
    rate = sample.requests_per_second
    requests = "requests not logged" if rate is None else f"{rate:.3f} requests/s ({sample.counted})"
    if sample.routes:
        requests += " = " + ", ".join(f"{count} {route}" for route, count in sample.routes.items())
    return (
        f"[waiters] {sample.waiters} deferred parents, {sample.operator}: {sample.deferred} still deferred "
        f"after {sample.window:.0f} s, triggerer CPU {sample.triggerer_cpu:.2f} s, {requests}; "
        f"took {minutes(took)} (planned {minutes(planned)})"
    )
