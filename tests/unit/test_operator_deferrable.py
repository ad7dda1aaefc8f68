"""The operator's own deferrable mode: the same trigger and write-ahead, then a wait in the triggerer."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.comms import GetDagRunState, TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.wait.progress import Watch
from tests.fake_dags import now
from tests.unit.conftest import KEY, START, WorkerKilled

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent, Parent


def deferral(parent: Parent) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        parent.run()
    return info.value


def resume(parent: Parent, deferred: TaskDeferred, event: dict[str, Any] | str) -> Any:
    """What the task runner does once the trigger fired: a fresh operator, the named method, the event."""
    operator = TriggerDagRunOperator(task_id=parent.ti.task_id, **parent.operator_kwargs)
    context: dict[str, Any] = {"ti": parent.ti, "task_instance": parent.ti, "task_state_store": parent.store}
    return getattr(operator, deferred.method_name)(context, event=event)


def event_for(deferred: TaskDeferred, state: str | None, **extra: str) -> dict[str, Any]:
    trigger = deferred.trigger
    assert isinstance(trigger, DagRunTrigger)
    return {"dag_id": trigger.dag_id, "run_id": trigger.run_id, "state": state, **extra}


class TestDeferral:
    @pytest.mark.parametrize("durable", [True, False])
    def test_triggers_then_defers_on_the_run_by_its_id(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock, durable: bool
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(
            wait_for_completion=True,
            deferrable=True,
            durable=durable,
            poke_interval=30,
            execution_timeout=timedelta(minutes=10),
        )

        deferred = deferral(parent)

        (run,) = supervisor.runs_of("child")
        trigger = deferred.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert (trigger.dag_id, trigger.run_id) == ("child", run.run_id)
        assert trigger.schedule.poke_interval == 30
        assert trigger.schedule.waiting_since == START.timestamp() + clock.elapsed()
        assert deferred.method_name == "resume_after_child_run"
        assert deferred.timeout == timedelta(minutes=10)
        assert parent.ti.xcoms["trigger_run_id"] == run.run_id
        assert (KEY in parent.store.values) is durable
        assert trigger.schedule.expected_seconds is None  # the child has no earlier success

    def test_the_trigger_carries_the_last_success_length_for_its_schedule(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=20)
        supervisor.add_run("child", "earlier", seconds=20)
        clock.traveller.shift(120)

        trigger = deferral(make_parent(wait_for_completion=True, deferrable=True)).trigger

        assert isinstance(trigger, DagRunTrigger)
        assert trigger.schedule.expected_seconds == 20
        assert trigger.serialize()[1]["expected_seconds"] == 20
        assert trigger.schedule.window is not None

    def test_without_waiting_it_never_defers(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        make_parent(wait_for_completion=False, deferrable=True, durable=True).run()

        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_never_hands_the_trigger_to_the_task_runner(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        try:
            deferral(make_parent(wait_for_completion=True, deferrable=True))
        except DagRunTriggerException:  # pragma: no cover - the failure this test exists for
            pytest.fail("the operator raised DagRunTriggerException")


class TestResume:
    def test_an_allowed_state_succeeds(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, deferrable=True)
        deferred = deferral(parent)

        assert resume(parent, deferred, event_for(deferred, "success")) is None

    def test_a_failed_state_raises_a_retryable_error_naming_the_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, deferrable=True)
        deferred = deferral(parent)
        event = event_for(deferred, "failed")

        with pytest.raises(
            AirflowException, match=re.escape(f"run '{event['run_id']}' ended in failed state 'failed'")
        ) as info:
            resume(parent, deferred, event)

        # The task runner retries an AirflowException while tries are left, never an AirflowFailException.
        assert not isinstance(info.value, AirflowFailException)

    def test_a_final_state_in_neither_list_is_a_clear_error(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, deferrable=True, failed_states=[])
        deferred = deferral(parent)

        with pytest.raises(AirflowException, match="neither allowed_states"):
            resume(parent, deferred, event_for(deferred, "failed"))

    def test_a_run_that_does_not_exist_raises_the_triggers_error(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, deferrable=True)
        deferred = deferral(parent)

        with pytest.raises(AirflowException, match="was not found"):
            resume(
                parent, deferred, event_for(deferred, None, error="Dag run 'x' of Dag 'child' was not found")
            )

    def test_a_success_reads_the_result_of_the_run_it_saw_not_a_run_requeued_since(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, returns={"answer": 42})
        parent = make_parent(wait_for_completion=True, deferrable=True, result_task_ids=["answer"])
        deferred = deferral(parent)
        event = event_for(deferred, "success")
        # Between the trigger's event and the resume, a person clears the child run: it is queued
        # again, and its result task has not run (yet) in its new life.
        (run,) = supervisor.runs_of("child")
        run.created_at, run.seconds = now(), 600
        sent_before = len(supervisor.sent)

        # Never a silent None: the resume reads the result of the success it was told of, and the
        # run no longer has it, so the try fails naming the task (a durable retry reconnects).
        with pytest.raises(
            AirflowException, match="Task 'answer' of Dag 'child' run .* pushed no return_value"
        ):
            resume(parent, deferred, event)
        assert not [m for m in supervisor.sent[sent_before:] if isinstance(m, GetDagRunState)]


class TestEarlyEnd:
    def test_the_deferral_carries_the_early_end_rules_to_the_trigger(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(
            wait_for_completion=True,
            deferrable=True,
            fail_fast=True,
            critical_task_ids=["work"],
            result_task_ids=["answer"],
        )

        trigger = deferral(parent).trigger

        assert isinstance(trigger, DagRunTrigger)
        assert trigger.watch == Watch(
            fail_fast=True, critical_task_ids=("work",), result_task_ids=("answer",)
        )

    def test_an_early_failure_raises_a_retryable_error_naming_the_child_task(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True, deferrable=True, fail_fast=True)
        deferred = deferral(parent)
        event = event_for(deferred, "running", early="failure", task="work_2", task_state="upstream_failed")

        with pytest.raises(
            AirflowException,
            match=re.escape(f"Task 'work_2' of Dag 'child' run '{event['run_id']}' is 'upstream_failed'"),
        ) as info:
            resume(parent, deferred, event)

        assert not isinstance(info.value, AirflowFailException)

    def test_an_early_success_returns_the_result_of_the_running_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag(
            "child",
            run_seconds=60,
            returns={"answer": 42},
            task_timeline={"answer": [(0, "success")], "teardown": [(0, "running")]},
        )
        parent = make_parent(wait_for_completion=True, deferrable=True, result_task_ids=["answer"])
        deferred = deferral(parent)

        result = resume(parent, deferred, event_for(deferred, "running", early="success"))

        assert result == {"answer": 42}
        (run,) = supervisor.runs_of("child")
        assert run.state() == "running"


class TestCrashPoints:
    def test_killed_after_the_trigger_before_the_deferral_the_retry_defers_on_the_same_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True, deferrable=True, durable=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                TriggerDagRunOperator, "defer", lambda *a, **k: (_ for _ in ()).throw(WorkerKilled())
            )
            parent.run_until_killed()

        parent.retry()
        deferred = deferral(parent)

        (run,) = supervisor.runs_of("child")
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert event_for(deferred, None)["run_id"] == run.run_id

    def test_killed_while_resuming_the_retry_finds_the_finished_run_and_succeeds(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=5)
        parent = make_parent(wait_for_completion=True, deferrable=True, durable=True)
        deferred = deferral(parent)
        clock.traveller.shift(10)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                TriggerDagRunOperator, "get_job_result", lambda *a, **k: (_ for _ in ()).throw(WorkerKilled())
            )
            with pytest.raises(WorkerKilled):
                resume(parent, deferred, event_for(deferred, "success"))

        parent.retry()
        result = parent.run()

        assert result is None
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert len(supervisor.runs_of("child")) == 1
