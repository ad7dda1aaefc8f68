from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.providers.standard.operators import trigger_dagrun as stock_module
from airflow.providers.standard.operators.trigger_dagrun import DagIsPaused
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.comms import GetDag, TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from task_sdk_ext import DagNotFound
from tests.unit.conftest import KEY, LINK_KEY, START, WorkerKilled

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes import FakeSupervisor
    from tests.unit.conftest import Clock, Parent

    MakeParent = Callable[..., Parent]


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
    def test_first_check_right_after_triggering_and_notices_the_end_within_a_second(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=5)
        parent = make_parent(wait_for_completion=True)  # stock default poke_interval=60

        parent.run()

        # One question when the wait begins (how long the child's last success took: none yet), then one
        # request per check (the task states); the run's state is read once its tasks have all finished.
        checks = ["GetTaskStates"] * 6 + ["GetDagRunState"]
        assert supervisor.kinds_sent() == ["GetDagRunState", "TriggerDagRun", "GetPreviousDagRun", *checks]
        assert clock.waits == [1, 1, 1, 1, 1]
        assert clock.elapsed() - 5 <= 1

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


class TestSkip:
    def test_existing_fixed_run_skips_before_anything_is_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "fixed")
        parent = make_parent(durable=True, trigger_run_id="fixed", skip_when_already_exists=True)

        with pytest.raises(AirflowSkipException, match="'child'.*'fixed'"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        assert KEY not in parent.store.values


class TestConflictThatIsNotOurs:
    @pytest.mark.parametrize("durable", [True, False])
    def test_fails_without_retrying(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, durable: bool
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "fixed")
        parent = make_parent(durable=durable, trigger_run_id="fixed")

        with pytest.raises(AirflowFailException, match="Dag 'child' already has a run 'fixed'"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        assert KEY not in parent.store.values


class TestReset:
    def test_existing_run_is_reset(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child")
        run = supervisor.add_run("child", "fixed", outcome="failed")
        parent = make_parent(wait_for_completion=True, trigger_run_id="fixed", reset_dag_run=True)

        parent.run()

        assert (run.resets, run.state()) == (1, "success")
        assert supervisor.sent_of(TriggerDagRun)[0].reset_dag_run is True


class TestPaused:
    def test_paused_dag_fails_before_anything_is_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", is_paused=True)
        parent = make_parent(durable=True, fail_when_dag_is_paused=True)

        with pytest.raises(DagIsPaused, match="child"):
            parent.run()

        assert supervisor.kinds_sent() == ["GetDag"]
        assert supervisor.sent_of(GetDag)[0].dag_id == "child"
        assert parent.store.values == {}


class TestBadInput:
    def test_non_json_conf_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True, conf={"when": object()})

        with pytest.raises(ValueError, match="conf parameter should be JSON Serializable"):
            parent.run()

        assert supervisor.sent == []
        assert parent.store.values == {}

    def test_unknown_dag_names_it_and_triggers_nothing(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        parent = make_parent(trigger_dag_id="no_such_dag", wait_for_completion=True)

        with pytest.raises(DagNotFound, match="'no_such_dag'"):
            parent.run()

        assert supervisor.runs == {}
        # The free-id check before the trigger, and no wait after it.
        assert supervisor.kinds_sent() == ["GetDagRunState", "TriggerDagRun"]

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            pytest.param({"trigger_run_id": "a/b"}, "trigger_run_id", id="run-id-with-slash"),
            pytest.param({"trigger_run_id": "x" * 251}, "trigger_run_id", id="run-id-too-long"),
            pytest.param({"trigger_dag_id": "has space"}, "trigger_dag_id", id="bad-dag-id"),
            pytest.param({"run_after": datetime(2026, 1, 1)}, "run_after", id="naive-run-after"),
        ],
    )
    def test_bad_rendered_value_is_refused_before_anything_is_sent_or_saved(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, kwargs: dict[str, Any], parameter: str
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True, wait_for_completion=True, **kwargs)

        with pytest.raises(ValueError, match=rf"Task 'trigger', parameter {parameter}: "):
            parent.run()

        assert supervisor.sent == []
        assert parent.store.values == {}

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            pytest.param({"fast_poll_window": -1}, "fast_poll_window", id="negative-fast-window"),
            pytest.param({"poke_interval": 0}, "poke_interval", id="zero-poke-interval"),
            pytest.param({"poke_interval": -5}, "poke_interval", id="negative-poke-interval"),
        ],
    )
    @pytest.mark.parametrize("deferrable", [False, True])
    def test_a_schedule_that_cannot_move_is_refused_at_construction(
        self, kwargs: dict[str, Any], parameter: str, deferrable: bool
    ) -> None:
        with pytest.raises(ValueError, match=f"Task 't': {parameter} must be"):
            TriggerDagRunOperator(task_id="t", trigger_dag_id="child", deferrable=deferrable, **kwargs)


class TestStockParity:
    def test_note_dates_and_conf_reach_the_trigger_message(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        logical = datetime(2026, 1, 1, tzinfo=UTC)
        after = datetime(2026, 1, 2, tzinfo=UTC)
        parent = make_parent(conf={"a": 1}, note="why", logical_date=logical, run_after=after)

        parent.run()

        (msg,) = supervisor.sent_of(TriggerDagRun)
        assert (msg.conf, msg.note, msg.logical_date, msg.run_after) == ({"a": 1}, "why", logical, after)
        assert msg.run_id == "manual__2026-01-02T00:00:00+00:00"

    def test_logical_date_defaults_to_now_as_stock(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        make_parent().run()

        (msg,) = supervisor.sent_of(TriggerDagRun)
        assert msg.logical_date == START
        assert re.fullmatch(r"manual__2026-11-21T12:00:00\+00:00", msg.run_id)

    def test_openlineage_parent_info_is_injected_with_the_providers_helper(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def inject(*, dr_conf: dict[str, Any] | None, ti: Any) -> dict[str, Any]:
            return {**(dr_conf or {}), "openlineage": {"parentRunId": "abc"}}

        monkeypatch.setattr(stock_module, "safe_inject_openlineage_properties_into_dagrun_conf", inject)
        supervisor.add_dag("child")

        make_parent(conf={"a": 1}).run()

        assert supervisor.sent_of(TriggerDagRun)[0].conf == {"a": 1, "openlineage": {"parentRunId": "abc"}}

    def test_durable_reaches_mapped_and_default_args_construction(self) -> None:
        from airflow.sdk import DAG

        with DAG("p", schedule=None, default_args={"durable": False}):
            op = TriggerDagRunOperator(task_id="t", trigger_dag_id="child")

        assert op.durable is False
        # Durable unless told otherwise, as ResumableJobMixin is.
        assert TriggerDagRunOperator(task_id="u", trigger_dag_id="child").durable is True


class TestMapped:
    def test_durable_reaches_partial(self) -> None:
        from airflow.sdk import DAG

        with DAG("p", schedule=None):
            mapped = TriggerDagRunOperator.partial(
                task_id="fan", trigger_dag_id="child", durable=True, fast_poll_window=2
            ).expand(conf=[{"i": 1}, {"i": 2}])

        assert mapped.partial_kwargs["durable"] is True
        assert mapped.partial_kwargs["fast_poll_window"] == 2


class TestMixinInterface:
    """The ResumableJobMixin hooks, for code that drives the operator through the mixin's interface."""

    def test_job_status_is_the_child_state_or_not_found(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "r1", seconds=10)
        op = TriggerDagRunOperator(task_id="t", trigger_dag_id="child")
        context: Any = {"ti": make_parent().ti}

        assert op.get_job_status({"dag_id": "child", "run_id": "r1"}, context) == "running"
        assert op.get_job_status({"dag_id": "child", "run_id": "gone"}, context) == "not_found"

    def test_active_and_succeeded_follow_the_operators_states(self) -> None:
        op = TriggerDagRunOperator(task_id="t", trigger_dag_id="child", allowed_states=["success", "failed"])

        assert [op.is_job_active(s) for s in ("queued", "running", "success")] == [True, True, False]
        assert [op.is_job_succeeded(s) for s in ("success", "failed", "running")] == [True, True, False]
