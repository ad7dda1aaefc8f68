"""The shared poller's registry: one poller per child Dag and event loop, started and stopped by its waits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from standard_ext.triggers.shared_poll import RunOutcome, pollers_of
from tests.unit.virtual_time import (
    CHILD,
    VirtualTime,
    cancel,
    let_the_loop_run,
    schedule,
    until_stalled_or_done,
    waiting,
)

if TYPE_CHECKING:
    from standard_ext.triggers import shared_poll
    from tests.fake_supervisor import FakeSupervisor

# A poller that misses a wake-up waits for ever; fail instead of hanging the suite.
pytestmark = pytest.mark.timeout(30)


@pytest.mark.usefixtures("virtual")
class TestRegistry:
    def test_cancelling_a_wait_deregisters_it_and_the_last_one_out_stops_the_poller(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        supervisor.add_run(CHILD, "b", seconds=3600)
        virtual.horizon = 2

        async def scenario() -> None:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ("a", "a", "b")]
            await until_stalled_or_done(virtual, tasks)
            poller = pollers_of(asyncio.get_running_loop())[CHILD]
            await cancel(tasks[:1])
            assert poller.run_ids == ["a", "b"]
            await cancel(tasks[2:])
            assert poller.run_ids == ["a"]
            assert pollers_of(asyncio.get_running_loop()) == {CHILD: poller}
            await cancel(tasks[1:2])
            assert poller.run_ids == []
            assert pollers_of(asyncio.get_running_loop()) == {}
            await let_the_loop_run()
            assert poller.task is not None
            assert poller.task.done()
            assert not poller.task.cancelled()

        asyncio.run(scenario())

    def test_the_poller_stops_when_its_last_run_ends(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=1)

        async def scenario() -> None:
            task = asyncio.create_task(waiting("a"))
            await let_the_loop_run()
            poller = pollers_of(asyncio.get_running_loop())[CHILD]
            assert await task == RunOutcome(state="success")
            await let_the_loop_run()
            assert poller.task is not None
            assert poller.task.done()
            assert pollers_of(asyncio.get_running_loop()) == {}

        asyncio.run(scenario())

    def test_one_poller_per_child_dag(self, supervisor: FakeSupervisor, virtual: VirtualTime) -> None:
        virtual.horizon = 0

        async def scenario() -> None:
            tasks = [asyncio.create_task(waiting("a", dag_id=dag_id)) for dag_id in ("one", "two", "one")]
            await let_the_loop_run()
            pollers = pollers_of(asyncio.get_running_loop())
            assert sorted(pollers) == ["one", "two"]
            assert pollers["one"].run_ids == ["a"]
            assert pollers["one"] is not pollers["two"]
            await cancel(tasks)

        asyncio.run(scenario())

    def test_each_event_loop_gets_its_own_poller(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        virtual.horizon = 0
        loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]

        async def start() -> tuple[asyncio.Task[RunOutcome], shared_poll.Poller]:
            task = asyncio.create_task(waiting("a"))
            await let_the_loop_run()
            return task, pollers_of(asyncio.get_running_loop())[CHILD]

        try:
            started = [loop.run_until_complete(start()) for loop in loops]
            (task_one, poller_one), (task_two, poller_two) = started

            assert poller_one is not poller_two
            assert pollers_of(loops[0]) == {CHILD: poller_one}
            assert pollers_of(loops[1]) == {CHILD: poller_two}
            for loop, (task, poller) in zip(loops, started, strict=True):
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
                assert poller.task is not None
                loop.run_until_complete(poller.task)
                assert pollers_of(loop) == {}
        finally:
            for loop in loops:
                loop.close()

    def test_a_stopped_poller_refuses_newcomers(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        virtual.horizon = 0

        async def scenario() -> None:
            task = asyncio.create_task(waiting("a"))
            await let_the_loop_run()
            poller = pollers_of(asyncio.get_running_loop())[CHILD]
            await cancel([task])

            with pytest.raises(RuntimeError, match="has stopped"):
                poller.register(run_id="a", schedule=schedule())
            # The next trigger gets a poller of its own, which starts polling.
            again = asyncio.create_task(waiting("a"))
            await let_the_loop_run()
            fresh = pollers_of(asyncio.get_running_loop())[CHILD]
            assert fresh is not poller
            assert fresh.task is not None
            assert not fresh.task.done()
            await cancel([again])

        asyncio.run(scenario())
