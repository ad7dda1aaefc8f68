"""The operator's interface: stock parameters and defaults, ``partial()``, the ``ResumableJobMixin`` hooks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators import trigger_dagrun as stock_module
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.unit.conftest import START

if TYPE_CHECKING:
    import pytest

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent


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
