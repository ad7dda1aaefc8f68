"""
The shared poll's ticks, read from the triggerer's log: how often our poller woke, beside its requests.

The triggerer asks the execution API in-process (``InProcessExecutionAPI``), so its requests reach no
access log; the width bench counts them from httpx's lines in the triggerer's log instead
(``bench.triggerer_requests``). The ticks tell the poller's wakes from its requests (a tick asks one
question or several). Our poller logs one ``Checked child Dag runs`` line per tick at debug level
(``standard_ext.triggers.poller``), outside every trigger's context, so the trigger runner hands it to
the triggerer's own log. Two loggers must let it through: the poller's in the trigger runner, and the
triggerer's (``airflow.jobs.triggerer_job_runner``), which re-logs every line the runner sends at the
runner's level; ``NAMESPACE_LEVELS`` sets both to debug and nothing else (neither logs anything else at
debug). The stock ``DagStateTrigger`` logs nothing per poll: only its requests show its polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bench.access_log import event_fields

if TYPE_CHECKING:
    from collections.abc import Iterable

TICK_EVENT = "Checked child Dag runs"
# [logging] namespace_levels for the width bench's Airflows: the two loggers above at debug.
NAMESPACE_LEVELS = "standard_ext.triggers.poller=DEBUG airflow.jobs.triggerer_job_runner=DEBUG"
# What one tick asked while every run it checked was still active, when the stored width runs that
# logged no request were made (2026-12): a count of the active runs and a question for their task
# states. Only those runs' requests per second are computed from it, and say so (WaitersSample.counted).
REQUESTS_PER_TICK = 2


@dataclass(frozen=True)
class Tick:
    """One poller wake: when, for which child Dag, how many runs it asked about and how many it waits on."""

    at: datetime
    dag_id: str
    checked: int
    waiting: int


def ticks(lines: Iterable[str], *, dag_id: str) -> list[Tick]:
    """
    Return the ticks of the poller of ``dag_id`` among ``lines`` (other lines are skipped).

    :param lines: lines of the triggerer's log.
    :param dag_id: the child Dag whose waiters' poll is counted.
    """
    found = []
    for line in lines:
        fields = event_fields(line, TICK_EVENT)
        if fields is None or fields.get("dag_id") != dag_id:
            continue
        found.append(
            Tick(
                at=datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00")),
                dag_id=dag_id,
                checked=int(fields.get("checked") or 0),
                waiting=int(fields.get("waiting") or 0),
            )
        )
    return found


def ticks_between(found: Iterable[Tick], start: datetime, end: datetime) -> list[Tick]:
    """
    The ticks from ``start`` to ``end`` (both included).

    :param found: what ``ticks`` read.
    :param start: the window's start (timezone-aware).
    :param end: its end.
    """
    return [tick for tick in found if start <= tick.at <= end]
