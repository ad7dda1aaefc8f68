"""Virtual time and helpers for the shared poller's tests: a clock that moves only when the poller sleeps."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.execution_time.comms import GetDRCount

from standard_ext.triggers.shared_poll import wait_in_triggerer
from standard_ext.wait.schedule import Schedule

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

    import time_machine
    from pydantic import BaseModel

    from standard_ext.triggers.shared_poll import RunOutcome
    from tests.fake_supervisor import FakeSupervisor

START = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
T0 = START.timestamp()
CHILD = "child"
# The checks of a wait that began at 0 with the defaults (poke_interval=60, fast_poll_window=5), up to 12 s.
CHECKS_UP_TO_12S = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 11.0]


@dataclass
class VirtualTime:
    """
    Frozen time that moves only when the poller sleeps, by exactly what it asked for.

    A poller that would sleep past ``horizon`` (seconds after START) stays asleep instead, and
    ``stalled`` is set, so a test can look at a wait that would otherwise go on for ever.
    """

    traveller: time_machine.Traveller
    horizon: float = math.inf
    _stalled: asyncio.Event | None = field(default=None, repr=False)
    _released: asyncio.Event | None = field(default=None, repr=False)

    def elapsed(self) -> float:
        return time.time() - T0

    def start_over(self) -> None:
        """Back to START, for a scenario in a new event loop."""
        self.traveller.move_to(START)
        self._stalled = self._released = None

    def stalled(self) -> asyncio.Event:
        # Created on first use, inside the test's event loop.
        if self._stalled is None:
            self._stalled = asyncio.Event()
        return self._stalled

    def extend(self, horizon: float) -> None:
        """Let a stalled poller go on, up to a later horizon."""
        self.horizon = horizon
        self.stalled().clear()
        if self._released is not None:
            self._released.set()
            self._released = None

    async def pause(self, seconds: float) -> None:
        while self.elapsed() + seconds > self.horizon:
            self.stalled().set()
            if self._released is None:
                self._released = asyncio.Event()
            # Until extend(), or until the poller is woken (a newcomer, the last waiter leaving) or cancelled.
            await self._released.wait()
        # Let the waiters act on what this check handed them (a reading passes a few tasks on its way)
        # before the clock moves on, as they would in the real second before the next check.
        await let_the_loop_run()
        self.traveller.shift(seconds)


def per_check(
    messages: list[tuple[float, BaseModel]], kind: type[BaseModel] | None = None
) -> dict[float, int]:
    """How many messages (of ``kind``) each check sent, by the second it happened at."""
    return dict(Counter(t for t, msg in messages if kind is None or isinstance(msg, kind)))


def counted_ids(
    messages: list[tuple[float, BaseModel]], at: float, kind: type[BaseModel] = GetDRCount
) -> list[list[str]]:
    """The run ids each question of ``kind`` (a count, by default) asked about at second ``at``."""
    return [
        list(getattr(msg, "run_ids", None) or []) for t, msg in messages if t == at and isinstance(msg, kind)
    ]


def schedule(*, since: float = 0.0, poke_interval: float = 60, fast_poll_window: float = 5) -> Schedule:
    return Schedule(waiting_since=T0 + since, poke_interval=poke_interval, fast_poll_window=fast_poll_window)


def run_ids(n: int) -> list[str]:
    return [f"run-{i:04d}" for i in range(n)]


def waiting(run_id: str, *, dag_id: str = CHILD, since: float = 0.0) -> Coroutine[Any, Any, RunOutcome]:
    return wait_in_triggerer(dag_id=dag_id, run_id=run_id, schedule=schedule(since=since))


async def until_stalled_or_done(virtual: VirtualTime, tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Run until every task is done, or until the poller would sleep past the horizon."""
    stalled = asyncio.ensure_future(virtual.stalled().wait())
    done = asyncio.ensure_future(asyncio.wait(tasks))
    await asyncio.wait({stalled, done}, return_when=asyncio.FIRST_COMPLETED)
    stalled.cancel()
    done.cancel()


async def cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def let_the_loop_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def run_to_the_horizon(virtual: VirtualTime, waits: Sequence[Coroutine[Any, Any, Any]]) -> None:
    """Run ``waits`` side by side in a fresh event loop until they stall at the horizon, then cancel them."""

    async def scenario() -> None:
        tasks = [asyncio.create_task(wait) for wait in waits]
        await until_stalled_or_done(virtual, tasks)
        await cancel(tasks)

    asyncio.run(scenario())


def wait_on_long_runs(
    supervisor: FakeSupervisor, virtual: VirtualTime, *, count: int, horizon: float
) -> list[str]:
    """Wait on ``count`` runs of ``CHILD`` that outlast the test, up to ``horizon``; return their ids in order."""
    ids = run_ids(count)
    for run_id in ids:
        supervisor.add_run(CHILD, run_id, seconds=3600)
    virtual.horizon = horizon
    run_to_the_horizon(virtual, [waiting(run_id) for run_id in ids])
    return ids
