"""A failed request costs the shared poller at most the next tick: what the tick learned stands."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount, GetTaskStates

from standard_ext.triggers.shared_poll import MIN_TICK_SECONDS, RunOutcome, wait_in_triggerer
from standard_ext.wait.progress import EarlyEnd, Watch
from tests.fake_errors import api_error
from tests.unit.virtual_time import CHILD, cancel, counted_ids, schedule, until_stalled_or_done, waiting

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)

# Waiting for 1000 s already: on the beat, checked every 60 s, at 30 s (the ramp's 67 s check, -933 s, moves to
# the beat at -930 s; + 60 * 16) and 90 s.
SINCE = -1000.0
FIRST_CHECK, NEXT_CHECK = 30.0, 90.0
UNAVAILABLE = api_error(503, "unavailable", "The server is restarting")


async def timed(virtual: VirtualTime, wait: Coroutine[Any, Any, RunOutcome]) -> tuple[RunOutcome, float]:
    """The wait's outcome and the (virtual) second it came at."""
    outcome = await wait
    return outcome, virtual.elapsed()


@pytest.mark.usefixtures("virtual")
class TestAFailedRequestCostsAtMostTheNextTick:
    @pytest.mark.parametrize("kind", [GetDRCount, GetDagRunState])
    def test_a_run_whose_question_failed_is_asked_again_at_the_next_tick_not_its_next_check(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, kind: type[BaseModel]
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=20)
        supervisor.fail_on(kind, nth=1, error=UNAVAILABLE)

        outcome = asyncio.run(timed(virtual, waiting("a", since=SINCE)))

        # The question at 30 s failed; a second later the run is seen ended, not 60 s later.
        assert outcome == (RunOutcome(state="success"), FIRST_CHECK + MIN_TICK_SECONDS)

    def test_a_failed_count_in_the_bisection_keeps_the_runs_already_singled_out(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        for run_id, seconds in (("a", 20), ("b", 3600), ("c", 3600), ("d", 20)):
            supervisor.add_run(CHILD, run_id, seconds=seconds)
        # At 30 s: the chunk's count (2 active), [a, b] (1), [a] (0, so a ended), then [c] fails: which of
        # c and d ended is unknown.
        supervisor.fail_on(GetDRCount, nth=4, error=UNAVAILABLE)
        virtual.horizon = FIRST_CHECK + 3

        async def scenario() -> list[asyncio.Task[tuple[RunOutcome, float]]]:
            tasks = [asyncio.create_task(timed(virtual, waiting(run_id, since=SINCE))) for run_id in "abcd"]
            await until_stalled_or_done(virtual, tasks)
            await cancel(tasks)
            return tasks

        a, b, c, d = asyncio.run(scenario())

        # a was singled out before the failure: settled at 30 s. d, in the half the failure left
        # unsorted, a tick later; b and c go on.
        assert a.result() == (RunOutcome(state="success"), FIRST_CHECK)
        assert d.result() == (RunOutcome(state="success"), FIRST_CHECK + MIN_TICK_SECONDS)
        assert b.cancelled()
        assert c.cancelled()
        assert counted_ids(stamped, FIRST_CHECK) == [["a", "b", "c", "d"], ["a", "b"], ["a"], ["c"]]
        # Only the failed half is asked again at once; b, counted, waits for its schedule's next check.
        assert counted_ids(stamped, FIRST_CHECK + MIN_TICK_SECONDS) == [["c", "d"], ["c"]]
        assert [(t, msg.run_id) for t, msg in stamped if isinstance(msg, GetDagRunState)] == [
            (FIRST_CHECK, "a"),
            (FIRST_CHECK + MIN_TICK_SECONDS, "d"),
        ]

    def test_a_failed_task_state_question_is_asked_again_at_the_next_tick_not_the_next_check(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_dag(CHILD, task_timeline={"answer": [(0, "success")]})
        supervisor.add_run(CHILD, "a", seconds=3600)
        supervisor.fail_on(GetTaskStates, nth=1, error=UNAVAILABLE)
        wait = wait_in_triggerer(
            dag_id=CHILD,
            run_id="a",
            schedule=schedule(since=SINCE),
            watch=Watch(result_task_ids=("answer",)),
        )

        outcome = asyncio.run(timed(virtual, wait))

        assert outcome == (RunOutcome(state="running", early=EarlyEnd()), FIRST_CHECK + MIN_TICK_SECONDS)
        assert [t for t, msg in stamped if isinstance(msg, GetTaskStates)] == [
            FIRST_CHECK,
            FIRST_CHECK + MIN_TICK_SECONDS,
        ]
        assert NEXT_CHECK not in {t for t, _ in stamped}
