"""The fan-out's ``cancel_on_kill`` before anything is sent: connection, credentials, deferrals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.comms import GetConnection, TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from standard_ext.triggers.dag_runs import DagRunsTrigger
from tests.fake_api import SIGN_IN
from tests.unit.conftest import API_CONN_ID, connect
from tests.unit.fanout_parent import CHILD, FanOutParent, confs, run_deferred

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)


def make(supervisor: FakeSupervisor, shift: Any, **kwargs: Any) -> FanOutParent:
    values: dict[str, Any] = {
        "trigger_dag_id": CHILD,
        "confs": confs(3),
        "wait_for_completion": True,
        "cancel_on_kill": True,
        "poke_interval": 10,
        **kwargs,
    }
    return FanOutParent(supervisor, values, shift)


class TestSignedInBeforeAnyTrigger:
    def test_signs_in_first(self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        connect(supervisor, api)

        make(supervisor, clock.traveller.shift).run()

        assert supervisor.kinds_sent()[0] == "GetConnection"
        assert api.routes() == SIGN_IN
        assert len(supervisor.sent_of(TriggerDagRun)) == 3

    def test_a_missing_connection_fails_the_task_naming_it_before_anything_is_saved_or_sent(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD)
        parent = make(supervisor, clock.traveller.shift, airflow_api_conn_id="airflow_api")

        with pytest.raises(AirflowFailException, match="connection 'airflow_api' .* which is not defined"):
            parent.run()

        assert supervisor.kinds_sent() == ["GetConnection"]
        assert parent.store.values == {}

    def test_refused_credentials_fail_the_task_before_any_trigger(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD)
        connect(supervisor, api, password="wrong")
        parent = make(supervisor, clock.traveller.shift)

        with pytest.raises(AirflowFailException, match="refused the credentials") as info:
            parent.run()

        assert f"connection {API_CONN_ID!r}" in str(info.value)
        assert "wrong" not in str(info.value)
        assert supervisor.sent_of(TriggerDagRun) == []
        assert RECORD_KEY not in parent.store.values

    def test_without_cancel_on_kill_nothing_is_read(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)

        make(supervisor, clock.traveller.shift, cancel_on_kill=False).run()

        assert supervisor.sent_of(GetConnection) == []
        assert api.requests == []


class TestBadInput:
    @pytest.mark.parametrize("value", ["false", 1, None])
    def test_cancel_on_kill_must_be_a_bool(self, value: object) -> None:
        with pytest.raises(ValueError, match="Task 'fan_out': cancel_on_kill must be True or False"):
            TriggerDagRunsOperator(
                task_id="fan_out",
                trigger_dag_id=CHILD,
                confs=[],
                cancel_on_kill=value,  # type: ignore[arg-type]
            )

    @pytest.mark.parametrize("value", ["", "  ", None, 3])
    def test_the_connection_must_be_named(self, value: object) -> None:
        with pytest.raises(ValueError, match="Task 'fan_out': airflow_api_conn_id must name"):
            TriggerDagRunsOperator(
                task_id="fan_out",
                trigger_dag_id=CHILD,
                confs=[],
                cancel_on_kill=True,
                airflow_api_conn_id=value,  # type: ignore[arg-type]
            )

    def test_without_cancel_on_kill_the_connection_is_not_checked(self) -> None:
        TriggerDagRunsOperator(task_id="fan_out", trigger_dag_id=CHILD, confs=[], airflow_api_conn_id="")


class TestDeferral:
    def test_the_trigger_may_cancel_the_runs(
        self, supervisor: FakeSupervisor, api: FakeApi, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=60)
        connect(supervisor, api)

        with pytest.raises(TaskDeferred) as info:
            make(supervisor, virtual.traveller.shift, deferrable=True).run()

        trigger = info.value.trigger
        assert isinstance(trigger, DagRunsTrigger)
        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (True, API_CONN_ID)
        # Its token stays with the worker: the trigger signs in again, from its own connection.
        assert not [token for token in api.issued if token in json.dumps(trigger.serialize()[1])]

    def test_not_without_cancel_on_kill(self, supervisor: FakeSupervisor, virtual: VirtualTime) -> None:
        supervisor.add_dag(CHILD, run_seconds=60)

        with pytest.raises(TaskDeferred) as info:
            make(supervisor, virtual.traveller.shift, deferrable=True, cancel_on_kill=False).run()

        trigger = info.value.trigger
        assert isinstance(trigger, DagRunsTrigger)
        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (False, None)

    def test_each_resume_signs_in_before_it_starts_the_next_items(
        self, supervisor: FakeSupervisor, api: FakeApi, virtual: VirtualTime
    ) -> None:
        # A resume is a new process, which on_kill may have to cancel from: it holds no token yet.
        supervisor.add_dag(CHILD, run_seconds=5)
        connect(supervisor, api)
        parent = make(supervisor, virtual.traveller.shift, deferrable=True, confs=confs(6), max_active=2)

        done = run_deferred(parent)

        assert len(done.result) == 6
        assert api.routes() == SIGN_IN * (1 + done.resumes)
        kinds = [kind for kind in supervisor.kinds_sent() if kind in ("GetConnection", "TriggerDagRun")]
        # Every batch of triggers follows a sign-in (the first try's, then each resume's).
        assert kinds[0] == "GetConnection"
        assert kinds.count("GetConnection") == 1 + done.resumes
        batches = "".join("c" if kind == "GetConnection" else "t" for kind in kinds).split("c")[1:]
        assert all(batch in ("", "t", "tt") for batch in batches)
