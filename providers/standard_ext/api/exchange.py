"""Running one conversation with the API server, on a sync or an async client, within a time limit."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast, overload

import httpx

from standard_ext.api.errors import ApiError
from standard_ext.api.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    import standard_ext.api.access


#: What an exchange returns.
T = TypeVar("T")
#: The arguments of a conversation after its access (see :func:`conversation`).
P = ParamSpec("P")
#: One conversation with the API server, written once for both clients: it yields each request, is
#: sent each response, and returns its result (run by :func:`run_sync` or :func:`run_async`).
Exchange = Generator[httpx.Request, httpx.Response, T]


class _Conversation(Generator[httpx.Request, httpx.Response, T]):
    """
    An exchange that knows the access it talks for; otherwise the generator it wraps.

    Its runner takes the client's settings from the access, and the secrets to keep out of its errors.
    """

    def __init__(self, access: standard_ext.api.access.ApiAccess, steps: Exchange[T]) -> None:
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


def conversation(
    steps: Callable[Concatenate[standard_ext.api.access.ApiAccess, P], Exchange[T]],
) -> Callable[Concatenate[standard_ext.api.access.ApiAccess, P], Exchange[T]]:
    """
    Make ``steps`` return an exchange that knows its access (its first argument).

    :func:`run_sync` and :func:`run_async` set their client up from that access, and keep its secrets out
    of their errors; an exchange that is not one of these runs with httpx's defaults (no redirects).
    """

    @functools.wraps(steps)
    def start(access: standard_ext.api.access.ApiAccess, /, *args: P.args, **kwargs: P.kwargs) -> Exchange[T]:
        return _Conversation(access, steps(access, *args, **kwargs))

    return start


def run_sync(exchange: Exchange[T], *, seconds: float, per_request: float) -> T:
    """
    Run ``exchange`` on a fresh client, within ``seconds`` overall and ``per_request`` for each request.

    A fresh client: ``on_kill`` may run in a signal handler, interrupting whatever the main thread was
    doing, so it must not share a connection pool (or its lock) with anything. It is set up from the
    exchange's access (:meth:`~standard_ext.api.access.ApiAccess.client_options`).

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
        :meth:`~standard_ext.api.access.ApiAccess.client_options`; a fresh one if ``None``, closed at the
        end.
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


def _timeout(deadline: float, per_request: float, request: httpx.Request) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0.05:
        raise ApiError(f"out of time before {request.method} {request.url}")
    return httpx.Timeout(min(per_request, left))


def _unreachable(
    request: httpx.Request, error: Exception, access: standard_ext.api.access.ApiAccess | None
) -> ApiError:
    # Only httpx's words are redacted: the URL is ours (no secret), and stays readable whatever the secrets.
    # The request's own token too, should the exchange not be one of this module's.
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
    secrets = [*(access.secrets() if access is not None else ()), sent]
    detail = redact(f"{type(error).__name__} {error}".rstrip(), secrets)
    return ApiError(f"{request.method} {request.url} failed: {detail}")


def _access_of(exchange: Exchange[Any]) -> standard_ext.api.access.ApiAccess | None:
    return exchange.access if isinstance(exchange, _Conversation) else None


def _client_options(
    access: standard_ext.api.access.ApiAccess | None, *, asynchronous: bool
) -> dict[str, Any]:
    if access is None:
        return {"follow_redirects": False}
    try:
        return access.client_options(asynchronous=asynchronous)
    except ValueError as e:
        raise ApiError(str(e)) from None
