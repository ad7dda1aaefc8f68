"""
How soon the one-task fan-out (``TriggerDagRunsOperator``) noticed each child run end, from its task's log.

A mapped fan-out has a task per child, whose end says when that child's end was noticed
(``bench.fan_out.noticed``). The one-task fan-out has one task for all of them, so its log says:

- deferred, each ``Fan-out progress`` line of its trigger gives the items ``done`` at that moment;
- synchronous, each ``Dag run of the fan-out ended`` line gives one run's end as it was noticed.

The k-th noticed end is the moment the fan-out first knew of k ended runs; the k-th child run to end
is the k-th by its ``end_date``. A child's *notice lag* is the one minus the other: runs mostly end in
the order they were seen ending, and where two swap, the lag is the same for the pair as a whole.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from tests.e2e.scenario import FINISHED

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.e2e.client import Json

PROGRESS_EVENT = "Fan-out progress"
ENDED_EVENT = "Dag run of the fan-out ended"
# A line as tests.e2e.client renders the log endpoint's events: "<timestamp> <level> <event> k=v ...".
_LINE = re.compile(r"^(?P<at>\d{4}-\d\d-\d\dT\S+) \S+ (?P<event>.+?)(?: (?P<fields>\w+=.*))?$")
_DONE = re.compile(r"(?:^| )done=(?P<done>\d+)(?: |$)")


def noticed_ends(lines: Iterable[str]) -> list[datetime]:
    """
    Return when the fan-out noticed each end, in order: the k-th is when it first knew of k ended runs.

    :param lines: the task's log, every try's, as ``AirflowClient.task_log`` renders it.
    """
    events: list[tuple[datetime, int | None]] = []
    for line in lines:
        if (match := _LINE.match(line)) is None:
            continue
        at = datetime.fromisoformat(match["at"].replace("Z", "+00:00"))
        if match["event"] == ENDED_EVENT:
            events.append((at, None))
        elif match["event"] == PROGRESS_EVENT and (count := _DONE.search(match["fields"] or "")) is not None:
            events.append((at, int(count["done"])))
    times: list[datetime] = []
    # In time order: the trigger's lines and the task's come from two processes.
    for at, done in sorted(events, key=lambda event: event[0]):
        # A progress line's count is cumulative: one already reached (a try that resumed) adds nothing.
        times.extend([at] if done is None else [at] * (done - len(times)))
    return times


def notice_lags(lines: Iterable[str], child_runs: Iterable[Json]) -> list[float]:
    """
    Return each ended child run's notice lag in seconds, in the order the runs ended.

    Ended runs the log never counted (the parent stopped first) have no lag.

    :param lines: the fan-out task's log (see ``noticed_ends``).
    :param child_runs: the fan-out's child runs, as the REST API lists them.
    """
    ends = sorted(
        datetime.fromisoformat(run["end_date"])
        for run in child_runs
        if run["state"] in FINISHED and run.get("end_date")
    )
    return [(at - end).total_seconds() for at, end in zip(noticed_ends(lines), ends, strict=False)]
