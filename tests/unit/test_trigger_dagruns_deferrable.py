"""Deferrable fan-outs: defer while the window is full, resume to start the next items; the trigger itself."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.sdk.execution_time.comms import GetDRCount, GetTaskStates, TriggerDagRun

from standard_ext.fanout.state import FanOut, ItemState
from standard_ext.triggers.dag_runs import CLASSPATH, DagRunsTrigger
from tests.unit.fanout_parent import CHILD, FanOutParent, all_events, confs, rebuilt, run_deferred
from tests.unit.virtual_time import T0

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(60)


def make(supervisor: FakeSupervisor, virtual: VirtualTime, **kwargs: Any) -> FanOutParent:
    values: dict[str, Any] = {
        "trigger_dag_id": CHILD,
        "wait_for_completion": True,
        "deferrable": True,
        "poke_interval": 10,
        **kwargs,
    }
    return FanOutParent(supervisor, values, virtual.traveller.shift)


def varied(conf: dict[str, Any] | None) -> tuple[float, str]:
    return 3 + 2 * (int((conf or {})["item"]) % 5), "success"


class TestCycles:
    def test_defers_while_the_window_is_full_and_resumes_about_twice_per_window(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_for=varied)
        parent = make(supervisor, virtual, confs=confs(40), max_active=8)

        done = run_deferred(parent)

        assert done.result == [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]
        assert len(supervisor.runs_of(CHILD)) == 40
        assert max(supervisor.active_at_trigger) <= 7  # never more than max_active at once
        # Every deferral but the last waits for half the window (4 ends); the last for the rest.
        assert [trigger.ends for trigger in done.triggers[:-1]] == [4] * (done.resumes - 1)
        assert 40 / 8 <= done.resumes <= math.ceil(2 * 40 / 8)

    def test_without_max_active_one_deferral_for_everything(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_for=varied)

        done = run_deferred(make(supervisor, virtual, confs=confs(30)))

        assert done.resumes == 1
        assert done.triggers[0].ends == 30

    def test_the_shared_poll_asks_about_every_waiting_run_in_one_question(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=20)

        run_deferred(make(supervisor, virtual, confs=confs(50)))

        # The trigger watches each run (its start anchors the run's schedule): its task states are the
        # check, for all 50 runs in one question, and no count besides.
        questions = supervisor.sent_of(GetTaskStates)
        assert max(len(msg.run_ids or []) for msg in questions) == 50
        assert supervisor.sent_of(GetDRCount) == []
        # About one question a check for the 50 runs, not 50 requests a check.
        assert len(questions) <= 15

    def test_results_and_tolerated_failures_come_back_through_the_resumes(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
            return 4, "failed" if (conf or {})["item"] == 1 else "success"

        supervisor.add_dag(CHILD, run_for=run_for, returns={"score": 7})
        parent = make(
            supervisor, virtual, confs=confs(5), max_active=2, tolerated_failures=1, result_task_ids=["score"]
        )

        assert run_deferred(parent).result == [{"score": 7}, None, {"score": 7}, {"score": 7}, {"score": 7}]

    def test_fail_fast_resumes_on_the_first_failure_and_fails_naming_those_left_running(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
            return (2, "failed") if (conf or {})["item"] == 0 else (3600, "success")

        supervisor.add_dag(CHILD, run_for=run_for)
        parent = make(supervisor, virtual, confs=confs(4), max_active=4, fail_fast=True)

        with pytest.raises(AirflowException, match="left running: #1 .*#2 .*#3 "):
            run_deferred(parent)

        assert virtual.elapsed() < 60

    def test_progress_is_logged_by_the_trigger_and_the_resumed_task(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=3)

        with structlog.testing.capture_logs() as logs:
            run_deferred(make(supervisor, virtual, confs=confs(2)))

        progress = [line for line in logs if line["event"] == "Fan-out progress"]
        assert {
            "done": 2,
            "succeeded": 2,
            "failed": 0,
            "active": 0,
            "not_started": 0,
            "items": 2,
        }.items() <= progress[-1].items()
        assert len(progress) >= 2


class TestCrashAndRetry:
    def test_killed_while_resuming_the_retry_carries_on_with_the_saved_runs(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=5)
        parent = make(supervisor, virtual, confs=confs(6), max_active=2)
        with pytest.raises(TaskDeferred):
            parent.run()
        # The worker resuming dies; the retry starts afresh from the record, not from the event.
        virtual.traveller.shift(10)
        parent.retry()

        done = run_deferred(parent)

        assert len(supervisor.runs_of(CHILD)) == 6
        assert done.result == parent.store.values["triggered_dag_runs"]["run_ids"]


class TestTrigger:
    def trigger(self, states: list[ItemState], **kwargs: Any) -> DagRunsTrigger:
        fan_out = FanOut(run_ids=tuple(f"r{i}" for i in range(len(states))), states=tuple(states))
        values: dict[str, Any] = {
            "dag_id": CHILD,
            "fan_out": fan_out.to_json(),
            "ends": 1,
            "poke_interval": 10,
            "fast_poll_window": 5,
            "waiting_since": T0,
            **kwargs,
        }
        return DagRunsTrigger(**values)

    def test_round_trips_through_the_triggerers_row(self) -> None:
        trigger = self.trigger([ItemState.ACTIVE, ItemState.PENDING, ItemState.FAILED], ends=1, failures=2)

        again = rebuilt(trigger)

        assert again.serialize() == trigger.serialize()
        assert trigger.serialize()[0] == CLASSPATH
        assert again.fan_out == trigger.fan_out
        assert again.schedule == trigger.schedule

    @pytest.mark.usefixtures("virtual")
    def test_fires_once_enough_runs_ended_and_leaves_the_rest_waiting(
        self, supervisor: FakeSupervisor
    ) -> None:
        for i, seconds in enumerate([2, 4, 600, 900]):
            supervisor.add_run(CHILD, f"r{i}", seconds=seconds, outcome="failed" if i == 1 else "success")

        (event,) = asyncio.run(all_events(self.trigger([ItemState.ACTIVE] * 4, ends=2)))

        assert event.payload["fan_out"]["states"] == ["success", "failed", "active", "active"]

    @pytest.mark.usefixtures("virtual")
    def test_with_failures_it_fires_on_the_first_failure(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_run(CHILD, "r0", seconds=600)
        supervisor.add_run(CHILD, "r1", seconds=3, outcome="failed")

        (event,) = asyncio.run(all_events(self.trigger([ItemState.ACTIVE] * 2, ends=2, failures=1)))

        assert event.payload["fan_out"]["states"] == ["active", "failed"]

    @pytest.mark.usefixtures("virtual")
    def test_a_run_that_is_gone_fails_its_item(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag(CHILD)

        (event,) = asyncio.run(all_events(self.trigger([ItemState.ACTIVE], ends=1)))

        assert event.payload["fan_out"]["states"] == ["failed"]

    def test_a_malformed_fan_out_fails_the_trigger_as_it_is_built(self) -> None:
        # A TypeError: the one error the triggerer catches as it builds a trigger (create_triggers).
        with pytest.raises(TypeError, match="DagRunsTrigger cannot be built.*Not a fan-out state"):
            DagRunsTrigger(
                dag_id=CHILD,
                fan_out={"run_ids": ["a"]},
                ends=1,
                poke_interval=1,
                fast_poll_window=1,
                waiting_since=T0,
            )


@pytest.mark.usefixtures("virtual")
def test_the_trigger_sees_runs_that_waited_for_slots_soon_after_they_end(
    supervisor: FakeSupervisor, virtual: VirtualTime
) -> None:
    # Each run's one task waits 90 s for a slot, then works 10 s, as long as the last success took.
    supervisor.add_dag(CHILD, task_timeline={"work": [(0, "queued"), (90, "running"), (100, "success")]})
    for i in range(3):
        supervisor.add_run(CHILD, f"r{i}", seconds=100)
    fan_out = FanOut(run_ids=("r0", "r1", "r2"), states=(ItemState.ACTIVE,) * 3)
    trigger = DagRunsTrigger(
        dag_id=CHILD,
        fan_out=fan_out.to_json(),
        ends=3,
        poke_interval=60,
        fast_poll_window=5,
        waiting_since=T0,
        expected_seconds=10,
    )

    (event,) = asyncio.run(all_events(trigger))

    assert event.payload["fan_out"]["states"] == ["success"] * 3
    # Each run's checks count from its start, seen within a quarter of its length.
    assert virtual.elapsed() - 100 <= 10 / 4 + 1e-6
