"""
The hour (``python -m bench --hour``, ``make bench-hour``): the state requests of a wait on a 60-minute child.

Case 2 counts each wait's requests for 2, 20 and 120 s children and computes the hour's from the
operators' schedules. This case waits the hour on a real Airflow instead: one parent per variant
(stock and ours, synchronous and deferrable, and ours deferrable with ``end_from_trigger=True``),
triggered together, each on a 3,600 s child of its own (``bench/dags/bench.py``). It runs on PostgreSQL
and the LocalExecutor with the width bench's triggerer (``bench.width_airflow``), whose log carries its
in-process requests.

A wait's requests are the state requests about its child run once it was triggered
(``bench.access_log.state_requests_per_run``), from two places:

- the parent **task**'s, in the api-server's access log: the synchronous wait's every check, and a
  deferrable task's requests before it defers and after it resumes;
- the **triggerer**'s, from its log (``bench.triggerer_requests``): a deferred wait's checks. Ours run
  in the shared poller, so this column is a shared-poll waiter's cost.

The child Dags have no earlier run, so ours waits without a prediction of the child's length; for an
hour its schedule checks as often either way (``tests/unit/test_bench_hour.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import access_log, latency, triggerer_requests
from bench.access_log import Request
from bench.dags.bench import HOUR_SECONDS
from bench.model import Machine
from bench.width_airflow import PostgresLocalAirflow
from tests.e2e.harness import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bench.access_log import RunKey
    from bench.model import WaitSample

# A parent and a child per variant at once, and the Dag processor's and scheduler's own: the width
# bench's 32 slots leave most of them idle.
SLOTS = 32
# The in-process client's paths lack the api-server's mount point; the access log's have it.
SERVED_PREFIX = "/execution"


@dataclass(frozen=True)
class HourWait:
    """One parent's wait on its hour-long child, and the state requests it made, by where they went."""

    sample: WaitSample
    #: The parent task's own requests, in the api-server's access log.
    task_requests: float
    #: The triggerer's in-process requests about the child run (none on the synchronous path).
    triggerer_requests: float

    @property
    def requests(self) -> float:
        """Everything the wait asked about its child run."""
        return self.task_requests + self.triggerer_requests


@dataclass(frozen=True)
class HourResults:
    """What ``run`` measured: the waits, how long it took, and whether the triggerer logged its requests."""

    started_at: datetime
    seconds: float
    length: int
    machine: Machine
    waits: tuple[HourWait, ...]
    #: The triggerer's plugin said it logs every in-process request; without it, that column means nothing.
    triggerer_logged: bool


def run(*, length: int = HOUR_SECONDS, progress: Callable[[str], None] = print) -> HourResults:
    """
    Start an Airflow, wait once per variant on a child of ``length`` seconds, and count the requests.

    :param length: the child's length (``HOUR_SECONDS``, or one of case 1's lengths for a trial run).
    :param progress: where progress lines go.
    """
    started_at, machine = datetime.now(UTC), Machine.here()
    began = time.monotonic()
    logs = PROJECT_ROOT / "bench-logs" / started_at.strftime("hour-%Y%m%d-%H%M%S")
    progress(f"[hour] one wait per variant on a {length} s child; about {length / 60 + 3:.0f} min")
    with PostgresLocalAirflow(slots=SLOTS, keep_logs_in=logs) as airflow:
        progress(f"[hour] Airflow ready at {airflow.base_url}")
        samples = latency.run(airflow, lengths=(length,), repetitions=1, stagger=0.0, progress=progress)
        served = access_log.parse(airflow.api_server_log.read_text(errors="replace").splitlines())
        lines = airflow.triggerer_log.read_text(errors="replace").splitlines()
        logged = triggerer_requests.logging_on(lines)
        in_process = [as_served(request) for request in triggerer_requests.parse(lines)]
    progress(f"[hour] Airflow stopped; its logs are in {logs}")
    return HourResults(
        started_at=started_at,
        seconds=time.monotonic() - began,
        length=length,
        machine=machine,
        waits=tuple(count(samples, served=served, in_process=in_process)),
        triggerer_logged=logged,
    )


def as_served(request: Request) -> Request:
    """
    Return an in-process request as the api-server's access log would show it: under ``/execution``.

    :param request: one of ``bench.triggerer_requests.parse``'s requests.
    """
    return Request(
        at=request.at,
        method=request.method,
        path=SERVED_PREFIX + request.path,
        query=request.query,
        status=request.status,
    )


def count(
    samples: Iterable[WaitSample], *, served: list[Request], in_process: list[Request]
) -> list[HourWait]:
    """
    Return each wait with its state requests: the task's (``served``) and the triggerer's (``in_process``).

    :param samples: the waits, as ``bench.latency.run`` returned them.
    :param served: the api-server's requests.
    :param in_process: the triggerer's, as ``as_served`` turned them.
    """
    samples = list(samples)
    runs: list[RunKey] = [s.child for s in samples if s.child is not None]
    by_task = access_log.state_requests_per_run(served, runs)
    # The trigger requests are in the access log only: each run counts from its trigger there.
    by_triggerer = access_log.state_requests_per_run(
        [*(r for r in served if r.trigger is not None), *in_process], runs
    )
    return [
        HourWait(
            sample=s,
            task_requests=0.0 if s.child is None else by_task[s.child],
            triggerer_requests=0.0 if s.child is None else by_triggerer[s.child],
        )
        for s in samples
    ]
