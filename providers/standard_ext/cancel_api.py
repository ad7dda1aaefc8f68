"""Cancelling a child Dag run through Airflow's public REST API: signing in, reading the parent, the PATCH."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

import httpx

from standard_ext.durable_decision import FINAL_STATES

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Connection

T = TypeVar("T")
#: One conversation with the API server, written once for both clients: it yields each request, is
#: sent each response, and returns its result (run by :func:`run_sync` or :func:`run_async`).
Exchange = Generator[httpx.Request, httpx.Response, T]


def base_url(*, host: str, schema: str | None, port: int | None) -> str:
    """
    Build the API server's base URL from a connection, as the ``http`` provider's ``HttpHook`` does.

    :param host: a host, or a whole URL (``http://airflow-api:8080``), kept as it is.
    :param schema: the URL scheme when ``host`` has none (``http`` by default).
    :param port: appended when set.
    """
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    if port:
        url = f"{url}:{port}"
    return url.rstrip("/")


@dataclass
class ApiAccess:
    """Where the API server is and whom to sign in as; the token once signed in. No secret in its repr."""

    conn_id: str
    base_url: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_connection(cls, conn: Connection, *, conn_id: str) -> ApiAccess:
        """
        Read the connection; raise ``ValueError`` naming what it lacks.

        :param conn: the connection (conn_type ``http``).
        :param conn_id: its id, named in errors.
        """
        if not conn.host:
            raise ValueError(f"connection {conn_id!r} has no host (the API server's URL)")
        if not conn.login:
            raise ValueError(f"connection {conn_id!r} has no login (a user allowed to edit Dag runs)")
        url = base_url(host=conn.host, schema=conn.schema, port=conn.port)
        return cls(conn_id=conn_id, base_url=url, username=conn.login, password=conn.password or "")

    def url(self, *segments: str) -> str:
        """The URL of an API path, each segment quoted (run ids hold ``:`` and ``+``)."""
        return "/".join([self.base_url, *(quote(s, safe="") for s in segments)])


@dataclass(frozen=True)
class TaskRef:
    """The parent task instance: ids and the try that is being stopped."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> TaskRef:
        """The ids and try of a task instance: a task's ``ti``, or a trigger's ``task_instance``."""
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if ti.map_index is None else int(ti.map_index),
            try_number=int(ti.try_number),
        )


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: the run was cancelled, or why not (``ended``: the state it already had)."""

    cancelled: bool
    reason: str
    ended: str | None = None


class ApiError(Exception):
    """A request to the API server failed; ``status`` is ``None`` when nothing answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def sign_in(access: ApiAccess) -> Exchange[str]:
    """Get a token (``POST /auth/token``), keep it on ``access``, return it; a refusal raises ``ApiError``."""
    credentials = {"username": access.username, "password": access.password}
    response = yield httpx.Request("POST", access.url("auth", "token"), json=credentials)
    # 201 from the simple and FAB auth managers; 200 accepted from another one.
    _expect(response, 201, 200, what="sign in")
    token = _json(response).get("access_token")
    if not isinstance(token, str) or not token:
        raise ApiError(
            f"signing in at {access.base_url} returned no access_token", status=response.status_code
        )
    access.token = token
    return token


def read_task_instance(access: ApiAccess, task: TaskRef) -> Exchange[tuple[str | None, int | None]]:
    """Return the task instance's live state and try number."""
    segments = ["api", "v2", "dags", task.dag_id, "dagRuns", task.run_id, "taskInstances", task.task_id]
    if task.map_index >= 0:
        segments.append(str(task.map_index))
    response = yield from _authorized(access, "GET", access.url(*segments))
    _expect(response, 200, what="read the parent task instance")
    body = _json(response)
    state, try_number = body.get("state"), body.get("try_number")
    return (str(state) if state else None), (try_number if isinstance(try_number, int) else None)


def cancel_run(access: ApiAccess, *, dag_id: str, run_id: str, reason: str) -> Exchange[Outcome]:
    """Set the run ``failed``, unless it already ended: that PATCH would turn a success into a failure."""
    url = access.url("api", "v2", "dags", dag_id, "dagRuns", run_id)
    response = yield from _authorized(access, "GET", url)
    _expect(response, 200, what="read the child Dag run")
    state = _json(response).get("state")
    if state in FINAL_STATES:
        return Outcome(cancelled=False, reason=reason, ended=str(state))
    # Its running tasks are failed (their heartbeat is refused, so they get on_kill), the rest skipped.
    response = yield from _authorized(access, "PATCH", url, body={"state": "failed"})
    _expect(response, 200, what="set the child Dag run failed")
    return Outcome(cancelled=True, reason=reason)


def decide_then_cancel(
    access: ApiAccess,
    *,
    task: TaskRef,
    dag_id: str,
    run_id: str,
    decide: Callable[[str | None, int | None], tuple[bool, str]],
) -> Exchange[Outcome]:
    """Read the parent task instance, let ``decide`` judge its ``(state, try_number)``; cancel if so."""
    state, try_number = yield from read_task_instance(access, task)
    cancel, reason = decide(state, try_number)
    if not cancel:
        return Outcome(cancelled=False, reason=reason)
    return (yield from cancel_run(access, dag_id=dag_id, run_id=run_id, reason=reason))


def run_sync(exchange: Exchange[T], *, seconds: float, per_request: float) -> T:
    """
    Run ``exchange`` on a fresh client, within ``seconds`` overall and ``per_request`` for each request.

    A fresh client: ``on_kill`` may run in a signal handler, interrupting whatever the main thread was
    doing, so it must not share a connection pool (or its lock) with anything.

    :raises ApiError: a request failed, or time ran out.
    """
    deadline = time.monotonic() + seconds
    with httpx.Client() as client:
        try:
            request = next(exchange)
            while True:
                request.extensions["timeout"] = _timeout(deadline, per_request, request).as_dict()
                try:
                    response = client.send(request)
                except httpx.HTTPError as e:
                    raise _unreachable(request, e) from e
                request = exchange.send(response)
        except StopIteration as done:
            return cast("T", done.value)


async def run_async(
    exchange: Exchange[T], *, seconds: float, per_request: float, client: httpx.AsyncClient | None = None
) -> T:
    """
    Run ``exchange`` within ``seconds`` overall and ``per_request`` for each request.

    :param client: a client that many exchanges share (their connections pooled); a fresh one if
        ``None``, closed at the end.
    :raises ApiError: a request failed, or time ran out.
    """
    if client is None:
        async with httpx.AsyncClient() as own:
            return await run_async(exchange, seconds=seconds, per_request=per_request, client=own)
    deadline = time.monotonic() + seconds
    try:
        request = next(exchange)
        while True:
            limit = _timeout(deadline, per_request, request)
            request.extensions["timeout"] = limit.as_dict()
            try:
                async with asyncio.timeout(limit.read):
                    response = await client.send(request)
            except (httpx.HTTPError, TimeoutError) as e:
                raise _unreachable(request, e) from e
            request = exchange.send(response)
    except StopIteration as done:
        return cast("T", done.value)


def report(outcome: Outcome, *, log: Any, dag_id: str, run_id: str) -> None:
    """
    Log what an attempt came to (never the token).

    :param outcome: what :func:`cancel_run` or :func:`decide_then_cancel` returned.
    :param log: the task's (or trigger's) logger.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    """
    if outcome.cancelled:
        log.info("Cancelled the child Dag run", dag_id=dag_id, run_id=run_id, reason=outcome.reason)
    elif outcome.ended is not None:
        log.info(
            "Not cancelling the Dag run: it already ended", dag_id=dag_id, run_id=run_id, state=outcome.ended
        )
    else:
        log.info("Not cancelling the Dag run", dag_id=dag_id, run_id=run_id, reason=outcome.reason)


def _authorized(
    access: ApiAccess, method: str, url: str, *, body: dict[str, Any] | None = None
) -> Exchange[httpx.Response]:
    if access.token is None:
        yield from sign_in(access)
    response = yield _bearer(access, method, url, body)
    if response.status_code == 401:
        # Tokens expire ([api_auth] jwt_expiration_time, a day by default): a long wait outlives one.
        yield from sign_in(access)
        response = yield _bearer(access, method, url, body)
    return response


def _bearer(access: ApiAccess, method: str, url: str, body: dict[str, Any] | None) -> httpx.Request:
    return httpx.Request(method, url, json=body, headers={"Authorization": f"Bearer {access.token}"})


def _expect(response: httpx.Response, *statuses: int, what: str) -> None:
    if response.status_code in statuses:
        return
    # The server's reason ("Invalid credentials", "Forbidden", "Not Found"), cut short; never a request body.
    detail = response.text[:200]
    raise ApiError(f"could not {what}: HTTP {response.status_code} {detail}", status=response.status_code)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(f"{response.request.url} answered something other than a JSON object")
    return body


def _timeout(deadline: float, per_request: float, request: httpx.Request) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0.05:
        raise ApiError(f"out of time before {request.method} {request.url}")
    return httpx.Timeout(min(per_request, left))


def _unreachable(request: httpx.Request, error: Exception) -> ApiError:
    return ApiError(f"{request.method} {request.url} failed: {type(error).__name__} {error}".rstrip())
