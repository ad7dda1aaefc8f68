"""``cancel_on_kill``'s decisions, as plain values, and its requests, against a scripted REST API."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from standard_ext import cancel_api
from standard_ext.cancel_decision import should_cancel, should_cancel_after_timeout, should_cancel_deferred
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, TASK_INSTANCE, TOKEN, closed_port
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from tests.fake_api import FakeApi

pytestmark = pytest.mark.timeout(30)

ENDED = ["failed", "success", "skipped", "upstream_failed", "removed"]
CLEARED = ["restarting"]
# Running still, given up with retries left, or reset by a restarted scheduler: a retry follows.
STILL_RUN = ["running", "up_for_retry", None, "scheduled", "queued"]
TASK = cancel_api.TaskRef(dag_id="parent", run_id="manual__p", task_id="trigger", map_index=-1, try_number=2)


def decide(state: str | None, *, durable: bool, retries_left: bool, parent_try: int | None = 2) -> bool:
    return should_cancel(
        parent_state=state, parent_try=parent_try, this_try=2, durable=durable, retries_left=retries_left
    )[0]


class TestShouldCancelAfterSigterm:
    @pytest.mark.parametrize("state", ENDED)
    @pytest.mark.parametrize("durable", [True, False])
    @pytest.mark.parametrize("retries_left", [True, False])
    def test_a_try_the_server_ended_cancels(self, state: str, durable: bool, retries_left: bool) -> None:
        # Marked (or its Dag run marked, or timed out): no automatic retry comes back to the run.
        assert decide(state, durable=durable, retries_left=retries_left)

    @pytest.mark.parametrize("state", CLEARED)
    @pytest.mark.parametrize("durable", [True, False])
    @pytest.mark.parametrize("retries_left", [True, False])
    def test_a_cleared_try_cancels(self, state: str | None, durable: bool, retries_left: bool) -> None:
        # The next try is a re-run: durable or not, it triggers a new child run.
        assert decide(state, durable=durable, retries_left=retries_left)

    @pytest.mark.parametrize("state", STILL_RUN)
    def test_a_durable_try_with_retries_left_keeps_the_run_its_retry_reconnects_to(
        self, state: str | None
    ) -> None:
        # Still running: the worker is shutting down, or lost the API server; up_for_retry: the
        # scheduler gave the try up. Either way a retry follows and reconnects.
        cancel_it, reason = should_cancel(
            parent_state=state, parent_try=2, this_try=2, durable=True, retries_left=True
        )

        assert not cancel_it
        assert "durable retry reconnects" in reason

    @pytest.mark.parametrize("state", STILL_RUN)
    def test_a_retry_that_triggers_anew_cancels(self, state: str | None) -> None:
        assert decide(state, durable=False, retries_left=True)

    @pytest.mark.parametrize("state", STILL_RUN)
    @pytest.mark.parametrize("durable", [True, False])
    def test_the_last_try_cancels(self, state: str | None, durable: bool) -> None:
        assert decide(state, durable=durable, retries_left=False)

    @pytest.mark.parametrize("state", ["running", "queued", None])
    def test_a_later_try_keeps_a_durable_run_and_cancels_another(self, state: str | None) -> None:
        assert not decide(state, durable=True, retries_left=True, parent_try=3)
        assert decide(state, durable=False, retries_left=True, parent_try=3)

    def test_an_unknown_try_number_is_judged_by_the_state(self) -> None:
        assert decide("failed", durable=True, retries_left=True, parent_try=None)
        assert not decide("running", durable=True, retries_left=True, parent_try=None)

    @pytest.mark.parametrize("state", ["deferred", "up_for_reschedule", "awaiting_input"])
    def test_a_state_it_does_not_know_keeps_the_run(self, state: str) -> None:
        cancel_it, reason = should_cancel(
            parent_state=state, parent_try=2, this_try=2, durable=False, retries_left=False
        )

        assert not cancel_it
        assert state in reason


class TestShouldCancelAfterTimeout:
    @pytest.mark.parametrize(
        ("durable", "retries_left", "expected"),
        [(True, True, False), (True, False, True), (False, True, True), (False, False, True)],
    )
    def test_only_a_durable_retry_keeps_the_run(
        self, durable: bool, retries_left: bool, expected: bool
    ) -> None:
        assert should_cancel_after_timeout(durable=durable, retries_left=retries_left)[0] is expected


class TestShouldCancelDeferred:
    def test_a_task_still_deferred_moved_to_another_triggerer(self) -> None:
        cancel_it, reason = should_cancel_deferred(parent_state="deferred", parent_try=1, this_try=1)

        assert not cancel_it
        assert "another triggerer" in reason

    @pytest.mark.parametrize("state", [*ENDED, *CLEARED, "running", "up_for_retry"])
    def test_any_other_state_means_the_task_left_the_deferral(self, state: str | None) -> None:
        assert should_cancel_deferred(parent_state=state, parent_try=1, this_try=1)[0]

    def test_a_later_try_deferred_again_cancels(self) -> None:
        assert should_cancel_deferred(parent_state="deferred", parent_try=2, this_try=1)[0]


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
        api.task_instances[("parent", "manual__p", "trigger", 3)] = {"state": "failed", "try_number": 2}
        api.runs[("child", "r1")] = "running"
        seen: list[tuple[str | None, int | None]] = []

        def judge(state: str | None, try_number: int | None) -> tuple[bool, str]:
            seen.append((state, try_number))
            return True, "marked failed"

        mapped = cancel_api.TaskRef(
            dag_id="parent", run_id="manual__p", task_id="trigger", map_index=3, try_number=2
        )
        outcome = run(
            cancel_api.decide_then_cancel(
                access_to(api), task=mapped, dag_id="child", run_id="r1", decide=judge
            )
        )

        assert seen == [("failed", 2)]
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
                decide=lambda s, t: (False, "still runs"),
            )
        )

        assert outcome == cancel_api.Outcome(cancelled=False, reason="still runs")
        assert api.routes() == [TOKEN, TASK_INSTANCE]

    def test_a_parent_the_server_does_not_know_raises(self, api: FakeApi) -> None:
        with pytest.raises(cancel_api.ApiError, match="read the parent task instance: HTTP 404"):
            run(
                cancel_api.decide_then_cancel(
                    access_to(api), task=TASK, dag_id="child", run_id="r1", decide=lambda s, t: (True, "")
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
            decide=lambda s, t: (s == "success", "marked"),
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
                return cancel_api.run_sync(exchange, seconds=5, per_request=0.1)
            return asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=0.1))

        with pytest.raises(cancel_api.ApiError, match="auth/token failed"):
            hung()

    def test_nothing_is_sent_once_the_time_is_up(self, api: FakeApi) -> None:
        with pytest.raises(cancel_api.ApiError, match="out of time"):
            cancel_api.run_sync(cancel_api.sign_in(access_to(api)), seconds=0, per_request=1)

        assert api.requests == []
