"""``cancel_on_kill``'s sign-in: a blip is never fatal; only bad configuration, before any trigger, is final."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.operators.modes.cancel_sign_in import is_first_try_since_clear
from standard_ext.triggers.dag_runs import DagRunsTrigger
from tests.fake_api import TOKEN
from tests.fake_task import FakeTaskInstance
from tests.unit.conftest import API_CONN_ID, API_LOGIN, connect
from tests.unit.fanout_kill_helpers import child_dag, make
from tests.unit.fanout_parent import CHILD, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

pytestmark = pytest.mark.timeout(30)

WAITING: dict[str, Any] = {"wait_for_completion": True, "cancel_on_kill": True}
RETRYING = "Could not sign in to the Airflow API; trying again"


def failing_sign_ins(api: FakeApi, monkeypatch: pytest.MonkeyPatch, *, times: int, status: int = 503) -> None:
    """The API server answers the first ``times`` sign-ins with ``status``, then signs in as usual."""
    sign_in = api._sign_in
    calls = {"n": 0}

    def flaky(body: dict[str, Any]) -> tuple[int, Any]:
        calls["n"] += 1
        if calls["n"] <= times:
            return status, {"detail": "Service Unavailable"}
        return sign_in(body)

    monkeypatch.setattr(api, "_sign_in", flaky)


class TestABlipIsNeverFatal:
    @pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
    def test_a_server_that_comes_back_is_signed_in_to_and_the_task_goes_on(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        clock: Clock,
        monkeypatch: pytest.MonkeyPatch,
        status: int,
    ) -> None:
        supervisor.add_dag("child", run_seconds=3)
        connect(supervisor, api)
        failing_sign_ins(api, monkeypatch, times=3, status=status)

        with structlog.testing.capture_logs() as logs:
            make_parent(**WAITING).run()

        assert [e["event"] for e in logs].count(RETRYING) == 3
        assert clock.waits[:3] == [1.0, 2.0, 4.0]
        assert api.routes()[:4] == [TOKEN] * 4
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_the_retries_are_logged_without_the_password(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        clock: Clock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        supervisor.add_dag("child", run_seconds=3)
        connect(supervisor, api)
        failing_sign_ins(api, monkeypatch, times=1)

        with structlog.testing.capture_logs() as logs:
            make_parent(**WAITING).run()

        (retry,) = [e for e in logs if e["event"] == RETRYING]
        assert retry["conn_id"] == API_CONN_ID
        assert "HTTP 503" in retry["error"]
        assert api.users[API_LOGIN] not in repr(logs)


class TestWhatIsFinal:
    def test_refused_credentials_on_a_later_try_leave_the_retries_to_apply(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api, password="wrong")
        parent = make_parent(**WAITING)
        # An earlier try may have triggered a child: failing for good would leave it to nobody.
        parent.retry()

        with pytest.raises(AirflowException, match="refused the credentials") as info:
            parent.run()

        assert not isinstance(info.value, AirflowFailException)
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_a_missing_connection_on_a_later_try_leaves_the_retries_to_apply(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(**WAITING)
        parent.retry()

        with pytest.raises(AirflowException, match="which is not defined") as info:
            parent.run()

        assert not isinstance(info.value, AirflowFailException)

    def test_refused_credentials_on_the_first_try_after_a_clear_are_final(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api, password="wrong")
        parent = make_parent(**WAITING)
        parent.retry()
        parent.clear()

        with pytest.raises(AirflowFailException, match="refused the credentials"):
            parent.run()

    def test_a_wrong_url_path_on_the_first_try_is_final(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        failing_sign_ins(api, monkeypatch, times=99, status=404)

        with pytest.raises(AirflowFailException, match="HTTP 404"):
            make_parent(**WAITING).run()

        assert api.routes() == [TOKEN]

    def test_at_a_fan_outs_resume_refused_credentials_leave_the_retries_to_apply(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        connect(supervisor, api)
        parent = make(supervisor, clock, confs=confs(3), max_active=1, deferrable=True)
        with pytest.raises(TaskDeferred) as info:
            parent.run()
        trigger = info.value.trigger
        assert isinstance(trigger, DagRunsTrigger)
        # The password was changed while the fan-out waited in the triggerer.
        api.users[API_LOGIN] = "changed"
        event = {"dag_id": CHILD, "fan_out": trigger.fan_out.to_json()}

        with pytest.raises(AirflowException, match="refused the credentials") as raised:
            parent.resume(info.value, event)

        assert not isinstance(raised.value, AirflowFailException)
        # No further item started: the sign-in comes before them.
        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestFirstTrySinceClear:
    @pytest.mark.parametrize(
        ("try_number", "max_tries", "retries", "first"),
        [
            (1, 0, 0, True),
            (1, 2, 2, True),
            (2, 2, 2, False),
            (3, 2, 2, False),
            # A scheduler reset adds a try past max_tries: a later one.
            (2, 0, 0, False),
            # Cleared after try 3 with retries=2: max_tries = 3 + 2.
            (4, 5, 2, True),
            (5, 5, 2, False),
        ],
    )
    def test_as_airflow_reckons_it(self, try_number: int, max_tries: int, retries: int, first: bool) -> None:
        ti = FakeTaskInstance(try_number=try_number, max_tries=max_tries, retries=retries)
        assert is_first_try_since_clear(ti=ti, retries=retries) is first
