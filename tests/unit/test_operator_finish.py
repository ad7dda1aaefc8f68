"""Whether a deferred task may end in the triggerer, and its resume when ``dag.test()`` resumes it anyway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk import DAG, Asset, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.listener import get_listener_manager

from standard_ext.operators.modes.deferrable import why_resume_on_worker
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.triggers.dag_run import DagRunTrigger
from tests.unit.test_operator_deferrable import deferral, resume

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent

DEFERRING: dict[str, Any] = {"wait_for_completion": True, "deferrable": True, "logical_date": None}
ENDING = {**DEFERRING, "end_from_trigger": True}


def operator(**kwargs: Any) -> TriggerDagRunOperator:
    return TriggerDagRunOperator(task_id="trigger", trigger_dag_id="child", **{**ENDING, **kwargs})


def on_success(context: Any) -> None: ...


class ResumesOnItsOwn(TriggerDagRunOperator):
    def get_job_result(self, external_id: Any, context: Any) -> Any:
        return "mine"


class OneListener:
    """A listener plugin, as OpenLineage registers one: it only has to be registered to count."""


@pytest.fixture
def a_listener() -> Iterator[None]:
    listener = OneListener()
    get_listener_manager().add_listener(listener)  # type: ignore[no-untyped-call]  # unannotated
    yield
    get_listener_manager().pm.unregister(listener)


class TestWhereASuccessEnds:
    def test_by_default_a_worker_resumes_the_task(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)

        with structlog.testing.capture_logs() as logs:
            deferred = deferral(make_parent(**DEFERRING))

        trigger = deferred.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert trigger.finish_on_success is False
        (deferring,) = [e for e in logs if e["event"] == "Deferring until the Dag run ends"]
        assert (deferring["finish_on_success"], deferring["reason"]) == ("worker", "end_from_trigger=False")

    def test_asked_to_the_trigger_is_told_to_end_the_task_and_push_its_result(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)

        with structlog.testing.capture_logs() as logs:
            deferred = deferral(make_parent(**ENDING))

        trigger = deferred.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert (trigger.finish_on_success, trigger.push_result) == (True, True)
        (deferring,) = [e for e in logs if e["event"] == "Deferring until the Dag run ends"]
        assert (deferring["finish_on_success"], deferring["reason"]) == ("triggerer", None)

    def test_an_on_success_callback_from_default_args_resumes_it_on_a_worker(self) -> None:
        # The Dag processor drops a trigger-ended task's success callback: only a worker runs it.
        with DAG("parent", schedule=None, default_args={"on_success_callback": on_success}):
            parent = operator()

        assert why_resume_on_worker(parent) == "an on_success_callback runs only when a worker ends the task"

    def test_clear_on_success_resumes_it_on_a_worker(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIRFLOW__STATE_STORE__CLEAR_ON_SUCCESS", "True")

        assert why_resume_on_worker(operator()) == (
            "[state_store] clear_on_success runs only when a worker ends the task"
        )

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"end_from_trigger": False}, "end_from_trigger=False"),
            ({"on_success_callback": on_success}, "an on_success_callback"),
            ({"allowed_states": ["failed"], "failed_states": ["success"]}, "success is not an allowed state"),
            ({"outlets": [Asset("s3://bucket/child")]}, "the task has outlets"),
            ({"multiple_outputs": True}, "multiple_outputs"),
            ({"post_execute": lambda context, result: None}, "a post_execute hook"),
        ],
    )
    def test_a_worker_resumes_it_when_a_worker_would_do_more_than_push_the_result(
        self, kwargs: dict[str, Any], reason: str
    ) -> None:
        why = why_resume_on_worker(operator(**kwargs))

        assert why is not None
        assert why.startswith(reason)

    def test_a_worker_resumes_it_when_a_subclass_overrides_the_resume(self) -> None:
        op = ResumesOnItsOwn(task_id="trigger", trigger_dag_id="child", **ENDING)

        assert why_resume_on_worker(op) == "ResumesOnItsOwn overrides get_job_result()"

    @pytest.mark.usefixtures("a_listener")
    def test_a_worker_resumes_it_when_a_listener_is_registered(self) -> None:
        assert (
            why_resume_on_worker(operator()) == "listeners (OpenLineage, say) see a task end only on a worker"
        )

    def test_a_worker_resumes_it_when_a_downstream_task_maps_over_the_result(self) -> None:
        with DAG("parent", schedule=None):
            parent = operator(result_task_ids=["answer"])

            @task
            def each(item: Any) -> None: ...

            each.expand(item=parent.output)

        assert (
            why_resume_on_worker(parent)
            == "a downstream task maps over the result, which a worker must record"
        )

    def test_a_plain_downstream_task_does_not_stop_it(self) -> None:
        with DAG("parent", schedule=None):
            parent = operator()

            @task
            def after(value: Any) -> None: ...

            after(parent.output)

        assert why_resume_on_worker(parent) is None

    def test_without_do_xcom_push_the_trigger_is_told_not_to_push(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)

        trigger = deferral(make_parent(do_xcom_push=False, **ENDING)).trigger

        assert isinstance(trigger, DagRunTrigger)
        assert (trigger.finish_on_success, trigger.push_result) == (True, False)


class TestResumedWithTheEndEventsState:
    """``dag.test()`` runs the trigger in line and resumes the task with a task-end event's payload."""

    def test_returns_the_result_the_triggerer_would_have_pushed(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, returns={"answer": 42})
        parent = make_parent(result_task_ids=["answer"], **DEFERRING)
        deferred = deferral(parent)

        assert resume(parent, deferred, "success") == {"answer": 42}

    def test_any_other_state_fails_naming_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0)
        parent = make_parent(**DEFERRING)
        deferred = deferral(parent)

        with pytest.raises(
            AirflowException, match=r"Task 'trigger' resumed with an unexpected event 'failed'"
        ) as info:
            resume(parent, deferred, "failed")
        assert not isinstance(info.value, AirflowFailException)
