"""Cancelling a child Dag run through Airflow's public REST API: signing in, reading the parent, the PATCH."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import ssl
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast, overload
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from airflow.sdk.log import mask_secret

from standard_ext.cancel_decision import Parent
from standard_ext.durable_decision import FINAL_STATES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from airflow.sdk import Connection

T = TypeVar("T")
P = ParamSpec("P")
#: One conversation with the API server, written once for both clients: it yields each request, is
#: sent each response, and returns its result (run by :func:`run_sync` or :func:`run_async`).
Exchange = Generator[httpx.Request, httpx.Response, T]

#: Path segments that ``quote`` leaves as they are and that would change the path: httpx resolves
#: ``dagRuns/..`` to the Dag itself, and ``dags//dagRuns`` is another route (or none).
_UNSAFE_SEGMENTS = frozenset({"", ".", ".."})
#: The ``user:password@`` of any URL in a text (greedy up to the host: a password may hold an ``@``).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
#: The proxy keys requests (and so HttpHook) takes: a scheme, or a scheme and a host.
_PROXY_SCHEMES = ("http", "https", "all")


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
    """
    Where the API server is, how to reach it and whom to sign in as; the token once signed in.

    **Purpose:** what every exchange of this module talks with, read once from the ``http`` connection.

    **How it works:** the password goes to :func:`~airflow.sdk.log.mask_secret` when the access is built,
    and each token when :func:`sign_in` obtains it, so that no log shows them. A ``user:password@`` in
    ``base_url`` is removed then (and its password masked): httpx would send it as Basic credentials in
    place of the bearer token, and every error message would print it. ``verify``, ``cert`` and
    ``proxies`` are the connection's extras as ``HttpHook`` reads them; :meth:`client_options` turns them
    into an httpx client's settings, which :func:`run_sync` and :func:`run_async` use.

    **What it does not do:** show a secret in its repr (not the password, the token, nor the TLS and
    proxy settings: a proxy's URL may hold a password); follow a redirect.

    Example::

        access = ApiAccess.from_connection(BaseHook.get_connection(conn_id), conn_id=conn_id)
        run_sync(sign_in(access), seconds=5, per_request=2)
        async with httpx.AsyncClient(**access.client_options(asynchronous=True)) as client:
            await run_async(cancel_run(access, ...), seconds=5, per_request=2, client=client)
    """

    conn_id: str
    base_url: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    #: ``True`` (the default CA bundle), ``False`` (no check), or the path of a CA bundle or folder.
    verify: bool | str = field(default=True, repr=False)
    #: A client certificate: one file (certificate and key), or ``(certificate, key)``.
    cert: str | tuple[str, str] | None = field(default=None, repr=False)
    #: requests' form: ``{"https": "http://proxy:3128"}``; a key may name a host (``"all://api"``).
    proxies: dict[str, str | None] = field(default_factory=dict, repr=False)
    #: Whether a token obtained from now on goes to ``mask_secret``. Off in the SIGTERM handler:
    #: ``mask_secret`` also tells the supervisor, over the channel whose lock the interrupted main thread
    #: may hold, which would hang the cancel until the SIGKILL. Nothing there prints the token, and the
    #: process ends seconds later.
    mask_tokens: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.base_url, in_url = _split_userinfo(self.base_url)
        for secret in (self.password, *in_url, *self._proxy_passwords()):
            if secret:
                mask_secret(secret)

    @classmethod
    def from_connection(cls, conn: Connection, *, conn_id: str) -> ApiAccess:
        """
        Read the connection and its extras; raise ``ValueError`` naming what it lacks or gets wrong.

        :param conn: the connection (conn_type ``http``); its extras ``verify`` (or ``verify_ssl``),
            ``cert`` and ``proxies`` (or ``proxy``) are read as ``HttpHook`` reads them.
        :param conn_id: its id, named in errors.
        """
        if not conn.host:
            raise ValueError(f"connection {conn_id!r} has no host (the API server's URL)")
        if not conn.login:
            raise ValueError(f"connection {conn_id!r} has no login (a user allowed to edit Dag runs)")
        extra = conn.extra_dejson
        access = cls(
            conn_id=conn_id,
            base_url=base_url(host=conn.host, schema=conn.schema, port=conn.port),
            username=conn.login,
            password=conn.password or "",
            verify=_verify_extra(extra, conn_id=conn_id),
            cert=_cert_extra(extra, conn_id=conn_id),
            proxies=_proxies_extra(extra, conn_id=conn_id),
        )
        # Reads the CA bundle and the client certificate now: a wrong path fails the task in execute(),
        # naming the connection, rather than the cancel in on_kill.
        access.client_options()
        return access

    def url(self, *segments: str) -> str:
        """
        The URL of an API path, each segment quoted whole (run ids hold ``:`` and ``+``, may hold ``/``).

        :raises UnsafePathError: a segment is empty, ``.`` or ``..``, before anything is sent.
        """
        for segment in segments:
            if segment in _UNSAFE_SEGMENTS:
                path = "/".join(segments)
                raise UnsafePathError(
                    f"refusing the path segment {segment!r} in {path!r}: it would name another path"
                )
        # safe="": "/", "?", "#" and "%" are quoted too, so that an id holding them stays one segment.
        return "/".join([self.base_url, *(quote(s, safe="") for s in segments)])

    def client_options(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """
        The keyword arguments of an ``httpx.Client`` (``httpx.AsyncClient`` if ``asynchronous``).

        ``verify`` and ``cert`` become one SSL context (httpx deprecates paths in either); each proxy a
        transport of its own, given that context too (a mounted transport does not take the client's).

        :raises ValueError: the CA bundle, the certificate or a proxy URL cannot be used.
        """
        try:
            context = _ssl_context(self.verify, self.cert)
            transport = httpx.AsyncHTTPTransport if asynchronous else httpx.HTTPTransport
            mounts = {
                pattern: None if url is None else transport(proxy=url, verify=context)
                for pattern, url in _proxy_patterns(self.proxies).items()
            }
        except (OSError, ValueError, ImportError) as e:  # ssl.SSLError is an OSError; socks needs socksio
            # A proxy's URL, password included, may be in httpx's words.
            raise ValueError(
                f"connection {self.conn_id!r}: its verify, cert or proxies do not work: {_redact(str(e), self)}"
            ) from None
        # Never follow a redirect: httpx would send a 307's body again (the password, when signing in)
        # to whatever host it names, and the bearer token along to another path of the same host. The
        # API server has no reason to redirect these calls; a redirect is reported as the error it is.
        return {"verify": context, "mounts": mounts, "follow_redirects": False}

    def secrets(self) -> list[str]:
        """What no error text may hold: the password, the token, a proxy's password."""
        return [s for s in (self.password, self.token, *self._proxy_passwords()) if s]

    def _proxy_passwords(self) -> list[str]:
        return [password for url in self.proxies.values() if url for password in _split_userinfo(url)[1]]


@dataclass(frozen=True)
class TaskRef:
    """The parent task instance: ids and the try that is being stopped."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    #: As the try started; only a clear raises it (``None`` where not known).
    max_tries: int | None = None

    @classmethod
    def of(cls, ti: Any) -> TaskRef:
        """The ids and try of a task instance: a task's ``ti``, or a trigger's ``task_instance``."""
        max_tries = getattr(ti, "max_tries", None)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if ti.map_index is None else int(ti.map_index),
            try_number=int(ti.try_number),
            max_tries=max_tries if isinstance(max_tries, int) else None,
        )


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: the run was cancelled, or why not (``ended``: the state it already had)."""

    cancelled: bool
    reason: str
    ended: str | None = None


class ApiError(Exception):
    """
    A request to the API server failed; ``status`` is ``None`` when nothing answered.

    Its message never holds a URL's ``user:password@``, and (where this module builds it) no password or
    token, even one the server echoed back.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(_USERINFO.sub(r"\g<scheme>", message))
        self.status = status


class UnsafePathError(ApiError, ValueError):
    """
    A path segment (a run id, say) is empty, ``.`` or ``..``: nothing was sent.

    A ``ValueError`` for what it is, and an :class:`ApiError` so that the callers, which report a failed
    request and go on (``on_kill`` runs in a signal handler), report this one too.
    """


class _Conversation(Generator[httpx.Request, httpx.Response, T]):
    """
    An exchange that knows the access it talks for; otherwise the generator it wraps.

    Its runner takes the client's settings from the access, and the secrets to keep out of its errors.
    """

    def __init__(self, access: ApiAccess, steps: Exchange[T]) -> None:
        self.access = access
        self._steps = steps

    def __next__(self) -> httpx.Request:
        return next(self._steps)

    def send(self, value: httpx.Response, /) -> httpx.Request:
        return self._steps.send(value)

    @overload
    def throw(
        self, typ: type[BaseException], val: BaseException | object = None, tb: TracebackType | None = None, /
    ) -> httpx.Request: ...
    @overload
    def throw(
        self, typ: BaseException, val: None = None, tb: TracebackType | None = None, /
    ) -> httpx.Request: ...
    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> httpx.Request:
        return self._steps.throw(typ if val is None else val)

    def close(self) -> None:
        self._steps.close()


def _conversation(
    steps: Callable[Concatenate[ApiAccess, P], Exchange[T]],
) -> Callable[Concatenate[ApiAccess, P], Exchange[T]]:
    @functools.wraps(steps)
    def start(access: ApiAccess, /, *args: P.args, **kwargs: P.kwargs) -> Exchange[T]:
        return _Conversation(access, steps(access, *args, **kwargs))

    return start


@_conversation
def sign_in(access: ApiAccess) -> Exchange[str]:
    """Get a token (``POST /auth/token``), keep it on ``access``, return it; a refusal raises ``ApiError``."""
    credentials = {"username": access.username, "password": access.password}
    response = yield httpx.Request("POST", access.url("auth", "token"), json=credentials)
    # 201 from the simple and FAB auth managers; 200 accepted from another one.
    _expect(access, response, 201, 200, what="sign in")
    token = _json(response).get("access_token")
    if not isinstance(token, str) or not token:
        raise ApiError(
            f"signing in at {access.base_url} returned no access_token", status=response.status_code
        )
    # Before anything else can print it: the first sign-in, and each after a 401, task or triggerer.
    if access.mask_tokens:
        mask_secret(token)
    access.token = token
    return token


@_conversation
def sign_in_and_check(access: ApiAccess, *, task: TaskRef, dag_id: str) -> Exchange[list[str]]:
    """
    Sign in, then ask for what a cancel reads; return the permissions the user lacks (none: ``[]``).

    A cancel reads the parent task instance (why the SIGTERM came) and the child run (not to fail one
    that already ended) before it sets the run failed. Both reads are asked here, with the requests the
    cancel makes: a 403 names what is missing. The edit itself cannot be asked without writing (even a
    refused PATCH leaves an audit log row), so a missing edit permission shows only when a cancel is
    refused, in its warning.

    :param task: the parent task instance.
    :param dag_id: the child Dag.
    """
    yield from sign_in(access)
    missing = []
    response = yield from _authorized(
        access, "GET", access.url("api", "v2", "dags", dag_id, "dagRuns") + "?limit=1"
    )
    # 404: no such Dag (the trigger says so, naming it); any other answer is for the request's own sake.
    if response.status_code == 403:
        missing.append(f"read the Dag runs of Dag {dag_id!r} (FAB: can read on DAG Runs and on the Dag)")
    elif response.status_code not in (200, 404):
        _expect(access, response, 200, what=f"list the Dag runs of Dag {dag_id!r}")
    segments = ["api", "v2", "dags", task.dag_id, "dagRuns", task.run_id, "taskInstances", task.task_id]
    if task.map_index >= 0:
        segments.append(str(task.map_index))
    response = yield from _authorized(access, "GET", access.url(*segments))
    if response.status_code == 403:
        missing.append(
            f"read the task instances of Dag {task.dag_id!r} (FAB: can read on DAG Runs, on Task Instances "
            "and on the Dag)"
        )
    elif response.status_code not in (200, 404):
        _expect(access, response, 200, what="read the parent task instance")
    return missing


@_conversation
def read_task_instance(access: ApiAccess, task: TaskRef) -> Exchange[Parent]:
    """Return the task instance's live state, try number and ``max_tries``."""
    segments = ["api", "v2", "dags", task.dag_id, "dagRuns", task.run_id, "taskInstances", task.task_id]
    if task.map_index >= 0:
        segments.append(str(task.map_index))
    response = yield from _authorized(access, "GET", access.url(*segments))
    _expect(access, response, 200, what="read the parent task instance")
    body = _json(response)
    state, try_number, max_tries = body.get("state"), body.get("try_number"), body.get("max_tries")
    return Parent(
        state=str(state) if state else None,
        try_number=try_number if isinstance(try_number, int) else None,
        max_tries=max_tries if isinstance(max_tries, int) else None,
    )


@_conversation
def cancel_run(access: ApiAccess, *, dag_id: str, run_id: str, reason: str) -> Exchange[Outcome]:
    """Set the run ``failed``, unless it already ended: that PATCH would turn a success into a failure."""
    url = access.url("api", "v2", "dags", dag_id, "dagRuns", run_id)
    response = yield from _authorized(access, "GET", url)
    _expect(access, response, 200, what="read the child Dag run")
    state = _json(response).get("state")
    if state in FINAL_STATES:
        return Outcome(cancelled=False, reason=reason, ended=str(state))
    # Its running tasks are failed (their heartbeat is refused, so they get on_kill), the rest skipped.
    response = yield from _authorized(access, "PATCH", url, body={"state": "failed"})
    _expect(access, response, 200, what="set the child Dag run failed")
    return Outcome(cancelled=True, reason=reason)


@_conversation
def decide_then_cancel(
    access: ApiAccess,
    *,
    task: TaskRef,
    dag_id: str,
    run_id: str,
    decide: Callable[[Parent], tuple[bool, str]],
) -> Exchange[Outcome]:
    """Read the parent task instance, let ``decide`` judge it; cancel if so."""
    parent = yield from read_task_instance(access, task)
    cancel, reason = decide(parent)
    if not cancel:
        return Outcome(cancelled=False, reason=reason)
    return (yield from cancel_run(access, dag_id=dag_id, run_id=run_id, reason=reason))


def run_sync(exchange: Exchange[T], *, seconds: float, per_request: float) -> T:
    """
    Run ``exchange`` on a fresh client, within ``seconds`` overall and ``per_request`` for each request.

    A fresh client: ``on_kill`` may run in a signal handler, interrupting whatever the main thread was
    doing, so it must not share a connection pool (or its lock) with anything. It is set up from the
    exchange's access (:meth:`ApiAccess.client_options`).

    :raises ApiError: a request failed, or time ran out.
    """
    deadline = time.monotonic() + seconds
    access = _access_of(exchange)
    with httpx.Client(**_client_options(access, asynchronous=False)) as client:
        try:
            request = next(exchange)
            while True:
                request.extensions["timeout"] = _timeout(deadline, per_request, request).as_dict()
                try:
                    # Whatever the client says (see ApiAccess.client_options).
                    response = client.send(request, follow_redirects=False)
                except (httpx.HTTPError, OSError) as e:  # OSError: see run_async
                    raise _unreachable(request, e, access) from e
                request = exchange.send(response)
        except StopIteration as done:
            return cast("T", done.value)


async def run_async(
    exchange: Exchange[T], *, seconds: float, per_request: float, client: httpx.AsyncClient | None = None
) -> T:
    """
    Run ``exchange`` within ``seconds`` overall and ``per_request`` for each request.

    :param client: a client that many exchanges share (their connections pooled), set up with
        :meth:`ApiAccess.client_options`; a fresh one if ``None``, closed at the end.
    :raises ApiError: a request failed, or time ran out.
    """
    access = _access_of(exchange)
    if client is None:
        async with httpx.AsyncClient(**_client_options(access, asynchronous=True)) as own:
            return await run_async(exchange, seconds=seconds, per_request=per_request, client=own)
    deadline = time.monotonic() + seconds
    try:
        request = next(exchange)
        while True:
            limit = _timeout(deadline, per_request, request)
            request.extensions["timeout"] = limit.as_dict()
            try:
                async with asyncio.timeout(limit.read):
                    # Whatever a shared client says (see ApiAccess.client_options).
                    response = await client.send(request, follow_redirects=False)
            # OSError (TimeoutError among them): httpcore's async backend lets an ssl.SSLError through
            # unwrapped, as when the server requires a client certificate the connection has not.
            except (httpx.HTTPError, OSError) as e:
                raise _unreachable(request, e, access) from e
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


def _expect(access: ApiAccess, response: httpx.Response, *statuses: int, what: str) -> None:
    if response.status_code in statuses:
        return
    reason = _reason(response, access)
    raise ApiError(
        f"could not {what}: HTTP {response.status_code} {reason}".rstrip(), status=response.status_code
    )


def _reason(response: httpx.Response, access: ApiAccess) -> str:
    """The server's reason for an error ("Invalid credentials", "Forbidden"), short, and without secrets."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        reason = detail
    elif isinstance(detail, list) and all(isinstance(item, dict) for item in detail):
        # FastAPI's answer to a body it cannot validate: each item's "input" echoes the request body (the
        # password, when signing in); where and what is enough.
        reason = "; ".join(f"{'.'.join(map(str, item.get('loc', ())))}: {item.get('msg')}" for item in detail)
    else:
        # Another answer (a proxy's page) may echo the request too: hence the redaction. Before cutting it
        # short: a secret cut in two would no longer be found.
        reason = response.text
    return _redact(reason, access)[:200]


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


def _unreachable(request: httpx.Request, error: Exception, access: ApiAccess | None) -> ApiError:
    # Only httpx's words are redacted: the URL is ours (no secret), and stays readable whatever the secrets.
    # The request's own token too, should the exchange not be one of this module's.
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
    detail = _redact(f"{type(error).__name__} {error}".rstrip(), access, also=[sent])
    return ApiError(f"{request.method} {request.url} failed: {detail}")


def _access_of(exchange: Exchange[Any]) -> ApiAccess | None:
    return exchange.access if isinstance(exchange, _Conversation) else None


def _client_options(access: ApiAccess | None, *, asynchronous: bool) -> dict[str, Any]:
    if access is None:
        return {"follow_redirects": False}
    try:
        return access.client_options(asynchronous=asynchronous)
    except ValueError as e:
        raise ApiError(str(e)) from None


def _redact(text: str, access: ApiAccess | None, *, also: Iterable[str] = ()) -> str:
    """``text`` without any URL's ``user:password@``, and the access's secrets starred, as sent or echoed."""
    text = _USERINFO.sub(r"\g<scheme>", text)
    secrets = [*(access.secrets() if access is not None else ()), *also]
    # The longest first: a secret's escaped form holds pieces of the plain one.
    for form in sorted(
        {form for secret in secrets if secret for form in _forms(secret)}, key=len, reverse=True
    ):
        text = text.replace(form, "***")
    return text


def _forms(secret: str) -> set[str]:
    """A secret as sent, and as a server may echo it: in JSON (escaped once or twice), or in a URL."""
    forms = {secret, quote(secret, safe="")}
    for ascii_only in (True, False):
        once = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return forms


def _split_userinfo(url: str) -> tuple[str, list[str]]:
    """``url`` without its ``user:password@``, and the password it held (as written and decoded)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, []
    passwords = (
        [] if parts.password is None else list(dict.fromkeys([parts.password, unquote(parts.password)]))
    )
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), passwords


def _verify_extra(extra: dict[str, Any], *, conn_id: str) -> bool | str:
    # As HttpHook: "verify", else its alias "verify_ssl", else True.
    value = extra.get("verify")
    if value is None:
        value = extra.get("verify_ssl")
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str) and value.strip():
        # A connection defined by URI holds every extra as a string: "false" means no check, not a file
        # named false (which HttpHook would hand requests as a CA bundle that does not exist).
        word = value.strip().lower()
        return word == "true" if word in ("true", "false") else value
    raise ValueError(
        f"connection {conn_id!r}: extra 'verify' must be true, false, or a CA bundle's path, not {value!r}"
    )


def _cert_extra(extra: dict[str, Any], *, conn_id: str) -> str | tuple[str, str] | None:
    value = extra.get("cert")
    if value is None or (isinstance(value, str) and value):
        return value
    # JSON has no tuple: requests' (certificate, key) comes as a list.
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return value[0], value[1]
    raise ValueError(
        f"connection {conn_id!r}: extra 'cert' must be a file (certificate and key) or [certificate, key]"
    )


def _proxies_extra(extra: dict[str, Any], *, conn_id: str) -> dict[str, str | None]:
    # As HttpHook: "proxies", else its alias "proxy"; a dict as requests takes it.
    value = extra.get("proxies")
    if value is None:
        value = extra.get("proxy")
    if value is None:
        return {}
    if isinstance(value, dict) and all(
        isinstance(key, str)
        and key.split("://")[0] in _PROXY_SCHEMES
        and (url is None or isinstance(url, str))
        for key, url in value.items()
    ):
        return dict(value)
    # Not the value: a proxy's URL may hold a password.
    raise ValueError(
        f"connection {conn_id!r}: extra 'proxies' must map http, https or all (or scheme://host) to a "
        "proxy's URL, as requests takes it"
    )


def _proxy_patterns(proxies: dict[str, str | None]) -> dict[str, str | None]:
    """Requests' proxy keys (``https``, ``https://host``) as httpx's mount patterns (``https://``)."""
    return {key if "://" in key else f"{key}://": url for key, url in proxies.items()}


def _ssl_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext | bool:
    if cert is None and isinstance(verify, bool):
        # httpx's own: its default CA bundle (or SSL_CERT_FILE), or no check at all.
        return verify
    if isinstance(verify, str):
        # A CA bundle file, or a folder of hashed CA certificates: requests takes either.
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = httpx.create_ssl_context(verify=verify)
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif cert is not None:
        context.load_cert_chain(*cert)
    return context
