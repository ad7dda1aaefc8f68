"""``cancel_on_kill``'s requests, against a scripted REST API (its decisions: ``test_cancel_decision.py``)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import pytest

from standard_ext.cancel import api as cancel_api
from standard_ext.cancel.decision import Parent
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, TASK_INSTANCE, TOKEN, closed_port
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from tests.fake_api import FakeApi

pytestmark = pytest.mark.timeout(30)

TASK = cancel_api.TaskRef(dag_id="parent", run_id="manual__p", task_id="trigger", map_index=-1, try_number=2)


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("host", "schema", "port", "expected"),
        [
            ("airflow-api", None, None, "http://airflow-api"),
            ("airflow-api", "https", 8443, "https://airflow-api:8443"),
            ("http://airflow-api:8080", None, None, "http://airflow-api:8080"),
            # As HttpHook: a host that holds a scheme is kept, and the port still appended.
            ("https://airflow.example.com", "http", 443, "https://airflow.example.com:443"),
            ("http://proxy/airflow/", None, None, "http://proxy/airflow"),
        ],
    )
    def test_as_the_http_hook_builds_it(
        self, host: str, schema: str | None, port: int | None, expected: str
    ) -> None:
        assert cancel_api.base_url(host=host, schema=schema, port=port) == expected

    def test_the_secrets_are_not_in_the_repr(self) -> None:
        access = cancel_api.ApiAccess(
            conn_id="c", base_url="http://x", username="u", password="pw", token="jwt"
        )

        assert "pw" not in repr(access)
        assert "jwt" not in repr(access)


def access_to(api: FakeApi, *, password: str = API_PASSWORD) -> cancel_api.ApiAccess:
    return cancel_api.ApiAccess(conn_id="api", base_url=api.base_url, username=API_LOGIN, password=password)


def run(exchange: cancel_api.Exchange[cancel_api.T]) -> cancel_api.T:
    return cancel_api.run_sync(exchange, seconds=5, per_request=2)


class TestSignIn:
    def test_keeps_the_token(self, api: FakeApi) -> None:
        access = access_to(api)

        token = run(cancel_api.sign_in(access))

        assert access.token == token == api.issued[0]
        (request,) = api.requests
        assert request.body == {"username": API_LOGIN, "password": API_PASSWORD}

    def test_refused_credentials_raise_with_the_status_and_the_servers_reason(self, api: FakeApi) -> None:
        with pytest.raises(cancel_api.ApiError, match="HTTP 401.*Invalid credentials") as info:
            run(cancel_api.sign_in(access_to(api, password="wrong")))

        assert info.value.status == 401
        assert "wrong" not in str(info.value)

    def test_an_answer_without_a_token_raises(self, api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(api, "_sign_in", lambda body: (201, {"token_type": "bearer"}))

        with pytest.raises(cancel_api.ApiError, match="no access_token"):
            run(cancel_api.sign_in(access_to(api)))


class TestCancelRun:
    def test_an_active_run_is_set_failed(self, api: FakeApi) -> None:
        api.runs[("child", "manual__2026-11-21T12:00:00+00:00")] = "running"

        outcome = run(
            cancel_api.cancel_run(
                access_to(api), dag_id="child", run_id="manual__2026-11-21T12:00:00+00:00", reason="r"
            )
        )

        assert outcome == cancel_api.Outcome(cancelled=True, reason="r")
        assert api.routes() == [TOKEN, DAG_RUN_GET, DAG_RUN_PATCH]
        # The run id's ":" and "+" reach the server as they are.
        assert api.runs[("child", "manual__2026-11-21T12:00:00+00:00")] == "failed"
        assert api.requests[-1].body == {"state": "failed"}

    @pytest.mark.parametrize("state", ["success", "failed"])
    def test_a_run_that_already_ended_is_not_patched(self, api: FakeApi, state: str) -> None:
        # A PATCH would turn a success into a failure.
        api.runs[("child", "r1")] = state

        outcome = run(cancel_api.cancel_run(access_to(api), dag_id="child", run_id="r1", reason="r"))

        assert outcome == cancel_api.Outcome(cancelled=False, reason="r", ended=state)
        assert DAG_RUN_PATCH not in api.routes()
        assert api.runs[("child", "r1")] == state

    def test_every_request_carries_the_token(self, api: FakeApi) -> None:
        api.runs[("child", "r1")] = "queued"

        run(cancel_api.cancel_run(access_to(api), dag_id="child", run_id="r1", reason="r"))

        assert {r.headers["Authorization"] for r in api.requests[1:]} == {f"Bearer {api.issued[0]}"}

    def test_an_expired_token_is_renewed_once(self, api: FakeApi) -> None:
        # A wait longer than [api_auth] jwt_expiration_time (a day) outlives the token from execute().
        api.runs[("child", "r1")] = "running"
        access = access_to(api)
        run(cancel_api.sign_in(access))
        api.expire_tokens()

        outcome = run(cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r"))

        assert outcome.cancelled
        assert api.routes() == [TOKEN, DAG_RUN_GET, TOKEN, DAG_RUN_GET, DAG_RUN_PATCH]

    def test_a_refused_patch_raises_with_the_servers_reason(self, api: FakeApi) -> None:
        api.runs[("child", "r1")] = "running"
        api.failures[DAG_RUN_PATCH] = (403, "Forbidden")

        with pytest.raises(cancel_api.ApiError, match="set the child Dag run failed: HTTP 403.*Forbidden"):
            run(cancel_api.cancel_run(access_to(api), dag_id="child", run_id="r1", reason="r"))


class TestDecideThenCancel:
    def test_reads_the_mapped_task_instance_by_its_map_index(self, api: FakeApi) -> None:
        api.task_instances[("parent", "manual__p", "trigger", 3)] = {
            "state": "failed",
            "try_number": 2,
            "max_tries": 4,
        }
        api.runs[("child", "r1")] = "running"
        seen: list[Parent] = []

        def judge(parent: Parent) -> tuple[bool, str]:
            seen.append(parent)
            return True, "marked failed"

        mapped = cancel_api.TaskRef(
            dag_id="parent", run_id="manual__p", task_id="trigger", map_index=3, try_number=2
        )
        outcome = run(
            cancel_api.decide_then_cancel(
                access_to(api), task=mapped, dag_id="child", run_id="r1", decide=judge
            )
        )

        assert seen == [Parent(state="failed", try_number=2, max_tries=4)]
        assert outcome == cancel_api.Outcome(cancelled=True, reason="marked failed")
        assert api.requests[1].path[-2:] == ["trigger", "3"]

    def test_a_decision_not_to_cancel_sends_nothing_more(self, api: FakeApi) -> None:
        api.task_instances[("parent", "manual__p", "trigger", -1)] = {"state": "running", "try_number": 2}

        outcome = run(
            cancel_api.decide_then_cancel(
                access_to(api),
                task=TASK,
                dag_id="child",
                run_id="r1",
                decide=lambda parent: (False, "still runs"),
            )
        )

        assert outcome == cancel_api.Outcome(cancelled=False, reason="still runs")
        assert api.routes() == [TOKEN, TASK_INSTANCE]

    def test_a_parent_the_server_does_not_know_raises(self, api: FakeApi) -> None:
        with pytest.raises(cancel_api.ApiError, match="read the parent task instance: HTTP 404"):
            run(
                cancel_api.decide_then_cancel(
                    access_to(api), task=TASK, dag_id="child", run_id="r1", decide=lambda parent: (True, "")
                )
            )

    def test_the_async_runner_does_the_same(self, api: FakeApi) -> None:
        api.task_instances[("parent", "manual__p", "trigger", -1)] = {"state": "success", "try_number": 2}
        api.runs[("child", "r1")] = "running"
        exchange = cancel_api.decide_then_cancel(
            access_to(api),
            task=TASK,
            dag_id="child",
            run_id="r1",
            decide=lambda parent: (parent.state == "success", "marked"),
        )

        outcome = asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=2))

        assert outcome.cancelled
        assert api.routes() == [TOKEN, TASK_INSTANCE, DAG_RUN_GET, DAG_RUN_PATCH]


class TestLimits:
    def test_a_server_that_does_not_listen_raises_without_a_status(self) -> None:
        access = cancel_api.ApiAccess(
            conn_id="api", base_url=f"http://127.0.0.1:{closed_port()}", username="u", password="p"
        )

        with pytest.raises(cancel_api.ApiError, match="POST .*/auth/token failed: ConnectError") as info:
            run(cancel_api.sign_in(access))

        assert info.value.status is None

    @pytest.mark.parametrize("runner", ["sync", "async"])
    def test_a_server_that_hangs_is_given_up_after_the_request_limit(self, api: FakeApi, runner: str) -> None:
        # The SIGKILL comes 5 s after the SIGTERM: a hung API server must not take all of it.
        api.hang = threading.Event()
        exchange = cancel_api.sign_in(access_to(api))

        def hung() -> str:
            if runner == "sync":
                return cancel_api.run_sync(exchange, seconds=20, per_request=0.1)
            return asyncio.run(cancel_api.run_async(exchange, seconds=20, per_request=0.1))

        started = time.monotonic()
        with pytest.raises(cancel_api.ApiError, match="auth/token failed") as info:
            hung()

        assert info.value.status is None
        # A bound a loaded machine keeps (a hundred times the request limit) that only a request limit
        # not applied breaks: then the overall 20 s would end the wait.
        assert time.monotonic() - started < 10

    def test_nothing_is_sent_once_the_time_is_up(self, api: FakeApi) -> None:
        with pytest.raises(cancel_api.ApiError, match="out of time"):
            cancel_api.run_sync(cancel_api.sign_in(access_to(api)), seconds=0, per_request=1)

        assert api.requests == []
