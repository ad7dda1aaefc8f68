"""
Case 5: the shared poll at scale, in one event loop as in one triggerer process, on the fake supervisor.

For each number of waiters, that many :class:`~standard_ext.triggers.dag_run.DagRunTrigger` s (at our
operator's default schedule, as a deferred parent builds them) wait on runs of one child Dag that do
not end, in virtual time (time-machine): the poller's sleeps move the clock instead of waiting, as in
``tests/unit/test_shared_poll_requests.py``, so ``VIRTUAL_SECONDS`` of waiting take a few real seconds.
Every poller wake is a *tick*: its requests are the messages the fake supervisor received since the last one,
its CPU the process time spent meanwhile (``time.process_time()``, every thread) minus the fake
supervisor's own, which stands in for the api-server's.

All waiters begin at the same moment, so their checks fall due together: the most a tick can find due.
A tick asks about at most 100 of them and ticks are at least a second apart, so 1,000 waiters take ten
ticks where 1 or 100 take one: more ticks, each asking the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from unittest import mock

import structlog
import time_machine
from airflow.sdk.execution_time import task_runner

from bench.model import PollScale
from bench.schedule_count import default_of
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.triggers import shared_poll
from standard_ext.triggers.dag_run import DagRunTrigger
from tests.fake_supervisor import FakeSupervisor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import BaseModel

WAITERS = (1, 100, 1000)
VIRTUAL_SECONDS = 600.0
CHILD_DAG = "child"
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Meter:
    """Stands in for ``SUPERVISOR_COMMS``: passes each message to the fake supervisor, counting it."""

    supervisor: FakeSupervisor
    sent: int = 0
    server_cpu: float = 0.0

    def send(self, msg: BaseModel) -> BaseModel | None:
        """Answer ``msg`` as the fake supervisor does, and count it and the CPU its answer took."""
        began = time.process_time()
        try:
            return self.supervisor.send(msg)
        finally:
            self.sent += 1
            self.server_cpu += time.process_time() - began


@dataclass
class Ticks:
    """The poller's clock: each of its sleeps ends a tick, records it, and moves virtual time on."""

    traveller: time_machine.Traveller
    meter: Meter
    horizon: float
    requests: list[int] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _mark: tuple[int, float, float] = (0, 0.0, 0.0)

    def start(self) -> None:
        """Begin a tick: what was sent and the CPU spent so far are its baseline."""
        self._mark = (self.meter.sent, time.process_time(), self.meter.server_cpu)

    async def pause(self, seconds: float) -> None:
        """
        Stand in for the poller's sleep: close the tick, then move virtual time on by ``seconds``.

        :param seconds: how long the poller would sleep.
        """
        # The waiters act on what this tick handed them (their progress readings) before it is closed.
        for _ in range(10):
            await asyncio.sleep(0)
        sent, cpu, server = self._mark
        self.requests.append(self.meter.sent - sent)
        self.cpu_ms.append(((time.process_time() - cpu) - (self.meter.server_cpu - server)) * 1000)
        if time.time() - START.timestamp() + seconds > self.horizon:
            self.done.set()
            # Asleep until the waiters are cancelled and the last one out wakes the poller to stop.
            await asyncio.Event().wait()
        self.traveller.shift(seconds)
        self.start()


def measure(*, waiters: int, virtual_seconds: float = VIRTUAL_SECONDS) -> PollScale:
    """
    Wait ``virtual_seconds`` with ``waiters`` triggers on one child Dag; return each tick's figures.

    Ticks that asked nothing (the poller's first sleep, begun as the triggers registered, before any run
    was due) are left out.

    :param waiters: how many triggers wait, each on a run of its own.
    :param virtual_seconds: how long they wait, in virtual time.
    """
    supervisor = FakeSupervisor()
    meter = Meter(supervisor)
    with ExitStack() as stack:
        traveller = stack.enter_context(time_machine.travel(START, tick=False))
        stack.enter_context(mock.patch.object(task_runner, "SUPERVISOR_COMMS", meter, create=True))
        run_ids = [f"run-{i:05d}" for i in range(waiters)]
        for run_id in run_ids:
            # Runs that outlast the measurement: no tick ever finds one ended.
            supervisor.add_run(CHILD_DAG, run_id, seconds=virtual_seconds * 10)
        ticks = asyncio.run(_wait(traveller, meter, run_ids, virtual_seconds, stack))
    kept = [(n, cpu) for n, cpu in zip(ticks.requests, ticks.cpu_ms, strict=True) if n]
    return PollScale(
        waiters=waiters,
        requests=[n for n, _ in kept],
        cpu_ms=[cpu for _, cpu in kept],
        virtual_seconds=virtual_seconds,
    )


async def _wait(
    traveller: time_machine.Traveller,
    meter: Meter,
    run_ids: Sequence[str],
    horizon: float,
    stack: ExitStack,
) -> Ticks:
    # Created in the loop that uses it: its event belongs there.
    ticks = Ticks(traveller, meter, horizon)
    stack.enter_context(mock.patch.object(shared_poll, "pause", ticks.pause))
    ticks.start()
    tasks = [asyncio.create_task(_until_event(_trigger(run_id))) for run_id in run_ids]
    await ticks.done.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return ticks


def _trigger(run_id: str) -> DagRunTrigger:
    return DagRunTrigger(
        dag_id=CHILD_DAG,
        run_id=run_id,
        poke_interval=default_of(TriggerDagRunOperator, "poke_interval"),
        fast_poll_window=default_of(TriggerDagRunOperator, "fast_poll_window"),
        waiting_since=time.time(),
    )


async def _until_event(trigger: DagRunTrigger) -> None:
    async for _event in trigger.run():
        return


def run(
    *, waiter_counts: Sequence[int] = WAITERS, progress: Callable[[str], None] = print
) -> list[PollScale]:
    """
    Measure the shared poll at each of ``waiter_counts``.

    :param waiter_counts: the numbers of waiting triggers.
    :param progress: where each measurement's line goes.
    """
    # The triggers log each wait's start and progress: a thousand lines that say nothing here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        scales = []
        for waiters in waiter_counts:
            scale = measure(waiters=waiters)
            scales.append(scale)
            progress(
                f"[shared poll] {waiters} waiter(s): {len(scale.requests)} ticks in "
                f"{scale.virtual_seconds:.0f} virtual s, requests per tick {min(scale.requests)}-"
                f"{max(scale.requests)}, triggerer CPU per tick p50 {sorted(scale.cpu_ms)[len(scale.cpu_ms) // 2]:.1f} ms"
            )
        return scales
    finally:
        structlog.reset_defaults()
