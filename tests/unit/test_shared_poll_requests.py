"""The shared poller's requests: one count a tick however many wait, a bisection per ended run, fair turns."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.execution_time.comms import GetDagRunState, GetTaskStates

from standard_ext.triggers.shared_poll import CHUNK, RunOutcome, pollers_of, wait_in_triggerer
from standard_ext.wait.progress import Watch
from tests.unit.virtual_time import (
    CHECKS_UP_TO_12S,
    CHILD,
    VirtualTime,
    cancel,
    counted_ids,
    let_the_loop_run,
    per_check,
    run_ids,
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
class TestRequestsPerCheck:
    @pytest.mark.parametrize(
        ("n", "ticks"),
        [
            (1, CHECKS_UP_TO_12S),
            (CHUNK, CHECKS_UP_TO_12S),
            # Ten chunks due every second: one of them a second, the others wait their turn.
            (1000, [float(t) for t in range(1, 13)]),
        ],
    )
    def test_one_count_per_tick_whatever_the_number_of_waiting_runs(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        n: int,
        ticks: list[float],
    ) -> None:
        ids = run_ids(n)
        for run_id in ids:
            supervisor.add_run(CHILD, run_id, seconds=3600)
        virtual.horizon = 12

        async def scenario() -> None:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ids]
            await until_stalled_or_done(virtual, tasks)
            assert not any(task.done() for task in tasks)
            await cancel(tasks)

        asyncio.run(scenario())

        assert per_check(stamped) == dict.fromkeys(ticks, 1)
        for at in ticks:
            [chunk] = counted_ids(stamped, at)
            assert len(chunk) == min(n, CHUNK)
            if n <= CHUNK:
                assert chunk == ids

    @pytest.mark.parametrize(
        ("position", "seen_at", "extra"),
        [
            # Chunk 0 is asked about at 1 s and next at 11 s, after the other nine had their turn.
            (0, 11.0, 7),
            (99, 11.0, 8),
            # Chunk 5 has its first turn at 6 s.
            (500, 6.0, 7),
        ],
    )
    def test_one_run_ending_among_a_thousand_costs_a_bisection_in_its_chunks_tick(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        position: int,
        seen_at: float,
        extra: int,
    ) -> None:
        ids = run_ids(1000)
        ends_at = 2.5
        for i, run_id in enumerate(ids):
            supervisor.add_run(CHILD, run_id, seconds=ends_at if i == position else 3600)
        virtual.horizon = 12

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ids]
            await until_stalled_or_done(virtual, tasks)
            await cancel([task for task in tasks if not task.done()])
            return tasks

        tasks = asyncio.run(scenario())

        assert [i for i, task in enumerate(tasks) if not task.cancelled()] == [position]
        assert tasks[position].result() == RunOutcome(state="success")
        # One count a second; the tick whose chunk holds the ended run pays the bisection on top, once.
        every_second = {float(t): 1 for t in range(1, 13)}
        assert per_check(stamped) == every_second | {seen_at: 1 + extra}
        assert extra <= math.ceil(math.log2(CHUNK)) + 1
        # Seen within ceil(1000 / 100) s of its end, however many runs wait beside it.
        assert seen_at - ends_at <= math.ceil(len(ids) / CHUNK)
        assert [(t, msg.run_id) for t, msg in stamped if isinstance(msg, GetDagRunState)] == [
            (seen_at, ids[position])
        ]
        later = [counted_ids(stamped, at) for at in every_second if at > seen_at]
        assert ids[position] not in itertools.chain.from_iterable(itertools.chain.from_iterable(later))

    def test_the_bisection_is_bounded_wherever_the_ended_run_sits_in_its_chunk(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        ids = run_ids(CHUNK)
        virtual.horizon = 1

        async def scenario() -> None:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ids]
            await until_stalled_or_done(virtual, tasks)
            await cancel(tasks)

        extras = []
        for ended in ids:
            virtual.start_over()
            for run_id in ids:
                supervisor.add_run(CHILD, run_id, seconds=0 if run_id == ended else 3600, outcome="failed")
            stamped.clear()
            asyncio.run(scenario())
            # One count for the chunk, then the bisection's counts and the one state read.
            assert [msg.run_id for _, msg in stamped if isinstance(msg, GetDagRunState)] == [ended]
            extras.append(len(stamped) - 1)

        assert set(extras) == {7, 8}
        assert max(extras) == math.ceil(math.log2(CHUNK)) + 1

    def test_triggers_waiting_on_the_same_run_share_one_entry(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "shared", seconds=2.5, outcome="failed")
        supervisor.add_run(CHILD, "other", seconds=3600)
        virtual.horizon = 5

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [
                asyncio.create_task(waiting(run_id)) for run_id in ("shared", "shared", "other", "shared")
            ]
            await let_the_loop_run()
            assert pollers_of(asyncio.get_running_loop())[CHILD].run_ids == ["shared", "other"]
            await until_stalled_or_done(virtual, tasks)
            await cancel([tasks[2]])
            return tasks

        tasks = asyncio.run(scenario())

        assert [tasks[i].result() for i in (0, 1, 3)] == [RunOutcome(state="failed")] * 3
        assert counted_ids(stamped, 1.0) == [["shared", "other"]]
        assert counted_ids(stamped, 4.0) == [["other"]]
        assert len([msg for _, msg in stamped if isinstance(msg, GetDagRunState)]) == 1

    def test_a_newcomer_due_sooner_wakes_the_sleeping_poller(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "old", seconds=3600)
        supervisor.add_run(CHILD, "new", seconds=3600)
        virtual.horizon = 3

        async def scenario() -> None:
            # Waiting for 1000 s: checked every 60 s, next at 27 s (-1000 + 67 + 60 * 16).
            old = asyncio.create_task(waiting("old", since=-1000))
            await until_stalled_or_done(virtual, [old])
            virtual.stalled().clear()
            new = asyncio.create_task(waiting("new"))
            await until_stalled_or_done(virtual, [old, new])
            await cancel([old, new])

        asyncio.run(scenario())

        assert per_check(stamped) == {1.0: 1, 2.0: 1, 3.0: 1}
        assert counted_ids(stamped, 1.0) == [["new"]]


@pytest.mark.usefixtures("virtual")
class TestOneChunkPerTick:
    def test_a_thousand_due_runs_cost_a_tick_what_one_does_and_each_is_checked_every_ten_ticks(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        # From 19 s on the runs are in their back-off (checks at 19, then 35 s): the last busy second is 28 s.
        horizon = 28

        def watched_waits(n: int) -> list[tuple[float, BaseModel]]:
            virtual.start_over()
            virtual.horizon = horizon
            stamped.clear()
            ids = run_ids(n)
            for run_id in ids:
                supervisor.add_run(CHILD, run_id, seconds=3600)

            async def scenario() -> None:
                tasks = [
                    asyncio.create_task(
                        wait_in_triggerer(dag_id=CHILD, run_id=run_id, schedule=schedule(), watch=Watch())
                    )
                    for run_id in ids
                ]
                await until_stalled_or_done(virtual, tasks)
                await cancel(tasks)

            asyncio.run(scenario())
            return list(stamped)

        alone, crowded = watched_waits(1), watched_waits(1000)

        def kinds_per_tick(messages: list[tuple[float, BaseModel]]) -> set[tuple[str, ...]]:
            return {tuple(type(msg).__name__ for t, msg in messages if t == at) for at in per_check(messages)}

        # The same one question at every tick, one run waiting or a thousand: their task states.
        assert kinds_per_tick(alone) == kinds_per_tick(crowded) == {("GetTaskStates",)}
        assert list(per_check(alone)) == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 11.0, 19.0]
        assert list(per_check(crowded)) == [float(t) for t in range(1, horizon + 1)]
        # A fair rotation: the first ten ticks take the chunks in registration order, and from then on
        # every run is asked about once in every ten ticks (ceil(1000 / 100)), never starved.
        ids = run_ids(1000)
        for tick in range(10):
            assert counted_ids(crowded, float(tick + 1), GetTaskStates) == [
                ids[tick * CHUNK : (tick + 1) * CHUNK]
            ]
        checked_at: dict[str, list[float]] = {}
        for t, msg in crowded:
            if isinstance(msg, GetTaskStates):
                for run_id in msg.run_ids or []:
                    checked_at.setdefault(run_id, []).append(t)
        assert sorted(checked_at) == ids
        bound = math.ceil(len(ids) / CHUNK)
        for times in checked_at.values():
            assert times[0] <= bound
            assert [b - a for a, b in itertools.pairwise(times)] == [bound] * (len(times) - 1)
        assert sum(map(len, checked_at.values())) == horizon * CHUNK

    def test_a_run_left_out_of_a_tick_is_asked_about_at_the_next_before_those_just_checked(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        ids = wait_on_long_runs(supervisor, virtual, count=150, horizon=3)

        assert counted_ids(stamped, 1.0) == [ids[:100]]
        # The 50 left out at 1 s kept their due time (1 s) and come first; then those due at 2 s.
        assert counted_ids(stamped, 2.0) == [ids[100:] + ids[:50]]
        # Left out at 2 s: the last 50 of those due at 2 s, first at 3 s; then, of those due at 3 s,
        # the earlier registered.
        assert counted_ids(stamped, 3.0) == [ids[50:100] + ids[:50]]
