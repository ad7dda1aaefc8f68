"""The end-to-end and demo REST client against a scripted server: transient errors are retried, boundedly."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest
import structlog

from tests.e2e.client import RETRY_DELAYS, AirflowClient

if TYPE_CHECKING:
    from collections.abc import Callable

LOCKED = httpx.Response(500, json={"reason": "Database error"})


class ScriptedAirflow:
    """Answers /auth/token, then plays ``answers`` (one per API request) and records what was asked."""

    def __init__(self, answers: list[Callable[[httpx.Request], httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []
        self.slept: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        self.requests.append(request)
        return self.answers.pop(0)(request)

    def client(self) -> AirflowClient:
        return AirflowClient(
            "http://airflow",
            "admin",
            "pw",
            transport=httpx.MockTransport(self.handle),
            sleep=self.slept.append,
        )


def answer(response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: response


def created(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"dag_run_id": body["dag_run_id"], "conf": body["conf"]})


def test_a_locked_database_is_retried_with_a_logged_backoff() -> None:
    server = ScriptedAirflow([answer(LOCKED), answer(LOCKED), created])

    with structlog.testing.capture_logs() as logs:
        run = server.client().trigger_dag_run("example_parent_durable", {"tag": "t"})

    assert run["conf"] == {"tag": "t"}
    assert server.slept == list(RETRY_DELAYS[:2])
    retries = [e for e in logs if e["event"] == "Transient Airflow API error; retrying"]
    assert [(e["method"], e["retry_in"]) for e in retries] == [("POST", 0.5), ("POST", 1.0)]
    assert "Database error" in retries[0]["problem"]
    # Every attempt asked for the same run id: the retry cannot create a second run.
    assert len({json.loads(r.content)["dag_run_id"] for r in server.requests}) == 1


def test_a_retried_trigger_that_had_landed_returns_that_run() -> None:
    # The first attempt created the run but its answer was a 500; the retry is told the run exists.
    def existing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"dag_run_id": request.url.path.rsplit("/", 1)[-1], "state": "queued"}
        )

    server = ScriptedAirflow(
        [answer(LOCKED), answer(httpx.Response(409, json={"detail": "exists"})), existing]
    )

    run = server.client().trigger_dag_run("example_child", {})

    posted = json.loads(server.requests[0].content)["dag_run_id"]
    assert run == {"dag_run_id": posted, "state": "queued"}
    assert [r.method for r in server.requests] == ["POST", "POST", "GET"]


def test_gives_up_after_the_last_retry_with_the_servers_reason() -> None:
    server = ScriptedAirflow([answer(LOCKED)] * (len(RETRY_DELAYS) + 1))

    with pytest.raises(httpx.HTTPStatusError, match=r"-> 500: .*Database error"):
        server.client().dag_run("example_child", "r1")

    assert server.slept == list(RETRY_DELAYS)


def test_client_errors_are_not_retried() -> None:
    server = ScriptedAirflow([answer(httpx.Response(404, json={"detail": "no such run"}))])

    with pytest.raises(httpx.HTTPStatusError, match="404"):
        server.client().dag_run("example_child", "missing")

    assert server.slept == []


def test_a_dropped_connection_is_retried() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    server = ScriptedAirflow([dropped, answer(httpx.Response(200, json={"state": "running"}))])

    assert server.client().dag_run("example_child", "r1") == {"state": "running"}
    assert server.slept == [RETRY_DELAYS[0]]
