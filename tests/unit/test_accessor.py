from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import time_machine
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

from task_sdk_ext import (
    DagNotFound,
    DagRunAlreadyExists,
    DagRunTriggerRejected,
    TriggerDagRunError,
    trigger_dag_run,
)

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor

AWARE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class TestMessage:
    def test_sends_one_trigger_message_with_every_parameter(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")

        run_id = trigger_dag_run(
            "child",
            "my_run",
            conf={"a": 1},
            logical_date=AWARE,
            run_after=AWARE,
            reset_dag_run=True,
            note="from parent",
        )

        assert run_id == "my_run"
        assert supervisor.sent == [
            TriggerDagRun(
                dag_id="child",
                run_id="my_run",
                conf={"a": 1},
                logical_date=AWARE,
                run_after=AWARE,
                reset_dag_run=True,
                note="from parent",
            )
        ]

    def test_defaults_send_no_dates_no_conf(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")

        trigger_dag_run("child", "r1")

        (msg,) = supervisor.sent_of(TriggerDagRun)
        assert (msg.conf, msg.logical_date, msg.run_after, msg.reset_dag_run, msg.note) == (
            None,
            None,
            None,
            False,
            None,
        )


class TestRunIdGeneration:
    @time_machine.travel(AWARE, tick=False)
    def test_without_logical_date_named_like_a_manual_run_with_random_suffix(
        self, supervisor: FakeSupervisor
    ) -> None:
        supervisor.add_dag("child")

        run_id = trigger_dag_run("child")

        assert re.fullmatch(r"manual__2026-01-02T03:04:05\+00:00_[A-Za-z0-9]+", run_id)
        assert supervisor.sent_of(TriggerDagRun)[0].run_id == run_id

    def test_two_generated_ids_differ(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")

        with time_machine.travel(AWARE, tick=False):
            assert trigger_dag_run("child") != trigger_dag_run("child")
        assert len(supervisor.runs_of("child")) == 2

    def test_with_logical_date_named_after_run_after(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")

        assert trigger_dag_run("child", logical_date=AWARE) == "manual__2026-01-02T03:04:05+00:00"


class TestConflict:
    def test_existing_run_raises_already_exists_with_dag_and_run(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "taken")

        with pytest.raises(DagRunAlreadyExists) as info:
            trigger_dag_run("child", "taken")

        assert (info.value.dag_id, info.value.run_id) == ("child", "taken")
        assert "'child'" in str(info.value)
        assert "'taken'" in str(info.value)

    def test_reset_clears_existing_run_and_returns_its_id(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("child")
        run = supervisor.add_run("child", "taken", outcome="failed")

        assert trigger_dag_run("child", "taken", reset_dag_run=True) == "taken"

        assert run.resets == 1
        assert supervisor.sent_of(TriggerDagRun)[0].reset_dag_run is True


class TestServerErrors:
    def test_unknown_dag_names_it(self, supervisor: FakeSupervisor) -> None:
        with pytest.raises(DagNotFound) as info:
            trigger_dag_run("nope", "r1")

        assert info.value.dag_id == "nope"
        assert info.value.http_status == 404
        assert "'nope'" in str(info.value)

    def test_import_errors_carry_the_servers_reason(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("broken", import_errors=True)

        with pytest.raises(DagRunTriggerRejected) as info:
            trigger_dag_run("broken", "r1")

        assert (info.value.http_status, info.value.reason) == (400, "import_errors")
        assert "import errors" in str(info.value)

    def test_denied_run_type_carries_the_servers_reason(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_dag("manual_only", denies_operator_runs=True)

        with pytest.raises(DagRunTriggerRejected) as info:
            trigger_dag_run("manual_only", "r1")

        assert info.value.reason == "denied_run_type"

    def test_other_server_failure_keeps_status_and_message(
        self, supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def boom(msg: TriggerDagRun) -> None:
            raise AirflowRuntimeError(
                ErrorResponse(
                    error=ErrorType.API_SERVER_ERROR,
                    detail={"status_code": 503, "message": "Service Unavailable", "detail": None},
                )
            )

        monkeypatch.setattr(supervisor, "_on_TriggerDagRun", boom)

        with pytest.raises(TriggerDagRunError) as info:
            trigger_dag_run("child", "r1")

        assert type(info.value) is TriggerDagRunError
        assert info.value.http_status == 503
        assert "Service Unavailable" in str(info.value)

    def test_supervisor_side_failure_is_not_disguised(
        self, supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(msg: TriggerDagRun) -> None:
            raise AirflowRuntimeError(ErrorResponse(error=ErrorType.GENERIC_ERROR, detail={"error": "x"}))

        monkeypatch.setattr(supervisor, "_on_TriggerDagRun", broken)

        with pytest.raises(AirflowRuntimeError) as info:
            trigger_dag_run("child", "r1")

        assert info.value.error.error == ErrorType.GENERIC_ERROR


class TestBadInputSendsNothing:
    @pytest.mark.parametrize(
        ("kwargs", "names"),
        [
            pytest.param({"dag_id": ""}, "dag_id", id="empty-dag-id"),
            pytest.param({"dag_id": "has space"}, "dag_id", id="invalid-dag-id"),
            pytest.param({"dag_id": "child", "conf": ["not", "a", "dict"]}, "conf", id="conf-not-dict"),
            pytest.param({"dag_id": "child", "conf": {"when": AWARE}}, "conf", id="conf-not-json"),
            pytest.param({"dag_id": "child", "run_id": "a/b"}, "run_id", id="run-id-slash"),
            pytest.param({"dag_id": "child", "run_id": "a..b"}, "run_id", id="run-id-dots"),
            pytest.param({"dag_id": "child", "run_id": ""}, "run_id", id="run-id-empty"),
            pytest.param({"dag_id": "child", "run_id": "x" * 251}, "run_id", id="run-id-too-long"),
            pytest.param(
                {"dag_id": "child", "logical_date": datetime(2026, 1, 1)}, "logical_date", id="naive-logical"
            ),
            pytest.param(
                {"dag_id": "child", "run_after": datetime(2026, 1, 1)}, "run_after", id="naive-run-after"
            ),
            pytest.param({"dag_id": "child", "logical_date": "2026-01-01"}, "logical_date", id="date-as-str"),
            pytest.param({"dag_id": "child", "note": 3}, "note", id="note-not-str"),
        ],
    )
    def test_raises_value_error_naming_the_parameter(
        self, supervisor: FakeSupervisor, kwargs: dict[str, object], names: str
    ) -> None:
        supervisor.add_dag("child")

        with pytest.raises(ValueError, match=names):
            trigger_dag_run(**kwargs)  # type: ignore[arg-type]

        assert supervisor.sent == []
        assert supervisor.runs == {}

    def test_run_id_outside_configured_pattern_is_rejected(
        self, supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW__SCHEDULER__ALLOWED_RUN_ID_PATTERN", "^ok_[a-z]+$")

        with pytest.raises(ValueError, match="allowed_run_id_pattern"):
            trigger_dag_run("child", "not_ok")
        assert supervisor.sent == []

    def test_airflow_generated_run_id_is_always_accepted(
        self, supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW__SCHEDULER__ALLOWED_RUN_ID_PATTERN", "^ok_[a-z]+$")
        supervisor.add_dag("child")

        assert trigger_dag_run("child", "manual__2026-01-02T03:04:05+00:00")
