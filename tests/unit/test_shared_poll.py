"""The shared poller: requests per check, bisection, errors, the per-loop registry; and its schedule."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount, GetTaskStates

from standard_ext.progress import EarlyEnd, Watch
from standard_ext.triggers import shared_poll
from standard_ext.triggers.shared_poll import (
    CHUNK,
    MIN_TICK_SECONDS,
    PollError,
    RunOutcome,
    pollers_of,
    wait_in_triggerer,
)
from tests.fakes import api_error
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

    from tests.fakes import FakeSupervisor

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

        # The same two questions at every tick, one run waiting or a thousand.
        assert kinds_per_tick(alone) == kinds_per_tick(crowded) == {("GetDRCount", "GetTaskStates")}
        assert list(per_check(alone)) == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 11.0, 19.0]
        assert list(per_check(crowded)) == [float(t) for t in range(1, horizon + 1)]
        # A fair rotation: the first ten ticks take the chunks in registration order, and from then on
        # every run is asked about once in every ten ticks (ceil(1000 / 100)), never starved.
        ids = run_ids(1000)
        for tick in range(10):
            assert counted_ids(crowded, float(tick + 1)) == [ids[tick * CHUNK : (tick + 1) * CHUNK]]
        checked_at: dict[str, list[float]] = {}
        for t, msg in crowded:
            if isinstance(msg, GetDRCount):
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
        virtual.horizon = 27

        async def scenario() -> None:
            # Waiting for 1000 s: checked every 60 s, at 27 s (-1000 + 67 + 60 * 16) and 87 s.
            old = asyncio.create_task(waiting("old", since=-1000))
            await until_stalled_or_done(virtual, [old])
            # Registered at 27 s, due at 27.5 s: half a second after a tick.
            virtual.stalled().clear()
            virtual.horizon = 28
            new = asyncio.create_task(waiting("new", since=26.5))
            await until_stalled_or_done(virtual, [old, new])
            # Registered at 28 s, just after a tick, due at 28.25 s: no tick can come before 29 s,
            # which the poller sleeps for already; nothing to wake it for.
            virtual.stalled().clear()
            late = asyncio.create_task(waiting("late", since=27.25))
            await let_the_loop_run()
            virtual.extend(30)
            await until_stalled_or_done(virtual, [old, new, late])
            await cancel([old, new, late])

        asyncio.run(scenario())

        assert per_check(stamped, GetDRCount) == {27.0: 1, 28.0: 1, 29.0: 1, 30.0: 1}
        assert counted_ids(stamped, 27.0) == [["old"]]
        # Due at 27.5, 28.5, 29.5 s: checked at 28, 29, 30 s. The most overdue first: late (28.25) at 29 s.
        assert counted_ids(stamped, 28.0) == [["new"]]
        assert counted_ids(stamped, 29.0) == [["late", "new"]]
        assert counted_ids(stamped, 30.0) == [["late", "new"]]
        # Every sleep is a real one; "new" woke the 60 s sleep once, to sleep until 28 s; "late" did not
        # wake the sleep until 29 s.
        assert sleeps == [(0.0, 27.0), (27.0, 60.0), (27.0, 1.0), (28.0, 1.0), (29.0, 1.0), (30.0, 1.0)]


@pytest.mark.usefixtures("virtual")
class TestTaskStates:
    def test_watched_runs_cost_one_task_state_question_per_tick_and_plain_waits_none(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        watched, plain = run_ids(150), [f"plain-{i}" for i in range(50)]
        for run_id in watched + plain:
            supervisor.add_run(CHILD, run_id, seconds=3600)
        virtual.horizon = 3

        async def scenario() -> None:
            tasks = [
                asyncio.create_task(
                    wait_in_triggerer(dag_id=CHILD, run_id=run_id, schedule=schedule(), watch=Watch())
                )
                for run_id in watched
            ] + [asyncio.create_task(waiting(run_id)) for run_id in plain]
            await until_stalled_or_done(virtual, tasks)
            await cancel(tasks)

        asyncio.run(scenario())

        # 200 runs, one chunk a tick: one count, and one task-state question for its watched runs only.
        assert per_check(stamped, GetDRCount) == {1.0: 1, 2.0: 1, 3.0: 1}
        assert per_check(stamped, GetTaskStates) == {1.0: 1, 2.0: 1, 3.0: 1}
        asked = {t: msg.run_ids or [] for t, msg in stamped if isinstance(msg, GetTaskStates)}
        assert asked[1.0] == watched[:100]
        # The chunk at 2 s: the other 50 watched and the 50 plain runs, whose states are not asked.
        assert counted_ids(stamped, 2.0) == [watched[100:] + plain]
        assert asked[2.0] == watched[100:]

    def test_an_early_end_ends_only_the_wait_whose_rules_fired(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, task_timeline={"answer": [(0, "running"), (2, "success")]})
        supervisor.add_run(CHILD, "shared", seconds=10)

        async def scenario() -> list[RunOutcome]:
            early = wait_in_triggerer(
                dag_id=CHILD, run_id="shared", schedule=schedule(), watch=Watch(result_task_ids=("answer",))
            )
            late = wait_in_triggerer(dag_id=CHILD, run_id="shared", schedule=schedule(), watch=Watch())
            return list(await asyncio.gather(early, late))

        outcomes = asyncio.run(scenario())

        assert outcomes == [RunOutcome(state="running", early=EarlyEnd()), RunOutcome(state="success")]
        # The second wait went on to the first check after the run ended at 10 s (checks at 7 and 11 s).
        assert virtual.elapsed() == 11

    def test_a_failed_task_state_question_is_asked_again_at_the_next_check(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, task_timeline={"answer": [(0, "running"), (1, "success")]})
        supervisor.add_run(CHILD, "a", seconds=10)
        supervisor.fail_on(
            GetTaskStates, nth=1, error=api_error(503, "unavailable", "The server is restarting")
        )

        async def scenario() -> RunOutcome:
            return await wait_in_triggerer(
                dag_id=CHILD, run_id="a", schedule=schedule(), watch=Watch(result_task_ids=("answer",))
            )

        assert asyncio.run(scenario()) == RunOutcome(state="running", early=EarlyEnd())
        # The question at 1 s failed; the one at 2 s saw the answer ready.
        assert virtual.elapsed() == 2


@pytest.mark.usefixtures("virtual")
class TestErrors:
    def test_an_unavailable_server_is_asked_again_at_the_next_check(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=1.5)
        supervisor.fail_on(GetDRCount, nth=2, error=api_error(503, "unavailable", "The server is restarting"))

        async def scenario() -> RunOutcome:
            return await waiting("a")

        with structlog.testing.capture_logs() as logs:
            outcome = asyncio.run(scenario())

        assert outcome == RunOutcome(state="success")
        # The count at 2 s failed; the run, ended at 1.5 s, is seen at 3 s.
        assert per_check(stamped, GetDRCount) == {1.0: 1, 2.0: 1, 3.0: 1}
        [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
        assert warning["event"] == "Could not read the child Dag's runs; asking again at the next tick"
        assert (warning["dag_id"], warning["runs"], warning["http_status"]) == (CHILD, 1, 503)

    def test_a_run_that_does_not_exist_ends_only_its_own_wait_with_an_error(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        supervisor.add_run(CHILD, "b", seconds=3600)
        virtual.horizon = 3

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ("a", "ghost", "b")]
            await until_stalled_or_done(virtual, tasks)
            assert [task.done() for task in tasks] == [False, True, False]
            await cancel([tasks[0], tasks[2]])
            return tasks

        tasks = asyncio.run(scenario())

        assert tasks[1].result() == RunOutcome(
            state=None, error="Dag run 'ghost' of Dag 'child' was not found"
        )
        assert [msg.run_id for _, msg in stamped if isinstance(msg, GetDagRunState)] == ["ghost"]
        assert counted_ids(stamped, 2.0) == [["a", "b"]]

    def test_a_failed_state_read_is_retried_at_the_next_check(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=0.5, outcome="failed")
        supervisor.fail_on(GetDagRunState, nth=1, error=api_error(500, "internal", "Database is locked"))

        with structlog.testing.capture_logs() as logs:
            outcome = asyncio.run(waiting("a"))

        assert outcome == RunOutcome(state="failed")
        assert per_check(stamped, GetDagRunState) == {1.0: 1, 2.0: 1}
        assert [entry["http_status"] for entry in logs if entry["log_level"] == "warning"] == [500]

    def test_an_unexpected_error_fails_the_waits_of_its_chunk_only(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        ids = run_ids(150)
        for run_id in ids:
            supervisor.add_run(CHILD, run_id, seconds=3600)
        answer = supervisor._on_GetDRCount

        def broken_for_the_first_chunk(msg: GetDRCount) -> BaseModel:
            if "run-0000" in (msg.run_ids or []):
                raise RuntimeError("a bug, not the API")
            return answer(msg)

        monkeypatch.setattr(supervisor, "_on_GetDRCount", broken_for_the_first_chunk)
        virtual.horizon = 3

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ids]
            await until_stalled_or_done(virtual, tasks)
            await cancel(tasks[CHUNK:])
            return tasks

        tasks = asyncio.run(scenario())

        for task in tasks[:CHUNK]:
            error = task.exception()
            assert isinstance(error, PollError)
            assert isinstance(error.__cause__, RuntimeError)
            assert "a bug, not the API" in str(error)
        assert all(task.cancelled() for task in tasks[CHUNK:])
        # The other 50 were still checked at every tick after the failure.
        assert counted_ids(stamped, 2.0) == [ids[CHUNK:]]
        assert counted_ids(stamped, 3.0) == [ids[CHUNK:]]


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
