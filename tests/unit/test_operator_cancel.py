"""The operator's ``cancel_on_kill`` before anything is sent: the connection, the credentials, the deferral."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.comms import GetConnection, MaskSecret, TriggerDagRun

from standard_ext.operators.modes.cancel_sign_in import SIGN_IN_LONGEST_WAIT, SIGN_IN_RETRY_SECONDS
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.triggers.dag_run import DagRunTrigger
from tests.fake_api import SIGN_IN, TOKEN, closed_port
from tests.unit.conftest import API_CONN_ID, API_LOGIN, API_PASSWORD, connect

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

pytestmark = pytest.mark.timeout(30)

WAITING: dict[str, Any] = {"wait_for_completion": True, "cancel_on_kill": True}


class TestCheckedBeforeAnythingIsSent:
    def test_signs_in_before_the_trigger(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)

        make_parent(cancel_on_kill=True).run()

        assert supervisor.kinds_sent()[0] == "GetConnection"
        assert api.routes() == SIGN_IN
        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        # The token is redacted from the task's log, as the connection's password is.
        assert {m.value for m in supervisor.sent_of(MaskSecret)} == {API_PASSWORD, *api.issued}

    def test_a_missing_connection_fails_the_task_naming_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(airflow_api_conn_id="airflow_api", **WAITING)

        with pytest.raises(AirflowFailException, match="connection 'airflow_api' .* which is not defined"):
            parent.run()

        assert supervisor.kinds_sent() == ["GetConnection"]
        assert parent.store.values == {}

    def test_refused_credentials_fail_the_task(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api, password="wrong")
        parent = make_parent(**WAITING)

        with pytest.raises(AirflowFailException) as info:
            parent.run()

        message = str(info.value)
        assert f"connection {API_CONN_ID!r}" in message
        assert "refused the credentials" in message
        assert "Invalid credentials" in message
        assert "wrong" not in message
        assert supervisor.sent_of(TriggerDagRun) == []
        assert parent.store.values == {}

    def test_an_unreachable_server_is_tried_again_then_leaves_the_retries_to_apply(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child")
        url = f"http://127.0.0.1:{closed_port()}"
        supervisor.connections[API_CONN_ID] = {"conn_type": "http", "host": url, "login": "admin"}
        parent = make_parent(**WAITING)

        with pytest.raises(
            AirflowException, match=f"the Airflow API at {url} .*{API_CONN_ID}.* kept failing"
        ) as info:
            parent.run()

        # A blip is never fatal: the error is one the task's retries apply to.
        assert not isinstance(info.value, AirflowFailException)
        # Waits that double up to 15 s, for at most SIGN_IN_RETRY_SECONDS in all.
        assert clock.waits[:6] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
        assert sum(clock.waits) <= SIGN_IN_RETRY_SECONDS
        assert sum(clock.waits) > SIGN_IN_RETRY_SECONDS - SIGN_IN_LONGEST_WAIT
        assert supervisor.kinds_sent() == ["GetConnection"]

    @pytest.mark.parametrize(("missing", "named"), [("host", "no host"), ("login", "no login")])
    def test_an_incomplete_connection_fails_the_task(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, missing: str, named: str
    ) -> None:
        supervisor.add_dag("child")
        fields: dict[str, Any] = {missing: None}
        connect(supervisor, api, **fields)

        with pytest.raises(AirflowFailException, match=f"connection {API_CONN_ID!r} has {named}"):
            make_parent(**WAITING).run()

        assert api.requests == []
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_a_server_error_is_tried_again_then_leaves_the_retries_to_apply(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        api.failures[TOKEN] = (503, "Service Unavailable")

        with pytest.raises(AirflowException, match="HTTP 503") as info:
            make_parent(**WAITING).run()

        assert not isinstance(info.value, AirflowFailException)
        assert api.routes() == [TOKEN] * (len(clock.waits) + 1)
        assert len(clock.waits) > 1
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_a_connection_in_an_environment_variable_is_found_first(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        supervisor.add_dag("child")
        conn = {"conn_type": "http", "host": api.base_url, "login": API_LOGIN, "password": API_PASSWORD}
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API_DEFAULT", json.dumps(conn))

        make_parent(cancel_on_kill=True).run()

        assert supervisor.sent_of(GetConnection) == []
        assert api.routes() == SIGN_IN

    def test_without_cancel_on_kill_nothing_is_read(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        make_parent().run()

        assert supervisor.sent_of(GetConnection) == []
        assert api.requests == []


class TestBadInput:
    @pytest.mark.parametrize("value", ["false", 1, None])
    def test_cancel_on_kill_must_be_a_bool(self, value: object) -> None:
        with pytest.raises(ValueError, match="Task 'run_child': cancel_on_kill must be True or False"):
            TriggerDagRunOperator(
                task_id="run_child",
                trigger_dag_id="child",
                cancel_on_kill=value,  # type: ignore[arg-type]
            )

    @pytest.mark.parametrize("value", ["", "  ", None, 3])
    def test_the_connection_must_be_named(self, value: object) -> None:
        with pytest.raises(ValueError, match="Task 'run_child': airflow_api_conn_id must name"):
            TriggerDagRunOperator(
                task_id="run_child",
                trigger_dag_id="child",
                cancel_on_kill=True,
                airflow_api_conn_id=value,  # type: ignore[arg-type]
            )

    def test_without_cancel_on_kill_the_connection_is_not_checked(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")

        make_parent(airflow_api_conn_id="", wait_for_completion=True).run()

        assert supervisor.sent_of(GetConnection) == []
        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestDeferral:
    def test_the_trigger_may_cancel_the_run_the_task_triggered(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        connect(supervisor, api)

        with pytest.raises(TaskDeferred) as info:
            make_parent(deferrable=True, airflow_api_conn_id=API_CONN_ID, **WAITING).run()

        trigger = info.value.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (True, API_CONN_ID)
        # Its token stays with the worker: the trigger signs in again, from its own connection.
        assert not [t for t in api.issued if t in json.dumps(trigger.serialize()[1])]

    def test_not_a_run_it_attached_to(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_run("child", "request-42", seconds=3600)
        connect(supervisor, api)

        with pytest.raises(TaskDeferred) as info:
            make_parent(
                deferrable=True, trigger_run_id="request-42", attach_when_already_exists=True, **WAITING
            ).run()

        trigger = info.value.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert trigger.cancel_on_kill is False

    def test_not_without_cancel_on_kill(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child", run_seconds=60)

        with pytest.raises(TaskDeferred) as info:
            make_parent(deferrable=True, wait_for_completion=True).run()

        trigger = info.value.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (False, None)
