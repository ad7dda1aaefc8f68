"""``finish_on_success``: the trigger ends the task on a success it can reproduce, and resumes it otherwise."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetXCom, SetXCom
from airflow.sdk.serde import deserialize
from airflow.triggers.base import TaskSuccessEvent

from tests.fake_errors import api_error
from tests.unit.test_trigger_dag_run import CHILD, TEARDOWN, all_events, make_trigger

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("virtual")]

RUN = "manual__1"


@dataclass(frozen=True)
class ParentTI:
    """The deferred task instance the triggerer sets on the trigger (``task_instance``)."""

    dag_id: str = "parent"
    task_id: str = "ask"
    run_id: str = "manual__parent"
    map_index: int = 3


def only_event(*, parent: ParentTI | None = ParentTI(), **kwargs: Any) -> TriggerEvent:
    trigger = make_trigger(finish_on_success=True, **kwargs)
    trigger.task_instance = parent  # type: ignore[assignment]  # the triggerer's own TI type
    (event,) = asyncio.run(all_events(trigger))
    return event


def pushed(supervisor: FakeSupervisor) -> list[tuple[str, str, str, int, str, Any, bool]]:
    """Every XCom pushed: where to, under which key, the value as read back, and the Dag-result flag."""
    return [
        (m.dag_id, m.task_id, m.run_id, m.map_index, m.key, deserialize(m.value), m.dag_result)
        for m in supervisor.sent_of(SetXCom)
    ]


class TestEndsTheTask:
    def test_a_run_that_succeeded_ends_the_task_with_no_result_and_reads_no_xcom(
        self, supervisor: FakeSupervisor
    ) -> None:
        supervisor.add_run(CHILD, RUN, seconds=3)

        event = only_event()

        assert isinstance(event, TaskSuccessEvent)
        assert event.task_instance_state == "success"
        assert event.xcoms is None
        assert not supervisor.sent_of(GetXCom)
        assert not pushed(supervisor)

    @pytest.mark.parametrize("dag_result", [False, True])
    def test_the_result_is_pushed_as_the_parents_return_value_as_a_worker_pushes_it(
        self, supervisor: FakeSupervisor, dag_result: bool
    ) -> None:
        supervisor.add_dag(CHILD, returns={"answer": {"label": "cat"}}, mapped_returns={"shard": [1, 2]})
        supervisor.add_run(CHILD, RUN, seconds=3)

        event = only_event(result_task_ids=["answer", "shard"], dag_result=dag_result)

        assert isinstance(event, TaskSuccessEvent)
        # Through XCom.set, not the event's xcoms (which Airflow 3.3 stores JSON-encoded once more).
        assert event.xcoms is None
        result = {"answer": {"label": "cat"}, "shard": [1, 2]}
        assert pushed(supervisor) == [
            ("parent", "ask", "manual__parent", 3, "return_value", result, dag_result)
        ]
        assert [(m.task_id, m.map_index) for m in supervisor.sent_of(GetXCom)] == [
            ("answer", -1),
            ("shard", 0),
            ("shard", 1),
        ]

    def test_without_do_xcom_push_the_result_is_not_pushed(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag(CHILD, returns={"answer": 42})
        supervisor.add_run(CHILD, RUN, seconds=3)

        event = only_event(result_task_ids=["answer"], push_result=False)

        assert isinstance(event, TaskSuccessEvent)
        assert not pushed(supervisor)

    def test_the_early_success_ends_the_task_with_the_result_before_the_run_ends(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(
            CHILD,
            returns={"work": "done"},
            task_timeline={"work": [(0, "running"), (2, "success")], "teardown": [(0, "running")]},
        )
        supervisor.add_run(CHILD, RUN, seconds=TEARDOWN)

        event = only_event(result_task_ids=["work"])

        assert isinstance(event, TaskSuccessEvent)
        assert [value for *_, value, _ in pushed(supervisor)] == [{"work": "done"}]
        assert virtual.elapsed() == 2


class TestResumesOnAWorker:
    @pytest.mark.parametrize("outcome", ["failed", "success"])
    def test_any_other_outcome_or_without_the_flag_resumes_with_the_plain_event(
        self, supervisor: FakeSupervisor, outcome: str
    ) -> None:
        supervisor.add_run(CHILD, RUN, seconds=3, outcome=outcome)
        # A failure resumes even when asked to finish; a success resumes when not asked.
        finish = outcome == "failed"

        (event,) = asyncio.run(all_events(make_trigger(finish_on_success=finish)))

        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload == {"dag_id": CHILD, "run_id": RUN, "state": outcome}

    def test_an_early_failure_resumes_with_the_plain_event(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag(CHILD, task_timeline={"work": [(0, "running"), (1, "failed")]})
        supervisor.add_run(CHILD, RUN, seconds=TEARDOWN)

        event = only_event(fail_fast=True)

        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload["early"] == "failure"

    def test_a_run_that_does_not_exist_resumes_with_its_error(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag(CHILD)

        event = only_event()

        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload["state"] is None
        assert "was not found" in event.payload["error"]

    def test_a_result_that_cannot_be_read_here_resumes_so_the_worker_fails_with_its_message(
        self, supervisor: FakeSupervisor
    ) -> None:
        supervisor.add_dag(CHILD, returns={"answer": None})
        supervisor.add_run(CHILD, RUN, seconds=3)

        with structlog.testing.capture_logs() as logs:
            event = only_event(result_task_ids=["answer"])

        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload == {"dag_id": CHILD, "run_id": RUN, "state": "success"}
        (why,) = [e for e in logs if e["event"] == "Resuming the task on a worker"]
        assert why["reason"] == "the result could not be read here"
        assert "pushed no return_value XCom" in why["error"]

    def test_a_push_that_fails_resumes_so_a_worker_pushes_it(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag(CHILD, returns={"answer": 42})
        supervisor.add_run(CHILD, RUN, seconds=3)
        supervisor.fail_on(SetXCom, nth=1, error=api_error(500, "internal", "database is locked"))

        event = only_event(result_task_ids=["answer"])

        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload["state"] == "success"

    def test_a_result_with_no_task_instance_to_push_it_for_resumes_as_under_dag_test(
        self, supervisor: FakeSupervisor
    ) -> None:
        supervisor.add_dag(CHILD, returns={"answer": 42})
        supervisor.add_run(CHILD, RUN, seconds=3)

        event = only_event(result_task_ids=["answer"], parent=None)

        assert not isinstance(event, TaskSuccessEvent)
        assert not pushed(supervisor)
