"""Early failure (``fail_fast``, ``critical_task_ids``), early success (``result_task_ids``) and progress lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.unit.conftest import kill_mid_wait

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

WAITING: dict[str, Any] = {"wait_for_completion": True, "poke_interval": 10, "logical_date": None}
# A child whose work is done after 2 s and whose teardown runs until 60 s.
TEARDOWN = 60


def add_child(supervisor: FakeSupervisor, *, work: str, work_at: float = 2, **kwargs: Any) -> None:
    supervisor.add_dag(
        "child",
        run_seconds=TEARDOWN,
        outcome="failed" if work == "failed" else "success",
        task_timeline={
            "work": [(0, "running"), (work_at, work)],
            "cleanup": [(0, "running"), (1, "failed")],
            "teardown": [(0, "running"), (TEARDOWN, "success")],
        },
        **kwargs,
    )


class TestFailFast:
    def test_a_failed_task_fails_the_parent_at_once_naming_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        add_child(supervisor, work="failed")

        with pytest.raises(AirflowException, match=r"Task 'cleanup' of Dag 'child' run '[^']+' is 'failed'"):
            make_parent(fail_fast=True, **WAITING).run()

        assert clock.elapsed() <= 2

    def test_critical_task_ids_narrows_which_failures_count(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        add_child(supervisor, work="failed", work_at=3)

        with pytest.raises(AirflowException, match=r"Task 'work' of Dag 'child' run '[^']+' is 'failed'"):
            make_parent(fail_fast=True, critical_task_ids=["work"], **WAITING).run()

        # 'cleanup' failed at 1 s and was ignored; 'work' failed at 3 s.
        assert 3 <= clock.elapsed() <= 4

    def test_without_fail_fast_the_parent_waits_for_the_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        add_child(supervisor, work="failed")

        with pytest.raises(AirflowException, match=r"run '[^']+' ended in failed state 'failed'"):
            make_parent(**WAITING).run()

        assert clock.elapsed() >= TEARDOWN

    def test_a_durable_retry_of_a_fail_fast_failure_triggers_a_fresh_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        add_child(supervisor, work="failed")
        parent = make_parent(fail_fast=True, durable=True, **WAITING)
        with pytest.raises(AirflowException, match="fail_fast"):
            parent.run()

        parent.retry()
        with structlog.testing.capture_logs() as logs, pytest.raises(AirflowException, match="fail_fast"):
            parent.run()

        (why,) = [entry for entry in logs if "not reconnecting" in entry["event"]]
        assert (why["task"], why["task_state"]) == ("cleanup", "failed")
        # The first child is still tearing down; the retry did not reconnect to it.
        assert len(supervisor.sent_of(TriggerDagRun)) == 2
        assert len({run.run_id for run in supervisor.runs_of("child")}) == 2


class TestEarlySuccess:
    def test_returns_the_result_once_the_result_tasks_succeeded_without_waiting_for_teardown(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        add_child(supervisor, work="success", returns={"work": "answer"})

        result = make_parent(result_task_ids=["work"], **WAITING).run()

        assert result == {"work": "answer"}
        assert clock.elapsed() <= 3

    def test_a_failure_rule_that_fired_wins_over_early_success(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        add_child(supervisor, work="success", returns={"work": "answer"})

        with pytest.raises(AirflowException, match=r"Task 'cleanup' .* is 'failed'"):
            make_parent(result_task_ids=["work"], fail_fast=True, **WAITING).run()

    def test_after_a_reconnect_the_result_is_returned_early_too(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        add_child(supervisor, work="success", work_at=5, returns={"work": "answer"})
        parent = make_parent(result_task_ids=["work"], durable=True, **WAITING)
        kill_mid_wait(parent, poll=2)

        parent.retry()

        assert parent.run() == {"work": "answer"}
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert clock.elapsed() < TEARDOWN


class TestProgress:
    def test_logs_the_childs_progress_only_when_it_changes(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag(
            "child",
            run_seconds=12,
            task_timeline={
                "extract": [(0, "running"), (3, "success")],
                "load": [(3, "running"), (10, "success")],
            },
        )

        with structlog.testing.capture_logs() as logs:
            make_parent(**WAITING).run()

        lines = [entry["progress"] for entry in logs if entry["event"] == "Dag run progress"]
        assert lines == [
            "0/2 tasks done, 1 running, 0 failed",
            "1/2 tasks done, 1 running, 0 failed",
            "2/2 tasks done, 0 running, 0 failed",
        ]


class TestContradictions:
    @pytest.mark.parametrize(
        ("kwargs", "fault"),
        [
            ({"fail_fast": True}, "fail_fast needs wait_for_completion=True"),
            (
                {"fail_fast": True, "critical_task_ids": ["work"]},
                "fail_fast, critical_task_ids needs wait_for_completion=True",
            ),
            (
                {"wait_for_completion": True, "critical_task_ids": ["work"]},
                "critical_task_ids only narrows fail_fast",
            ),
        ],
    )
    def test_are_refused_at_construction_naming_the_task(self, kwargs: dict[str, Any], fault: str) -> None:
        with pytest.raises(ValueError, match=rf"Task 'run_child': {fault}"):
            TriggerDagRunOperator(task_id="run_child", trigger_dag_id="child", **kwargs)

    def test_a_bad_critical_task_ids_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        with pytest.raises(ValueError, match=r"Task 'trigger': critical_task_ids must be a list"):
            make_parent(fail_fast=True, critical_task_ids="work", **WAITING).run()

        assert supervisor.sent == []


class TestAttach:
    def test_waits_on_the_existing_run_and_returns_its_result_without_triggering(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", returns={"work": "shared answer"})
        supervisor.add_run("child", "request-42", seconds=3)

        result = make_parent(
            trigger_run_id="request-42", attach_when_already_exists=True, result_task_ids=["work"], **WAITING
        ).run()

        assert result == {"work": "shared answer"}
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_two_parents_asking_the_same_question_share_one_child_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=3, returns={"work": "shared answer"})
        asking = {
            "trigger_run_id": "request-42",
            "attach_when_already_exists": True,
            "result_task_ids": ["work"],
        }

        first = make_parent(**asking, **WAITING)
        second = make_parent(**asking, **WAITING)

        assert first.run() == second.run() == {"work": "shared answer"}
        assert [run.run_id for run in supervisor.runs_of("child")] == ["request-42"]
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert second.ti.xcoms["trigger_run_id"] == "request-42"

    def test_a_free_id_is_triggered_as_usual(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0)

        make_parent(trigger_run_id="request-43", attach_when_already_exists=True, **WAITING).run()

        assert [m.run_id for m in supervisor.sent_of(TriggerDagRun)] == ["request-43"]

    def test_a_durable_retry_after_the_attached_run_failed_does_not_reset_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "request-42", seconds=3, outcome="failed")
        parent = make_parent(
            trigger_run_id="request-42", attach_when_already_exists=True, durable=True, **WAITING
        )
        with pytest.raises(AirflowException, match="ended in failed state"):
            parent.run()

        parent.retry()
        with pytest.raises(AirflowException, match="ended in failed state"):
            parent.run()

        # Shared with whoever else attached: never reset, never triggered.
        assert supervisor.sent_of(TriggerDagRun) == []
        assert supervisor.runs["child", "request-42"].resets == 0

    @pytest.mark.parametrize("other", ["skip_when_already_exists", "reset_dag_run"])
    def test_it_cannot_be_combined_with_the_other_answers(self, other: str) -> None:
        answers: dict[str, Any] = {other: True}
        with pytest.raises(
            ValueError, match=rf"Task 'run_child': attach_when_already_exists and {other} .* choose one"
        ):
            TriggerDagRunOperator(
                task_id="run_child", trigger_dag_id="child", attach_when_already_exists=True, **answers
            )
