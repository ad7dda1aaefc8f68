"""
The triggerer's in-process requests, read from its log: one httpx ``HTTP Request`` line per request.

The triggerer asks the execution API in-process (``TriggerRunnerSupervisor.make_client``: an
``httpx.Client`` on ``InProcessExecutionAPI``'s transport), so no access log has its requests. httpx logs
each request it sends at info, and the width bench's triggerer lets those lines through
(``bench/triggerer_plugins/request_log.py``, whose plugin also logs ``LOGGING_EVENT`` once as it loads).
A line, as the console renderer writes it::

    2026-12-07T18:04:49.126223Z [info     ] HTTP Request: GET http://in-process.invalid./task-instances/
    states?dag_id=bench_paused_target&run_ids=manual__2026-12-07T18%3A04%3A35.753981%2B00%3A00
    "HTTP/1.1 200 OK" [httpx] loc=_client.py:1025

(one line in the log), or with ``[logging] json_logs`` a JSON object whose ``event`` is the same text.
The in-process client's base URL has no ``/execution`` prefix; one is dropped if there, so a path reads
as the route is declared. Each request is classified by its route (``route_of``): a stock
``DagStateTrigger`` counts runs (``GET /dag-runs/count``), our shared poller asks the task states
(``GET /task-instances/states``) and, once they are all finished, a run's state.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from bench.access_log import TIMESTAMP, Request, json_object
from bench.triggerer_plugins.request_log import LOGGING_EVENT

if TYPE_CHECKING:
    from collections.abc import Iterable

REQUEST_EVENT = "HTTP Request: "
# httpx's own format: 'HTTP Request: %s %s "%s %d %s"' (method, URL, HTTP version, status, reason).
_REQUEST = re.compile(
    r'HTTP Request: (?P<method>[A-Z]+) (?P<url>\S+) "(?P<version>[^" ]+) (?P<status>\d{3})(?: [^"]*)?"'
)
EXECUTION_PREFIX = "/execution"
# The execution API's routes a wait asks (airflow/api_fastapi/execution_api/routes/dag_runs.py and
# task_instances.py), as the segments after the resource: a literal, or a {placeholder}. The first that
# fits names a request's route; a request that fits none is named by its resource alone.
ROUTES = {
    "dag-runs": (
        ("count",),
        ("previous",),
        ("{dag_id}", "previous"),
        ("{dag_id}", "{run_id}", "state"),
        ("{dag_id}", "{run_id}", "clear"),
        ("{dag_id}", "{run_id}"),
        ("{dag_id}",),
    ),
    "task-instances": (
        ("count",),
        ("states",),
        ("previous", "{dag_id}", "{task_id}"),
    ),
}


@dataclass(frozen=True)
class InProcessRequest(Request):
    """
    One request the triggerer sent in-process: an access-log request's fields, read from httpx's line.

    ``path`` is the route's path without the scheme, host and ``/execution`` prefix; ``query`` its query.
    """

    @property
    def route(self) -> str:
        """The method and the route it asked (see ``route_of``)."""
        return route_of(self.method, self.path)


def route_of(method: str, path: str) -> str:
    """
    Name the route a request asked: its method and the route's declared path, ids as placeholders.

    ``GET /dag-runs/d/r/state`` is ``GET /dag-runs/{dag_id}/{run_id}/state``; a path no route in
    ``ROUTES`` fits is named by its resource (``GET /variables/...``).

    :param method: the request's method.
    :param path: its path (``InProcessRequest.path``).
    """
    resource, *rest = path.strip("/").split("/")
    for declared in ROUTES.get(resource, ()):
        if len(declared) == len(rest) and all(
            part.startswith("{") or part == given for part, given in zip(declared, rest, strict=True)
        ):
            return f"{method} /{'/'.join((resource, *declared))}"
    return f"{method} /{resource}/..." if rest else f"{method} /{resource}"


def parse(lines: Iterable[str]) -> list[InProcessRequest]:
    """
    Return the in-process requests among the triggerer's log ``lines`` (other lines are skipped).

    Takes both renderings: the console's (the default) and JSON lines (``[logging] json_logs``).

    :param lines: lines of the triggerer's log.
    """
    found = []
    for line in lines:
        if REQUEST_EVENT not in line:
            continue
        event, stamp = _json_event(line) or _console_event(line)
        if stamp is None or (match := _REQUEST.search(event)) is None:
            continue
        url = urlsplit(match["url"])
        path = url.path
        if path == EXECUTION_PREFIX or path.startswith(EXECUTION_PREFIX + "/"):
            path = path[len(EXECUTION_PREFIX) :]
        found.append(
            InProcessRequest(
                at=datetime.fromisoformat(stamp.replace("Z", "+00:00")),
                method=match["method"],
                path=path,
                query=tuple(parse_qsl(url.query, keep_blank_values=True)),
                status=int(match["status"]),
            )
        )
    return found


def _json_event(line: str) -> tuple[str, str | None] | None:
    found = json_object(line)
    if found is None or not isinstance(event := found.get("event"), str):
        return None
    stamp = found.get("timestamp")
    return event, stamp if isinstance(stamp, str) else None


def _console_event(line: str) -> tuple[str, str | None]:
    stamp = TIMESTAMP.search(line)
    return line, None if stamp is None else stamp.group(0)


def between(requests: Iterable[InProcessRequest], start: datetime, end: datetime) -> list[InProcessRequest]:
    """
    The requests logged from ``start`` to ``end`` (both included).

    :param requests: what ``parse`` read.
    :param start: the window's start (timezone-aware).
    :param end: its end.
    """
    return [request for request in requests if start <= request.at <= end]


def by_route(requests: Iterable[InProcessRequest]) -> dict[str, int]:
    """
    How many of ``requests`` asked each route, the most asked first.

    :param requests: what ``parse`` read (``between`` a window's start and end).
    """
    return dict(Counter(request.route for request in requests).most_common())


def logging_on(lines: Iterable[str]) -> bool:
    """
    Whether the triggerer whose log ``lines`` are logs its in-process requests: its plugin said so.

    Without it, no request line means nothing; with it, none means none was sent.

    :param lines: the triggerer's log from its start.
    """
    return any(LOGGING_EVENT in line for line in lines)
