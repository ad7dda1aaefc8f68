"""The operator where the stock one has rules users depend on: existing runs, dag.test(), timeouts, context."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from airflow.sdk.execution_time.comms import GetDagRunState, TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.wait import schedule as poll_schedule
from task_sdk_ext import DagNotFound, TriggerDagRunError
from tests.unit.conftest import KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

LOGICAL = datetime(2026, 1, 1, tzinfo=UTC)
# What the stock operator generates for that logical date: the same id on every try and every parent.
LOGICAL_RUN_ID = "manual__2026-01-01T00:00:00+00:00"


class TestGeneratedIdThatAlreadyExists:
    """With a fixed logical date the generated id is deterministic; a run holding it is not ours."""

    @pytest.mark.parametrize("durable", [True, False])
    @pytest.mark.parametrize(
        ("kwargs", "raised", "message"),
        [
            pytest.param({}, AirflowFailException, "that this task did not trigger", id="fails"),
            pytest.param({"skip_when_already_exists": True}, AirflowSkipException, "skipping", id="skips"),
        ],
    )
    def test_fails_or_skips_as_stock_does_before_anything_is_sent_or_saved(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        durable: bool,
        kwargs: dict[str, Any],
        raised: type[Exception],
        message: str,
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", LOGICAL_RUN_ID)
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True, durable=durable, **kwargs)

        with pytest.raises(
            raised, match=re.escape(f"Dag 'child' already has a run '{LOGICAL_RUN_ID}'")
        ) as info:
            parent.run()

        assert message in str(info.value)
        assert supervisor.sent_of(TriggerDagRun) == []
        assert KEY not in parent.store.values

    def test_a_free_one_is_checked_then_triggered_and_a_lost_answer_is_still_ours(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.lose_trigger_responses = 1
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True)

        parent.run()

        assert supervisor.kinds_sent()[:2] == ["GetDagRunState", "TriggerDagRun"]
        (run,) = supervisor.runs_of("child")
        assert run.run_id == LOGICAL_RUN_ID
        assert parent.ti.xcoms["trigger_run_id"] == LOGICAL_RUN_ID

    def test_durable_retry_after_a_failed_child_resets_its_own_run(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", outcome="failed")
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True, durable=True)
        # As the stock operator: an AirflowException, which the task's retries apply to.
        with pytest.raises(AirflowException, match="ended in failed state") as info:
            parent.run()
        assert not isinstance(info.value, AirflowFailException)
        supervisor.dags["child"].outcome = "success"

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.resets, run.state()) == (LOGICAL_RUN_ID, 1, "success")

    def test_clearing_a_parent_that_succeeded_applies_the_stock_rule_again(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=0)
        parent = make_parent(
            logical_date=LOGICAL, wait_for_completion=True, durable=True, skip_when_already_exists=True
        )
        parent.run()

        parent.clear()
        with pytest.raises(AirflowSkipException):
            parent.run()

        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestLogicalDateThatAnotherRunHolds:
    """
    A run under another id (the child's scheduled run) holds the logical date: the id checks free.

    Airflow answers the trigger's unique-constraint violation with the same 409 as a taken run id, and the
    Task SDK's client reports it as "already exists" (or, resetting, clears a run id no run holds).
    """

    SCHEDULED = "scheduled__2026-01-01T00:00:00+00:00"

    @pytest.mark.parametrize("durable", [True, False])
    def test_fails_naming_the_date_without_waiting_on_a_run_that_does_not_exist(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, durable: bool
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", self.SCHEDULED, logical_date=LOGICAL)
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True, durable=durable)

        # No retry frees the date: the task fails without retrying.
        with pytest.raises(AirflowFailException, match=re.escape(f"refused run '{LOGICAL_RUN_ID}'")) as info:
            parent.run()

        assert "holds its logical_date" in str(info.value)
        # Checked free, triggered, then looked up once more: no such run, so nothing is waited on.
        assert supervisor.kinds_sent()[-3:] == ["GetDagRunState", "TriggerDagRun", "GetDagRunState"]
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert [run.run_id for run in supervisor.runs_of("child")] == [self.SCHEDULED]

    def test_with_skip_when_already_exists_it_skips_as_stock_does(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        # Stock's task runner skips on any DAGRUN_ALREADY_EXISTS answer when asked to (_handle_trigger_dag_run).
        supervisor.add_dag("child")
        supervisor.add_run("child", self.SCHEDULED, logical_date=LOGICAL)
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True, skip_when_already_exists=True)

        with pytest.raises(AirflowSkipException, match="holds its logical_date .*skip_when_already_exists"):
            parent.run()

        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert [run.run_id for run in supervisor.runs_of("child")] == [self.SCHEDULED]

    def test_a_reset_cannot_free_it_and_says_why(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", self.SCHEDULED, logical_date=LOGICAL)
        parent = make_parent(logical_date=LOGICAL, wait_for_completion=True, reset_dag_run=True)

        with pytest.raises(
            TriggerDagRunError, match="reset_dag_run resets only a run with this run id"
        ) as info:
            parent.run()

        assert not isinstance(info.value, DagNotFound)
        assert [run.run_id for run in supervisor.runs_of("child")] == [self.SCHEDULED]


class TestInProcessSupervisor:
    """dag.test() lets the API client's ServerResponseError through where a worker gets AirflowRuntimeError."""

    def test_a_fixed_run_id_that_is_free_is_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.in_process = True
        supervisor.add_dag("child", run_seconds=0)

        make_parent(trigger_run_id="fixed", wait_for_completion=True, durable=True).run()

        (run,) = supervisor.runs_of("child")
        assert run.run_id == "fixed"

    def test_unknown_dag_is_named(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.in_process = True

        with pytest.raises(DagNotFound, match="'no_such_dag'") as info:
            make_parent(trigger_dag_id="no_such_dag", logical_date=None).run()

        assert info.value.http_status == 404

    def test_durable_retry_of_a_run_never_created_triggers_the_saved_id(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.in_process = True
        supervisor.add_dag("child", run_seconds=0)
        parent = make_parent(durable=True, wait_for_completion=True)
        parent.store.values[KEY] = {"dag_id": "child", "run_id": "saved", "max_tries": 2}

        parent.run()

        (run,) = supervisor.runs_of("child")
        assert run.run_id == "saved"


class TestExecutionTimeout:
    """execution_timeout covers the wait, which runs inside execute(); docs/migration.md says why."""

    @pytest.fixture
    def alarm_after(self, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Callable[[float], None]:
        """Raise AirflowTaskTimeout from the wait once the clock passes ``seconds``, as the runner's alarm does."""

        def arm(seconds: float) -> None:
            def wait(delay: float, *, stop: object = None) -> None:
                clock.traveller.shift(delay)
                if clock.elapsed() >= seconds:
                    raise AirflowTaskTimeout("Timeout")

            monkeypatch.setattr(poll_schedule, "wait", wait)

        return arm

    def test_the_timeout_names_the_run_it_left(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, alarm_after: Callable[[float], None]
    ) -> None:
        supervisor.add_dag("child", run_seconds=4)
        alarm_after(2)
        parent = make_parent(wait_for_completion=True)

        with pytest.raises(AirflowTaskTimeout, match=r"waiting for Dag 'child' run 'manual__[^']+'"):
            parent.run()

    def test_a_durable_retry_reconnects_instead_of_triggering_again(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, alarm_after: Callable[[float], None]
    ) -> None:
        supervisor.add_dag("child", run_seconds=4)
        alarm_after(2)
        parent = make_parent(wait_for_completion=True, durable=True)
        with pytest.raises(AirflowTaskTimeout):
            parent.run()

        parent.retry()
        alarm_after(60)
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert supervisor.sent_of(GetDagRunState)[-1].run_id == run.run_id
        assert run.state() == "success"


class TestWithoutTaskContext:
    @pytest.mark.parametrize(
        ("context", "durable", "missing"),
        [
            pytest.param({}, False, "'ti'", id="plain-empty"),
            pytest.param({}, True, "'ti', 'task_state_store'", id="durable-empty"),
            pytest.param({"ti": object()}, True, "'task_state_store'", id="durable-no-store"),
        ],
    )
    def test_names_what_is_missing_before_anything_is_sent(
        self, supervisor: FakeSupervisor, context: dict[str, Any], durable: bool, missing: str
    ) -> None:
        op = TriggerDagRunOperator(task_id="run_child", trigger_dag_id="child", durable=durable)

        with pytest.raises(ValueError, match=f"Task 'run_child': execute\\(\\) needs .* no {missing};"):
            op.execute(context)  # type: ignore[arg-type]

        assert supervisor.sent == []
