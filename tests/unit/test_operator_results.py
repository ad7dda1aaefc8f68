"""``result_task_ids``: the child's result becomes the parent task's return value, on every path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.comms import GetTaskStates, GetXCom, TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.unit.conftest import kill_mid_wait
from tests.unit.test_operator_deferrable import deferral, event_for, resume

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

WAITING: dict[str, Any] = {"wait_for_completion": True, "poke_interval": 1, "logical_date": None}


class TestResultShapes:
    def test_returns_each_named_task_value_and_a_mapped_task_as_a_list_in_map_order(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag(
            "child",
            run_seconds=3,
            returns={"answer": {"label": "cat", "score": 0.9}, "teardown": None},
            mapped_returns={"shard": [10, 11, 12]},
        )

        result = make_parent(result_task_ids=["answer", "shard"], **WAITING).run()

        assert result == {"answer": {"label": "cat", "score": 0.9}, "shard": [10, 11, 12]}
        (run,) = supervisor.runs_of("child")
        pulled = supervisor.sent_of(GetXCom)
        # One XCom per task instance, by map index: the question the triggerer may ask too.
        assert [(m.dag_id, m.run_id, m.task_id, m.key, m.map_index) for m in pulled] == [
            ("child", run.run_id, "answer", "return_value", -1),
            *[("child", run.run_id, "shard", "return_value", i) for i in range(3)],
        ]
        # Per named task, its own task instances are asked once (to tell a mapped task).
        per_task = [m.task_ids for m in supervisor.sent_of(GetTaskStates) if m.task_ids]
        assert per_task == [["answer"], ["shard"]]

    def test_a_mapped_task_of_one_index_is_still_a_list(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, mapped_returns={"shard": ["only"]})

        assert make_parent(result_task_ids=["shard"], **WAITING).run() == {"shard": ["only"]}

    def test_without_result_task_ids_returns_nothing_and_reads_no_xcom(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, returns={"answer": 42})

        assert make_parent(**WAITING).run() is None
        assert not supervisor.sent_of(GetXCom)
        # The only task-state questions are the wait's checks: none asks for a result task.
        assert all(msg.task_ids is None for msg in supervisor.sent_of(GetTaskStates))

    def test_a_result_task_that_pushed_nothing_fails_naming_the_task_and_the_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, returns={"answer": None})

        with pytest.raises(
            AirflowException, match=r"Task 'answer' of Dag 'child' run '[^']+' pushed no"
        ) as e:
            make_parent(result_task_ids=["answer"], **WAITING).run()

        (run,) = supervisor.runs_of("child")
        assert run.run_id in str(e.value)

    def test_a_task_the_child_does_not_have_fails_naming_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, returns={"answer": 1})

        with pytest.raises(AirflowException, match=r"has no task 'anwser', named in result_task_ids"):
            make_parent(result_task_ids=["anwser"], **WAITING).run()

        # Found missing from its task states: no XCom is read for it.
        assert not supervisor.sent_of(GetXCom)

    def test_an_allowed_state_other_than_success_returns_no_result(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0, outcome="failed", returns={"answer": 1})

        result = make_parent(
            result_task_ids=["answer"], allowed_states=["success", "failed"], failed_states=[], **WAITING
        ).run()

        assert result is None
        assert not supervisor.sent_of(GetXCom)


class TestResultAfterReconnect:
    def test_a_durable_retry_that_reconnects_returns_the_result(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30, returns={"answer": "forty-two"})
        parent = make_parent(durable=True, result_task_ids=["answer"], **WAITING)
        kill_mid_wait(parent, poll=2)

        parent.retry()
        result = parent.run()

        assert result == {"answer": "forty-two"}
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_a_durable_retry_that_finds_the_child_finished_returns_the_result(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=10, returns={"answer": "forty-two"})
        parent = make_parent(durable=True, result_task_ids=["answer"], **WAITING)
        kill_mid_wait(parent, poll=1)
        clock.traveller.shift(60)

        parent.retry()

        assert parent.run() == {"answer": "forty-two"}
        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestResultTaskIdsInput:
    @pytest.mark.parametrize(
        ("value", "fault"),
        [
            ("answer", "must be a list of task ids"),
            (["answer", ""], "must hold non-empty task ids"),
            (["answer", 3], "must hold non-empty task ids"),
            (["answer", "answer"], "names a task twice"),
        ],
    )
    def test_a_bad_value_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, value: object, fault: str
    ) -> None:
        supervisor.add_dag("child", run_seconds=0)

        with pytest.raises(ValueError, match=rf"Task 'trigger': result_task_ids {fault}"):
            make_parent(result_task_ids=value, **WAITING).run()

        assert supervisor.sent == []

    def test_without_waiting_it_is_refused_at_construction(self) -> None:
        with pytest.raises(
            ValueError, match=r"Task 'run_child': result_task_ids needs wait_for_completion=True"
        ):
            TriggerDagRunOperator(task_id="run_child", trigger_dag_id="child", result_task_ids=["answer"])

    def test_it_is_templated(self) -> None:
        assert "result_task_ids" in TriggerDagRunOperator.template_fields


class TestResultWhenDeferrable:
    def test_the_resume_returns_the_result(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=5, mapped_returns={"shard": ["a", "b"]})
        parent = make_parent(deferrable=True, durable=True, result_task_ids=["shard"], **WAITING)
        deferred = deferral(parent)
        clock.traveller.shift(10)

        assert resume(parent, deferred, event_for(deferred, "success")) == {"shard": ["a", "b"]}
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
