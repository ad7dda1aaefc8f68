"""No password, token or URL credentials in what ``cancel_api`` raises or logs; each one handed to the masker."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk import Connection

from standard_ext.api import access as api_access
from standard_ext.api import calls as api_calls
from standard_ext.cancel import api as cancel_api
from standard_ext.cancel import runs as cancel_runs
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, ECHO, TOKEN, VALIDATION, FakeApi, closed_port
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(30)

# One that JSON escapes (a quote, a backslash, a non-ASCII letter) and a URL encodes: an echoed body holds
# it in another form than the one sent.
TRICKY_PASSWORD = 'pa"ss\\wörd/%1'
RUNNERS = ["sync", "async"]


def run(exchange: cancel_api.Exchange[cancel_api.T], runner: str) -> cancel_api.T:
    if runner == "sync":
        return cancel_api.run_sync(exchange, seconds=5, per_request=2)
    return asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=2))


def forms(secret: str) -> set[str]:
    """The secret as sent, and as JSON holds it (the echoed body), escaped to ASCII or not."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}


def leaked(text: str, api: FakeApi, password: str) -> list[str]:
    """Every token ``api`` gave, and the password, found in ``text`` in any of their forms."""
    return [secret for secret in [*api.issued, password] if any(form in text for form in forms(secret))]


@pytest.fixture(params=[API_PASSWORD, TRICKY_PASSWORD], ids=["plain", "tricky"])
def password(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def server(password: str) -> Iterator[FakeApi]:
    """A scripted API whose user ``admin`` has ``password``."""
    api = FakeApi(users={API_LOGIN: password})
    api.start()
    yield api
    api.stop()


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the sign-in (``standard_ext.api.calls``) handed ``mask_secret``, in order."""
    secrets: list[str] = []
    monkeypatch.setattr(api_calls, "mask_secret", secrets.append)
    monkeypatch.setattr(api_access, "mask_secret", secrets.append)
    return secrets


def access_to(api: FakeApi, password: str) -> cancel_api.ApiAccess:
    return cancel_api.ApiAccess(conn_id="api", base_url=api.base_url, username=API_LOGIN, password=password)


class TestNothingLeaks:
    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_cancel_that_works(self, server: FakeApi, password: str, runner: str) -> None:
        server.runs[("child", "r1")] = "running"
        access = access_to(server, password)

        with structlog.testing.capture_logs() as logs:
            outcome = run(cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r"), runner)
            cancel_api.report(outcome, log=structlog.get_logger(), dag_id="child", run_id="r1")

        assert outcome.cancelled
        assert leaked(repr([logs, outcome, access]), server, password) == []

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_refused_credentials(self, server: FakeApi, runner: str) -> None:
        with pytest.raises(cancel_api.ApiError, match="HTTP 401 Invalid credentials") as info:
            run(cancel_api.sign_in(access_to(server, "wrong-password")), runner)

        assert "wrong-password" not in str(info.value)

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_401_that_echoes_the_token(self, server: FakeApi, password: str, runner: str) -> None:
        # Signed in again after the first 401, refused again: the error is the second answer's.
        server.runs[("child", "r1")] = "running"
        server.failures[DAG_RUN_GET] = (401, ECHO)

        with pytest.raises(cancel_api.ApiError, match="read the child Dag run: HTTP 401 Bad request") as info:
            run(
                cancel_api.cancel_run(access_to(server, password), dag_id="child", run_id="r1", reason="r"),
                runner,
            )

        assert server.routes() == [TOKEN, DAG_RUN_GET, TOKEN, DAG_RUN_GET]
        assert len(server.issued) == 2
        assert leaked(str(info.value), server, password) == []

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_500_that_echoes_the_token_and_the_body(
        self, server: FakeApi, password: str, runner: str
    ) -> None:
        server.runs[("child", "r1")] = "running"
        server.failures[DAG_RUN_PATCH] = (500, ECHO)

        with pytest.raises(cancel_api.ApiError, match="HTTP 500 Bad request") as info:
            run(
                cancel_api.cancel_run(access_to(server, password), dag_id="child", run_id="r1", reason="r"),
                runner,
            )

        message = str(info.value)
        assert leaked(message, server, password) == []
        # Only the secrets are starred: what else the server said is kept.
        assert "Authorization: Bearer ***" in message
        assert info.value.status == 500

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_sign_in_error_that_echoes_the_body(self, server: FakeApi, password: str, runner: str) -> None:
        server.failures[TOKEN] = (500, ECHO)

        with pytest.raises(cancel_api.ApiError, match="sign in: HTTP 500") as info:
            run(cancel_api.sign_in(access_to(server, password)), runner)

        assert leaked(str(info.value), server, password) == []
        assert '"password":"***"' in str(info.value)

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_validation_error_that_echoes_the_body(
        self, server: FakeApi, password: str, runner: str
    ) -> None:
        # FastAPI's 422: its "input" is the request body; its "loc" and "msg" say what was wrong.
        server.failures[TOKEN] = (422, VALIDATION)

        with pytest.raises(cancel_api.ApiError, match="HTTP 422 body.x: Field required") as info:
            run(cancel_api.sign_in(access_to(server, password)), runner)

        assert leaked(str(info.value), server, password) == []
        assert info.value.status == 422

    def test_a_failure_warning(self, server: FakeApi, password: str) -> None:
        # What a caller logs of an ApiError: here the fan-out's on_kill, in the triggerer or the task.
        server.failures[TOKEN] = (500, ECHO)
        tally = cancel_runs.Tally(dag_id="child", run_ids=("r1",), go=True, reason="r")

        with structlog.testing.capture_logs() as logs:
            work = cancel_runs.decide_then_cancel_all(
                access_to(server, password), tally, task=TASK, decide=None, seconds=5, per_request=2
            )
            asyncio.run(work)
            cancel_runs.report_all(tally, log=structlog.get_logger())

        (warning,) = [entry for entry in logs if entry["log_level"] == "warning"]
        assert "HTTP 500" in warning["error"]
        assert leaked(repr(logs), server, password) == []


TASK = cancel_api.TaskRef(dag_id="parent", run_id="p", task_id="t", map_index=-1, try_number=1)


class TestCredentialsInTheUrl:
    """A host holding ``user:password@``: httpx would send it as Basic auth, in place of the token."""

    def test_are_removed_from_the_base_url_and_the_password_masked(
        self, api: FakeApi, masked: list[str]
    ) -> None:
        host = api.base_url.replace("://", "://someone:url-pass%40x@")
        conn = Connection(conn_id="api", conn_type="http", host=host, login=API_LOGIN, password=API_PASSWORD)

        access = cancel_api.ApiAccess.from_connection(conn, conn_id="api")

        assert access.base_url == api.base_url
        assert "url-pass" not in repr(access)
        assert masked == [API_PASSWORD, "url-pass%40x", "url-pass@x"]

    def test_the_token_is_sent_not_the_credentials(self, api: FakeApi) -> None:
        api.runs[("child", "r1")] = "running"
        access = cancel_api.ApiAccess(
            conn_id="api",
            base_url=api.base_url.replace("://", "://someone:url-pass@"),
            username=API_LOGIN,
            password=API_PASSWORD,
        )

        outcome = run(cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r"), "sync")

        assert outcome.cancelled
        assert {r.headers["Authorization"] for r in api.requests[1:]} == {f"Bearer {api.issued[0]}"}

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_an_unreachable_server_is_named_without_them(self, runner: str) -> None:
        url = f"http://someone:url-pass@127.0.0.1:{closed_port()}"
        access = cancel_api.ApiAccess(conn_id="api", base_url=url, username="u", password="p")

        with pytest.raises(
            cancel_api.ApiError, match=r"POST http://127\.0\.0\.1:\d+/auth/token failed"
        ) as info:
            run(cancel_api.sign_in(access), runner)

        assert "url-pass" not in str(info.value)
        assert "someone" not in str(info.value)

    def test_no_api_error_shows_them(self) -> None:
        error = cancel_api.ApiError("GET https://someone:p@ss@api:8080/x?y=http://a:b@c failed")

        assert str(error) == "GET https://api:8080/x?y=http://c failed"


class TestMasked:
    def test_the_password_once_when_the_access_is_built(self, api: FakeApi, masked: list[str]) -> None:
        conn = Connection(
            conn_id="api", conn_type="http", host=api.base_url, login=API_LOGIN, password=API_PASSWORD
        )

        cancel_api.ApiAccess.from_connection(conn, conn_id="api")

        assert masked == [API_PASSWORD]

    @pytest.mark.parametrize("runner", RUNNERS)
    def test_each_token_before_the_next_request(
        self, api: FakeApi, runner: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The first sign-in, and the one after a 401 (the token expired during a long wait).
        api.runs[("child", "r1")] = "running"
        access = access_to(api, API_PASSWORD)
        masked: list[tuple[str, int]] = []
        monkeypatch.setattr(
            api_calls, "mask_secret", lambda secret: masked.append((secret, len(api.requests)))
        )
        run(cancel_api.sign_in(access), runner)
        api.expire_tokens()

        run(cancel_api.cancel_run(access, dag_id="child", run_id="r1", reason="r"), runner)

        assert api.routes() == [TOKEN, DAG_RUN_GET, TOKEN, DAG_RUN_GET, DAG_RUN_PATCH]
        # Each as soon as the server gave it: before another request went out.
        assert masked == [(api.issued[0], 1), (api.issued[1], 3)]

    def test_a_proxy_password(self, masked: list[str]) -> None:
        cancel_api.ApiAccess(
            conn_id="api",
            base_url="http://api",
            username="u",
            password="",
            proxies={"https": "http://proxy-user:proxy-pass@proxy:3128"},
        )

        assert masked == ["proxy-pass"]


def test_the_secrets_and_extras_are_not_in_the_repr(tmp_path: Any) -> None:
    access = cancel_api.ApiAccess(
        conn_id="c",
        base_url="http://x",
        username="u",
        password="pw-secret",
        token="jwt-secret",
        verify=str(tmp_path),
        cert="client.pem",
        proxies={"https": "http://proxy-user:proxy-pass@proxy:3128"},
    )

    text = repr(access)

    assert "c" in text
    assert not [
        part
        for part in ["pw-secret", "jwt-secret", str(tmp_path), "client.pem", "proxy-pass"]
        if part in text
    ]
