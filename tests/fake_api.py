"""A scripted stand-in for Airflow's public REST API, on a real local HTTP server in a thread."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

# The routes cancel_on_kill uses, by what a test may script a failure for.
TOKEN, TASK_INSTANCE, DAG_RUN_GET, DAG_RUN_PATCH = "token", "task_instance", "dag_run_get", "dag_run_patch"
# GET /api/v2/dags/{dag_id}/dagRuns: what the start-up check reads to learn it may read the child's runs.
DAG_RUN_LIST = "dag_run_list"
# POST /api/v2/dags/{dag_id}/clearTaskInstances: auto_clear_failed_tasks's clear, and the dry run its
# sign-in sends to learn it may clear (the route's default when dry_run is not given).
CLEAR, CLEAR_CHECK = "clear_task_instances", "clear_task_instances_dry_run"
# ClearTaskInstancesBody's fields: the model forbids any other (a 422).
CLEAR_FIELDS = frozenset(
    {
        "dry_run",
        "start_date",
        "end_date",
        "only_failed",
        "only_running",
        "reset_dag_runs",
        "task_ids",
        "dag_run_id",
        "include_upstream",
        "include_downstream",
        "include_future",
        "include_past",
        "run_on_latest_version",
        "prevent_running_task",
        "note",
    }
)
# What cancel_on_kill sends as a try (or a resume) starts: the sign-in, then the reads a cancel needs.
SIGN_IN = [TOKEN, DAG_RUN_LIST, TASK_INSTANCE]
# Scripted failure details that echo the request back, as some servers do in their errors: VALIDATION as
# FastAPI answers a body it cannot validate (each error's "input" is the body: the password, when
# signing in); ECHO as a debugging proxy or a careless server might, the request's headers (the token)
# and body as they came, in plain text.
VALIDATION, ECHO = "<validation>", "<echo>"


@dataclass
class Request:
    """One request the server received: its method, decoded path segments, headers and JSON body."""

    method: str
    path: list[str]
    headers: dict[str, str]
    body: Any
    # The request line's target as sent: a whole URL when the request came through a proxy.
    target: str = ""
    raw: bytes = b""

    @property
    def route(self) -> str:
        if self.path == ["auth", "token"]:
            return TOKEN
        if self.method == "POST" and self.path[-1:] == ["clearTaskInstances"]:
            dry_run = not isinstance(self.body, dict) or self.body.get("dry_run", True)
            return CLEAR_CHECK if dry_run else CLEAR
        if "taskInstances" in self.path:
            return TASK_INSTANCE
        if self.method == "GET" and len(self.path) == 5 and self.path[-1] == "dagRuns":
            return DAG_RUN_LIST
        return DAG_RUN_GET if self.method == "GET" else DAG_RUN_PATCH


@dataclass(frozen=True)
class Raw:
    """An answer that is not a JSON body: plain text, or a redirect's headers."""

    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeApi:
    """
    Answers ``POST /auth/token``, a task instance's ``GET``, a Dag run's ``GET`` and ``PATCH``.

    What it answers comes from its dicts, which a test sets; every request is kept in ``requests``.
    """

    users: dict[str, str] = field(default_factory=lambda: {"admin": "s3cret-pw"})
    # Task instances by (dag_id, run_id, task_id, map_index): {"state", "try_number"}.
    task_instances: dict[tuple[str, str, str, int], dict[str, Any]] = field(default_factory=dict)
    # Dag run states by (dag_id, run_id).
    runs: dict[tuple[str, str], str] = field(default_factory=dict)
    # What a clear does to the child runs: FakeSupervisor.clear_failed, wired by the tests' connect().
    on_clear: Callable[..., list[str] | None] | None = None
    # Scripted failures: route -> (status, detail), answered every time until removed, or only as many
    # times as failures_left says for the route.
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    failures_left: dict[str, int] = field(default_factory=dict)
    # The next N clears are made, but their answer is lost on the way back (a proxy's 502).
    lose_clear_answers: int = 0
    # When given, every answer waits until the event is set (or the test ends): a hung server. With
    # hang_routes, only the answers on those routes wait.
    hang: threading.Event | None = None
    hang_routes: frozenset[str] | None = None
    # How long every answer takes, in seconds: lets requests overlap, to count them in flight.
    latency: float = 0.0
    # When given, it speaks HTTPS with this context (its certificate; the clients' CA, to require one).
    tls: ssl.SSLContext | None = None
    # When given, every request is answered 307 to the same path on this base URL (another server).
    redirect_to: str | None = None
    requests: list[Request] = field(default_factory=list)
    # The tokens it accepts; every token it ever gave (for the tests that no log shows one).
    tokens: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    # The most requests it was answering at once.
    most_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def routes(self) -> list[str]:
        return [request.route for request in self.requests]

    def expire_tokens(self) -> None:
        """Every token given so far expires (``[api_auth] jwt_expiration_time`` passed)."""
        self.tokens.clear()

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(api.answer(self._request()))

            def do_POST(self) -> None:
                self._answer(api.answer(self._request()))

            def do_PATCH(self) -> None:
                self._answer(api.answer(self._request()))

            def _request(self) -> Request:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]
                body = json.loads(raw) if raw else None
                return Request(self.command, path, dict(self.headers.items()), body, self.path, raw)

            def _answer(self, answer: tuple[int, Any]) -> None:
                status, body = answer
                raw = body if isinstance(body, Raw) else None
                data = raw.text.encode() if raw else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in raw.headers.items() if raw else ():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "text/plain" if raw else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows the test's own output

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.tls = self.tls
        # A short poll: shutdown() waits for it, at every test's end.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, request: Request) -> tuple[int, Any]:
        """Answer as :meth:`handle` does, after the hang if there is one; count the requests in flight."""
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            if self.hang is not None and (self.hang_routes is None or request.route in self.hang_routes):
                self.requests.append(request)
                # Received, never acted on: the client gives up first.
                self.hang.wait(10)
                return 503, {"detail": "hung"}
            return self.handle(request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def handle(self, request: Request) -> tuple[int, Any]:
        self.requests.append(request)
        if self.redirect_to is not None:
            return 307, Raw(headers={"Location": self.redirect_to + urlsplit(request.target).path})
        if (failure := self._scripted_failure(request.route)) is not None:
            return failure[0], _detail(failure[1], request)
        if request.route == TOKEN:
            return self._sign_in(request.body or {})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return 401, {"detail": "Token Expired"}
        path = request.path
        if request.route in (CLEAR, CLEAR_CHECK):
            return self._clear(path[3], request.body or {})
        if request.route == DAG_RUN_LIST:
            # As the route answers (get_dag_runs): the Dag's runs, paged ("limit"), and their total.
            runs = [run_id for dag_id, run_id in self.runs if dag_id == path[3]]
            limit = int(parse_qs(urlsplit(request.target).query).get("limit", ["50"])[0])
            listed = [
                {"dag_id": path[3], "dag_run_id": r, "state": self.runs[(path[3], r)]} for r in runs[:limit]
            ]
            return 200, {"dag_runs": listed, "total_entries": len(runs)}
        if request.route == TASK_INSTANCE:
            map_index = int(path[8]) if len(path) > 8 else -1
            ti = self.task_instances.get((path[3], path[5], path[7], map_index))
            return (200, {"map_index": map_index, **ti}) if ti else (404, {"detail": "Not Found"})
        key = (path[3], path[5])
        if key not in self.runs:
            return 404, {"detail": "Not Found"}
        if request.route == DAG_RUN_PATCH:
            self.runs[key] = request.body["state"]
        return 200, {"dag_id": key[0], "dag_run_id": key[1], "state": self.runs[key]}

    def _scripted_failure(self, route: str) -> tuple[int, str] | None:
        failure = self.failures.get(route)
        if failure is not None and (left := self.failures_left.get(route)) is not None:
            self.failures_left[route] = left - 1
            if left <= 1:
                del self.failures[route], self.failures_left[route]
        return failure

    def _clear(self, dag_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        """As ``post_clear_task_instances`` answers for one run: its failed task instances, cleared unless a dry run."""
        if unknown := sorted(set(body) - CLEAR_FIELDS):
            return 422, {"detail": [{"type": "extra_forbidden", "loc": ["body", unknown[0]]}]}
        run_id = body.get("dag_run_id")
        # The route's defaults: a dry run, only_failed.
        assert body.get("only_failed", True), "the fake answers only_failed clears"
        assert run_id is not None, "the fake answers clears of one run"
        cleared = (
            None
            if self.on_clear is None
            else self.on_clear(dag_id, run_id, dry_run=body.get("dry_run", True))
        )
        if cleared is None:
            return 404, {"detail": f"Dag Run id {run_id} not found in dag {dag_id}"}
        if self.lose_clear_answers and not body.get("dry_run", True):
            self.lose_clear_answers -= 1
            return 502, Raw("Bad Gateway")
        # As the route: a dry run's task instances as they are; a clear's read again after it (state none).
        state = "failed" if body.get("dry_run", True) else None
        tis = [
            {"task_id": task_id, "map_index": -1, "state": state, "dag_run_id": run_id} for task_id in cleared
        ]
        return 200, {"task_instances": tis, "total_entries": len(tis)}

    def _sign_in(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.users.get(body.get("username", "")) != body.get("password"):
            return 401, {"detail": "Invalid credentials"}
        token = f"jwt-{secrets.token_hex(8)}"
        self.tokens.append(token)
        self.issued.append(token)
        return 201, {"access_token": token}


def _detail(detail: str, request: Request) -> Any:
    if detail == VALIDATION:
        body = request.body if isinstance(request.body, dict) else {}
        return {"detail": [{"type": "missing", "loc": ["body", "x"], "msg": "Field required", "input": body}]}
    if detail == ECHO:
        headers = "".join(f"{name}: {value}\n" for name, value in request.headers.items())
        return Raw(f"Bad request\n{request.method} {request.target}\n{headers}\n{request.raw.decode()}")
    return {"detail": detail}


class _Server(ThreadingHTTPServer):
    # Room for every connection of a concurrent client: the default backlog (5) would hold some back.
    request_queue_size = 64
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake in the connection's own thread, so that a client that refuses the certificate (or
        # has none to give) holds up no other.
        try:
            secured = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        with secured:
            super().finish_request(secured, client_address)


def closed_port() -> int:
    """A local port nothing listens on: a server that cannot be reached."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
