"""
Case 2's figure for a child too long to wait for: the requests a synchronous wait makes, from the schedule.

Ours asks :mod:`standard_ext.wait.schedule` for its checks (its public schedule, whatever it has become) and
adds what the wait asks besides (see ``WAIT_EXTRA_MESSAGES``); stock sleeps ``poke_interval`` before
each check, one request each. Both use each operator's own default parameters, read from its
signature rather than copied here. ``tests/unit/test_bench_schedule_count.py`` holds the figure to the
requests our operator really sends on the fake supervisor.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk.execution_time.comms import GetDagRunState, GetPreviousDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.wait import schedule as poll_schedule

if TYPE_CHECKING:
    from pydantic import BaseModel

# How long the child that is computed, not waited for, runs.
LONG_CHILD_SECONDS = 3600.0
# What our wait asks besides one request per check (``standard_ext.wait.in_task``), by the Task SDK message each
# is: the child Dag's last successful run when the wait begins (``standard_ext.wait.history``), and the run's
# own state once a check sees its tasks all finished (``standard_ext.wait.runs.get_state``). The test holds
# them to the messages the operator's real wait sends beyond its checks, kind by kind.
WAIT_EXTRA_MESSAGES: tuple[type[BaseModel], ...] = (GetPreviousDagRun, GetDagRunState)
WAIT_EXTRA_REQUESTS = len(WAIT_EXTRA_MESSAGES)


def default_of(operator: type[object], parameter: str) -> float:
    """
    Return the default of one of ``operator``'s constructor parameters.

    :param operator: an operator class.
    :param parameter: the parameter's name.
    :raises ValueError: no class of the operator gives the parameter a default.
    """
    # Ours takes the stock parameters through **kwargs: the first class in the MRO that names it says.
    for cls in operator.__mro__:
        if (init := vars(cls).get("__init__")) is None:
            continue
        found = inspect.signature(init).parameters.get(parameter)
        if found is not None and found.default is not inspect.Parameter.empty:
            return float(found.default)
    raise ValueError(f"{operator.__name__} has no default for {parameter!r}")


def our_checks(*, child_seconds: float) -> int:
    """
    Return how many checks our wait makes on a child that ends ``child_seconds`` after it began.

    The count includes the check that sees the end. The child Dag's last run is taken to have lasted
    as long (the steady state of a Dag that runs regularly), so a schedule that predicts the end from
    it gets its prediction.

    :param child_seconds: when the child ends, in seconds after the wait began.
    """
    # The run starts at once and is seen started at the first check, as on a Dag with slots to spare:
    # anchored the way the wait anchors it (Schedule.seen), so the figure follows the wait's own rules.
    schedule = poll_schedule.Schedule(
        waiting_since=0.0,
        poke_interval=default_of(TriggerDagRunOperator, "poke_interval"),
        fast_poll_window=default_of(TriggerDagRunOperator, "fast_poll_window"),
        expected_seconds=child_seconds,
    ).seen(started=True, after=0.0, waiting_seen=False)
    # A run just triggered is first checked at the schedule's first step, not at 0 (standard_ext.wait).
    offsets = (offset for offset in poll_schedule.check_offsets(schedule) if offset > 0)
    for count, offset in enumerate(offsets, start=1):
        if offset >= child_seconds:
            return count
    raise AssertionError("unreachable: the schedule never ends")  # pragma: no cover


def our_requests(*, child_seconds: float) -> int:
    """
    Return how many requests our synchronous wait makes on a child of ``child_seconds``.

    :param child_seconds: when the child ends, in seconds after the wait began.
    """
    return our_checks(child_seconds=child_seconds) + WAIT_EXTRA_REQUESTS


def stock_checks(*, child_seconds: float) -> int:
    """
    Return how many checks (one request each) the stock synchronous wait makes on a child of ``child_seconds``.

    It sleeps ``poke_interval`` before each check, so it checks ``child_seconds / poke_interval``
    times (60 for an hour at the default 60 s), rounded up, and at least once.

    :param child_seconds: when the child ends, in seconds after the wait began.
    """
    poke_interval = default_of(StockTriggerDagRunOperator, "poke_interval")
    return max(1, math.ceil(child_seconds / poke_interval))


@dataclass(frozen=True)
class ScheduleFigure:
    """The requests each operator's synchronous wait makes on a child of ``child_seconds``, at defaults."""

    child_seconds: float
    ours: int
    stock: int


def figure(child_seconds: float) -> ScheduleFigure:
    """
    Return both operators' requests for a child of ``child_seconds``.

    :param child_seconds: the child's length, in seconds.
    """
    return ScheduleFigure(
        child_seconds=child_seconds,
        ours=our_requests(child_seconds=child_seconds),
        stock=stock_checks(child_seconds=child_seconds),
    )
