"""The operator's trigger, waited for or not: what it sends, pushes and logs; how the child's end ends it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.comms import TriggerDagRun

from tests.unit.conftest import LINK_KEY, WorkerKilled, kill_mid_wait

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent


class TestFireAndForget:
    def test_triggers_once_and_does_not_poll(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(conf={"n": 1})

        parent.run()

        (run,) = supervisor.runs_of("child")
        # The stock default logical date (now) gives manual__<now>, an id another run may hold: checked first.
        assert supervisor.kinds_sent() == ["GetDagRunState", "TriggerDagRun"]
        assert run.conf == {"n": 1}

    def test_a_run_without_logical_date_gets_a_random_suffix_and_needs_no_check(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        make_parent(logical_date=None).run()

        (msg,) = supervisor.sent
        assert isinstance(msg, TriggerDagRun)
        assert re.fullmatch(r"manual__2026-11-21T12:00:00\+00:00_\w+", msg.run_id)

    def test_pushes_the_xcoms_the_link_reads(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent()

        parent.run()

        (run,) = supervisor.runs_of("child")
        assert parent.ti.xcoms["trigger_run_id"] == run.run_id
        assert parent.ti.xcoms["trigger_dag_id"] == "child"
        assert parent.ti.xcoms[LINK_KEY].endswith(f"/dags/child/runs/{run.run_id}")

    def test_never_hands_the_trigger_to_the_task_runner(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        try:
            make_parent(wait_for_completion=True).run()
        except DagRunTriggerException:  # pragma: no cover - the failure this test exists for
            pytest.fail("the operator raised DagRunTriggerException")

    def test_durable_retry_after_a_crash_finishes_without_a_second_trigger(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True)
        # The run is created, then the worker dies before the task can report success.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parent.ti, "xcom_push", lambda key, value: (_ for _ in ()).throw(WorkerKilled()))
            parent.run_until_killed()

        parent.retry()
        parent.run()

        assert len(supervisor.runs_of("child")) == 1
        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestWaitSuccess:
    def test_first_check_a_second_after_triggering_and_notices_the_end_within_a_second(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=5)
        parent = make_parent(wait_for_completion=True)  # stock default poke_interval=60

        parent.run()

        # One question when the wait begins (how long the child's last success took: none yet), then one
        # request per check (the task states), the first a second after the trigger: at once, the run
        # just created could only be queued. The run's state is read once its tasks have all finished.
        checks = ["GetTaskStates"] * 5 + ["GetDagRunState"]
        assert supervisor.kinds_sent() == ["GetDagRunState", "TriggerDagRun", "GetPreviousDagRun", *checks]
        assert clock.waits == [1, 1, 1, 1, 1]
        assert clock.elapsed() - 5 <= 1

    def test_a_run_found_already_there_is_checked_at_once(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        # A durable retry reconnects to the run its first try triggered: it may have ended long ago.
        supervisor.add_dag("child", run_seconds=600)
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=1)
        waited = len(clock.waits)
        asked: list[int] = []
        answer = supervisor._on_GetTaskStates

        def noting(msg: Any) -> Any:
            asked.append(len(clock.waits))
            return answer(msg)

        parent.retry()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(supervisor, "_on_GetTaskStates", noting)
            parent.run()

        # The retry's first check came before any wait of the retry.
        assert asked[0] == waited
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_logs_the_trigger_with_run_id_decision_and_try_number(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, durable=True)

        with structlog.testing.capture_logs() as logs:
            parent.run()

        (triggered,) = [e for e in logs if e["event"] == "Triggered child Dag run"]
        (run,) = supervisor.runs_of("child")
        assert triggered["run_id"] == run.run_id
        assert triggered["decision"] == "trigger"
        assert triggered["try_number"] == 1


class TestWaitFailure:
    def test_failed_child_raises_a_retryable_error_naming_dag_and_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(wait_for_completion=True)

        with pytest.raises(
            AirflowException, match=r"Dag 'child' run '.+' ended in failed state 'failed'"
        ) as info:
            parent.run()

        # The task runner retries an AirflowException while tries are left, never an AirflowFailException.
        assert not isinstance(info.value, AirflowFailException)

    def test_with_retries_left_each_retry_triggers_exactly_one_new_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(wait_for_completion=True, durable=True, retries=2)

        for _ in range(3):
            with pytest.raises(AirflowException):
                parent.run()
            parent.retry()

        runs = supervisor.runs_of("child")
        assert len(runs) == 3
        assert len({r.run_id for r in runs}) == 3

    def test_without_retries_left_the_failure_is_the_same_error(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(wait_for_completion=True, durable=True, retries=0)

        with pytest.raises(AirflowException, match="ended in failed state"):
            parent.run()
        assert len(supervisor.runs_of("child")) == 1

    def test_final_state_outside_both_lists_raises_instead_of_waiting_forever(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(wait_for_completion=True, failed_states=[])

        with pytest.raises(AirflowException, match="neither allowed_states"):
            parent.run()

    def test_custom_states_make_a_failed_child_the_goal(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(wait_for_completion=True, allowed_states=["failed"], failed_states=["success"])

        parent.run()

        assert len(supervisor.runs_of("child")) == 1
