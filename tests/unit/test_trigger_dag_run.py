"""``DagRunTrigger``: its one event, its serialized form, resuming its schedule, and leaving when cancelled."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.models.trigger import Trigger
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount, GetTaskStates
from airflow.sdk.serde import deserialize, serialize
from airflow.serialization.decoders import smart_decode_trigger_kwargs

from standard_ext.triggers.dag_run import CLASSPATH, DagRunTrigger
from standard_ext.triggers.shared_poll import pollers_of
from standard_ext.wait.progress import Watch
from tests.unit.virtual_time import (
    T0,
    VirtualTime,
    cancel,
    counted_ids,
    let_the_loop_run,
    per_check,
    run_to_the_horizon,
    until_stalled_or_done,
)

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent
    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor

pytestmark = pytest.mark.timeout(30)

CHILD = "child"


def make_trigger(run_id: str = "manual__1", *, since: float = 0.0, **kwargs: Any) -> DagRunTrigger:
    values: dict[str, Any] = {
        "dag_id": CHILD,
        "run_id": run_id,
        "poke_interval": 60,
        "fast_poll_window": 5,
        "waiting_since": T0 + since,
        **kwargs,
    }
    return DagRunTrigger(**values)


async def all_events(trigger: DagRunTrigger) -> list[TriggerEvent]:
    """Every event the trigger yields, as the triggerer iterates ``run()`` to its end."""
    return [event async for event in trigger.run()]


def rebuilt(trigger: DagRunTrigger) -> DagRunTrigger:
    """The trigger as the triggerer rebuilds it from its database row (``TriggerRunner.create_triggers``)."""
    row = Trigger.from_object(trigger)
    # smart_decode_trigger_kwargs is unannotated.
    kwargs = {key: smart_decode_trigger_kwargs(value) for key, value in row.kwargs.items()}  # type: ignore[no-untyped-call]
    instance = import_string(row.classpath)(**kwargs)
    assert isinstance(instance, DagRunTrigger)
    return instance


@pytest.mark.usefixtures("virtual")
class TestEvent:
    @pytest.mark.parametrize("outcome", ["success", "failed"])
    def test_one_event_with_the_final_state_once_the_run_ends(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, outcome: str
    ) -> None:
        supervisor.add_run(CHILD, "manual__1", seconds=3, outcome=outcome)

        events = asyncio.run(all_events(make_trigger()))

        assert [event.payload for event in events] == [
            {"dag_id": CHILD, "run_id": "manual__1", "state": outcome}
        ]
        assert type(events[0].payload["state"]) is str  # the API's enum would not be JSON-plain
        assert virtual.elapsed() == 3

    @pytest.mark.parametrize("in_process", [False, True])
    def test_a_run_that_does_not_exist_is_an_event_with_an_error(
        self, supervisor: FakeSupervisor, in_process: bool
    ) -> None:
        # Under dag.test()'s in-process supervisor the 404 arrives as the client's ServerResponseError.
        supervisor.in_process = in_process

        events = asyncio.run(all_events(make_trigger("manual__gone")))

        assert [event.payload for event in events] == [
            {
                "dag_id": CHILD,
                "run_id": "manual__gone",
                "state": None,
                "error": "Dag run 'manual__gone' of Dag 'child' was not found",
            }
        ]

    def test_runs_as_dag_test_runs_it_inline(self, supervisor: FakeSupervisor) -> None:
        # dag.test() rebuilds the trigger from the serde-encoded kwargs of DeferTask and takes the first
        # event in a fresh event loop (InProcessTestSupervisor.run_trigger_in_process).
        supervisor.add_run(CHILD, "manual__1", seconds=2)
        classpath, kwargs = make_trigger().serialize()
        stored = deserialize(serialize(kwargs))
        assert isinstance(stored, dict)
        trigger = import_string(classpath)(**stored)

        event = asyncio.run(anext(trigger.run(), None))

        assert event is not None
        assert event.payload == {"dag_id": CHILD, "run_id": "manual__1", "state": "success"}


# A child whose work is done after 2 s, whose cleanup fails at 1 s, and whose teardown runs until 60 s.
TEARDOWN = 60


def add_child_run(supervisor: FakeSupervisor, *, work: str = "success", work_at: float = 2) -> None:
    supervisor.add_dag(
        CHILD,
        task_timeline={
            "work": [(0, "running"), (work_at, work)],
            "cleanup": [(0, "running"), (1, "failed")],
            "teardown": [(0, "running"), (TEARDOWN, "success")],
        },
    )
    supervisor.add_run(CHILD, "manual__1", seconds=TEARDOWN)


@pytest.mark.usefixtures("virtual")
class TestEarlyEnd:
    def test_fail_fast_fires_a_failure_event_naming_the_task_without_waiting_for_teardown(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        add_child_run(supervisor)

        events = asyncio.run(all_events(make_trigger(fail_fast=True)))

        assert [event.payload for event in events] == [
            {
                "dag_id": CHILD,
                "run_id": "manual__1",
                "state": "running",
                "early": "failure",
                "task": "cleanup",
                "task_state": "failed",
            }
        ]
        assert virtual.elapsed() == 1

    def test_critical_task_ids_narrows_which_failures_fire(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        add_child_run(supervisor, work="failed", work_at=3)

        events = asyncio.run(all_events(make_trigger(fail_fast=True, critical_task_ids=["work"])))

        assert [(e.payload["early"], e.payload["task"]) for e in events] == [("failure", "work")]
        assert virtual.elapsed() == 3

    def test_the_result_tasks_succeeding_fires_a_success_event(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        add_child_run(supervisor)

        events = asyncio.run(all_events(make_trigger(result_task_ids=["work"])))

        assert [event.payload for event in events] == [
            {"dag_id": CHILD, "run_id": "manual__1", "state": "running", "early": "success"}
        ]
        assert virtual.elapsed() == 2

    def test_without_rules_the_trigger_waits_for_the_run_to_end(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        add_child_run(supervisor)

        events = asyncio.run(all_events(make_trigger()))

        assert [event.payload for event in events] == [
            {"dag_id": CHILD, "run_id": "manual__1", "state": "success"}
        ]
        assert virtual.elapsed() >= TEARDOWN

    def test_logs_the_childs_progress_only_when_it_changes(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        add_child_run(supervisor)

        with structlog.testing.capture_logs() as logs:
            asyncio.run(all_events(make_trigger()))

        lines = [entry["progress"] for entry in logs if entry["event"] == "Dag run progress"]
        # Checked at 1, 2, 3, 4, 5, 7, 11, 19 and 35 s while the run is active (it ends at 60 s): the
        # cleanup has failed by the first check, the work succeeds by the second, then nothing changes.
        assert lines == ["1/3 tasks done, 2 running, 1 failed", "2/3 tasks done, 1 running, 1 failed"]


class TestSerialization:
    def test_names_the_class_and_every_argument_in_plain_json(self) -> None:
        classpath, kwargs = make_trigger(since=0.5, poke_interval=30, fast_poll_window=10).serialize()

        assert classpath == "standard_ext.triggers.dag_run.DagRunTrigger" == CLASSPATH
        assert kwargs == {
            "dag_id": CHILD,
            "run_id": "manual__1",
            "poke_interval": 30.0,
            "fast_poll_window": 10.0,
            "waiting_since": T0 + 0.5,
            "fail_fast": False,
            "critical_task_ids": None,
            "result_task_ids": None,
            "expected_seconds": None,
            "finish_on_success": False,
            "push_result": True,
            "dag_result": False,
            "cancel_on_kill": False,
            "airflow_api_conn_id": None,
            "timeout_at": None,
            "durable": True,
        }
        assert json.loads(json.dumps(kwargs)) == kwargs

    def test_the_triggerer_rebuilds_the_same_trigger(self) -> None:
        trigger = make_trigger(
            since=0.5, fail_fast=True, critical_task_ids=["work"], result_task_ids=["answer"]
        )

        assert rebuilt(trigger).serialize() == trigger.serialize()
        assert rebuilt(trigger).watch == trigger.watch

    def test_a_trigger_stored_before_the_early_end_rules_existed_still_rebuilds(self) -> None:
        # A deferral made by an earlier version of the operator holds only these keys in its row.
        kwargs: dict[str, Any] = {
            "dag_id": CHILD,
            "run_id": "manual__1",
            "poke_interval": 60.0,
            "fast_poll_window": 5.0,
        }
        trigger = DagRunTrigger(**kwargs, waiting_since=T0)

        assert trigger.watch == Watch()

    def test_arguments_are_keyword_only(self) -> None:
        with pytest.raises(TypeError):
            DagRunTrigger(CHILD, "manual__1", 60, 5, T0)  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("kwargs", "match"), [({"poke_interval": 0}, "poke_interval"), ({"timeout_at": "x"}, "float")]
    )
    def test_a_bad_argument_fails_this_trigger_as_it_is_built_not_the_triggerer(
        self, kwargs: dict[str, Any], match: str
    ) -> None:
        # TypeError is the one error the triggerer catches as it builds a trigger (create_triggers): it
        # fails that trigger and its task. Any other would stop the trigger runner and all its triggers.
        with pytest.raises(TypeError, match=f"DagRunTrigger cannot be built.*{match}"):
            make_trigger(**kwargs)


@pytest.mark.usefixtures("virtual")
class TestResume:
    def test_a_rebuilt_trigger_keeps_the_schedule_of_the_wait_it_resumes(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "manual__1", seconds=160)
        trigger = make_trigger()
        # The triggerer restarts 100 s into the wait: past the fast window and the doubling, the checks
        # are 60 s apart on the beat (the ramp's 67 s check moves to 90 s: 90, 150, 210, ...), not one
        # second after the rebuild.
        virtual.traveller.shift(100)
        resumed = rebuilt(trigger)

        assert resumed.schedule.next_check_after(time.time()) == T0 + 150
        events = asyncio.run(all_events(resumed))

        assert [event.payload["state"] for event in events] == ["success"]
        # 150 s: still running; 210 s: its task instances are all finished, and the state is read.
        assert per_check(stamped, GetTaskStates) == {150.0: 1, 210.0: 1}
        assert per_check(stamped, GetDagRunState) == {210.0: 1}
        assert per_check(stamped, GetDRCount) == {}


@pytest.mark.usefixtures("virtual")
class TestRequests:
    # Where the wait begins against the beat moves the checks; the count stays.
    @pytest.mark.parametrize("phase", [0.0, 12.5, 29.0, 47.3])
    def test_an_hour_long_child_costs_the_trigger_one_question_a_check_and_the_state_once(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        phase: float,
    ) -> None:
        virtual.traveller.shift(phase)
        supervisor.add_run(CHILD, "manual__1", seconds=3600)

        events = asyncio.run(all_events(make_trigger(since=phase)))

        assert [event.payload["state"] for event in events] == ["success"]
        # The task states are the check (they give the progress the trigger logs): at most the 70 checks
        # of the synchronous wait's hour (the trigger's first comes a second in: the task checked at 0),
        # the run's state once, when they are all finished, and no count. With the task's one question
        # for the child's history, at most 72 = 1.2 x stock's 60.
        checks = len(supervisor.sent_of(GetTaskStates))
        assert 60 < checks <= 70
        assert len(supervisor.sent_of(GetDagRunState)) == 1
        assert supervisor.sent_of(GetDRCount) == []
        assert len(stamped) == checks + 1 <= 71


@pytest.mark.usefixtures("virtual")
class TestSharing:
    def test_a_thousand_triggers_on_one_child_cost_one_task_state_question_per_tick(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        triggers = [make_trigger(f"manual__{i}") for i in range(1000)]
        for trigger in triggers:
            supervisor.add_run(CHILD, trigger.run_id, seconds=3600)
        virtual.horizon = 5

        run_to_the_horizon(virtual, [all_events(trigger) for trigger in triggers])

        # One chunk of 100 runs a second, as with one trigger: the load does not grow with the fan-out.
        # Each trigger logs its run's progress, so the task states are the check: no count besides.
        every_second = {1.0: 1, 2.0: 1, 3.0: 1, 4.0: 1, 5.0: 1}
        assert per_check(stamped, GetTaskStates) == every_second
        assert per_check(stamped) == every_second
        # Each chunk is a different hundred runs, oldest due first: 500 distinct runs in 5 ticks.
        asked = [run_id for msg in supervisor.sent_of(GetTaskStates) for run_id in msg.run_ids or []]
        assert len(asked) == len(set(asked)) == 500

    def test_cancelling_a_trigger_deregisters_it_and_the_others_go_on(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "manual__1", seconds=3600)
        supervisor.add_run(CHILD, "manual__2", seconds=4)
        virtual.horizon = 2

        async def scenario() -> list[TriggerEvent]:
            # The triggerer cancels the task iterating run() on shutdown and when the task is cleared.
            cancelled = asyncio.create_task(all_events(make_trigger("manual__1")))
            going_on = asyncio.create_task(all_events(make_trigger("manual__2")))
            await until_stalled_or_done(virtual, [cancelled, going_on])
            poller = pollers_of(asyncio.get_running_loop())[CHILD]
            await cancel([cancelled])
            assert poller.run_ids == ["manual__2"]
            virtual.extend(float("inf"))
            events = await going_on
            await let_the_loop_run()
            assert poller.task is not None
            assert poller.task.done()
            return events

        events = asyncio.run(scenario())

        assert [event.payload["run_id"] for event in events] == ["manual__2"]
        assert counted_ids(stamped, 2.0, GetTaskStates) == [["manual__1", "manual__2"]]
        assert counted_ids(stamped, 3.0, GetTaskStates) == [["manual__2"]]


@pytest.mark.usefixtures("virtual")
class TestFollowsTheRun:
    def test_a_child_that_waited_for_a_slot_is_noticed_soon_after_its_end(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        # Its one task waits 90 s for a slot and works 10 s, as long as the last success took.
        supervisor.add_dag(CHILD, task_timeline={"work": [(0, "queued"), (90, "running"), (100, "success")]})
        supervisor.add_run(CHILD, "manual__1", seconds=100)

        events = asyncio.run(all_events(make_trigger(expected_seconds=10)))

        assert [event.payload["state"] for event in events] == ["success"]
        # Seen started within a quarter of its length; the window then counts from its start. Counted
        # from the trigger, the window (9 s to 16.5 s) had long closed when it ended.
        assert virtual.elapsed() - 100 <= 10 / 4 + 1e-6
