"""The shared poller's task-state questions for watched runs, and the early ends they bring."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRunState, GetTaskStates

from standard_ext.triggers.shared_poll import RunOutcome, wait_in_triggerer
from standard_ext.wait.progress import EarlyEnd, Watch
from standard_ext.wait.window import FINISHING_CHECKS
from tests.fake_errors import api_error
from tests.unit.virtual_time import (
    CHILD,
    VirtualTime,
    cancel,
    counted_ids,
    per_check,
    run_ids,
    schedule,
    until_stalled_or_done,
    waiting,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor

# A poller that misses a wake-up waits for ever; fail instead of hanging the suite.
pytestmark = pytest.mark.timeout(30)


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

        # 200 runs, one chunk a tick. The first is all watched runs: one task-state question, no count.
        assert per_check(stamped, GetTaskStates) == {1.0: 1, 2.0: 1, 3.0: 1}
        asked = {t: msg.run_ids or [] for t, msg in stamped if isinstance(msg, GetTaskStates)}
        assert asked[1.0] == watched[:100]
        assert counted_ids(stamped, 1.0) == []
        # The chunk at 2 s: the other 50 watched runs get the task-state question, the 50 plain ones a
        # count (their task states are not asked).
        assert asked[2.0] == watched[100:]
        assert counted_ids(stamped, 2.0) == [plain]

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
        # The second wait went on until the run ended at 10 s. Its one task finished at 2 s, so from then
        # the run was looked at every second (poll_window.FINISHING_CHECKS, ten at most): seen at once.
        assert virtual.elapsed() == 10

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
class TestFinishing:
    def test_a_run_whose_tasks_are_done_is_looked_at_every_second_ten_times_then_on_its_schedule(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
    ) -> None:
        # Its one task is done at 2 s, but nothing ends the run for ten minutes (its Dag paused, say).
        supervisor.add_dag(CHILD, task_timeline={"answer": [(0, "running"), (2, "success")]})
        supervisor.add_run(CHILD, "a", seconds=600)

        async def scenario() -> RunOutcome:
            return await wait_in_triggerer(dag_id=CHILD, run_id="a", schedule=schedule(), watch=Watch())

        with structlog.testing.capture_logs() as logs:
            assert asyncio.run(scenario()) == RunOutcome(state="success")
        read_at = sorted(per_check(stamped, GetDagRunState))
        # Seen done at 2 s; the next ten checks come a second apart (3..12 s), then the schedule's.
        assert read_at[: FINISHING_CHECKS + 1] == [float(t) for t in range(2, FINISHING_CHECKS + 3)]
        assert all(later - earlier > 1 for earlier, later in itertools.pairwise(read_at[FINISHING_CHECKS:]))
        # Seen ended at the first check of its schedule after 600 s, on the beat.
        assert 600 <= virtual.elapsed() < 660
        back = [e for e in logs if str(e["event"]).endswith("checking it on its schedule again")]
        assert [(e["dag_id"], e["run_id"]) for e in back] == [(CHILD, "a")]
