"""The shared poller's ticks: at least a second apart, and when a newcomer may wake a sleeping poller."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.execution_time.comms import GetDRCount

from standard_ext.triggers import shared_poll
from standard_ext.triggers.shared_poll import MIN_TICK_SECONDS, wait_in_triggerer
from tests.unit.virtual_time import (
    CHILD,
    VirtualTime,
    cancel,
    counted_ids,
    let_the_loop_run,
    per_check,
    schedule,
    until_stalled_or_done,
    wait_on_long_runs,
    waiting,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor

# A poller that misses a wake-up waits for ever; fail instead of hanging the suite.
pytestmark = pytest.mark.timeout(30)


@pytest.mark.usefixtures("virtual")
class TestTickSpacing:
    def test_ticks_are_a_second_apart_while_runs_remain_due(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        wait_on_long_runs(supervisor, virtual, count=250, horizon=4)

        # 150 runs still due after the tick at 1 s: the next tick waits for 2 s all the same.
        ticks = list(per_check(stamped))
        assert ticks == [1.0, 2.0, 3.0, 4.0]
        assert all(b - a >= MIN_TICK_SECONDS for a, b in itertools.pairwise(ticks))
        assert per_check(stamped) == dict.fromkeys(ticks, 1)

    def test_a_schedule_finer_than_a_second_is_checked_every_second(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        virtual.horizon = 3

        async def scenario() -> None:
            # Due every quarter of a second.
            task = asyncio.create_task(
                wait_in_triggerer(dag_id=CHILD, run_id="a", schedule=schedule(poke_interval=0.25))
            )
            await until_stalled_or_done(virtual, [task])
            await cancel([task])

        asyncio.run(scenario())

        assert per_check(stamped) == {0.25: 1, 1.25: 1, 2.25: 1}

    def test_a_newcomer_wakes_the_poller_no_sooner_than_the_spacing_allows(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for run_id in ("old", "new", "late"):
            supervisor.add_run(CHILD, run_id, seconds=3600)
        sleeps: list[tuple[float, float]] = []

        async def recorded(seconds: float) -> None:
            sleeps.append((virtual.elapsed(), seconds))
            await virtual.pause(seconds)

        monkeypatch.setattr(shared_poll, "pause", recorded)
        virtual.horizon = 30

        async def scenario() -> None:
            # Waiting for 1000 s: checked every 60 s on the beat, at 30 s (-1000 + 67 moves to -930) and 90 s.
            old = asyncio.create_task(waiting("old", since=-1000))
            await until_stalled_or_done(virtual, [old])
            # Registered at 30 s, due at 30.5 s: half a second after a tick.
            virtual.stalled().clear()
            virtual.horizon = 31
            new = asyncio.create_task(waiting("new", since=29.5))
            await until_stalled_or_done(virtual, [old, new])
            # Registered at 31 s, just after a tick, due at 31.25 s: no tick can come before 32 s,
            # which the poller sleeps for already; nothing to wake it for.
            virtual.stalled().clear()
            late = asyncio.create_task(waiting("late", since=30.25))
            await let_the_loop_run()
            virtual.extend(33)
            await until_stalled_or_done(virtual, [old, new, late])
            await cancel([old, new, late])

        asyncio.run(scenario())

        assert per_check(stamped, GetDRCount) == {30.0: 1, 31.0: 1, 32.0: 1, 33.0: 1}
        assert counted_ids(stamped, 30.0) == [["old"]]
        # Due at 30.5, 31.5, 32.5 s: checked at 31, 32, 33 s. The most overdue first: late (31.25) at 32 s.
        assert counted_ids(stamped, 31.0) == [["new"]]
        assert counted_ids(stamped, 32.0) == [["late", "new"]]
        assert counted_ids(stamped, 33.0) == [["late", "new"]]
        # Every sleep is a real one; "new" woke the 60 s sleep once, to sleep until 31 s; "late" did not
        # wake the sleep until 32 s.
        assert sleeps == [(0.0, 30.0), (30.0, 60.0), (30.0, 1.0), (31.0, 1.0), (32.0, 1.0), (33.0, 1.0)]
