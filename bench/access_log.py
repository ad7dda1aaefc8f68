"""
Count the state requests each child run cost, where they were made: the api-server's access log.

Airflow's api-server logs every request it served as one structured ``request finished`` event
(``airflow/api_fastapi/common/http_access_log.py``) with its ``method``, ``path`` and ``query``, at
the default log level. A waiting parent asks the execution API (``/execution/...``) about its child
run; each such question names the run id in its path (``/dag-runs/<dag>/<run>/state``) or its query
(``run_ids=`` of a count or of the task states), and the history look-up names the child Dag
(``/dag-runs/previous?dag_id=<dag>``).

The width bench (``python -m bench --width``) counts from the same log, over one case's window: every
execution-API request, and the task processes started, each of which sends ``PATCH .../run`` once
(``task_starts``).

What this cannot see: requests that never reach the api-server over HTTP. The triggerer calls the
execution API in-process (``TriggerRunnerSupervisor.make_client`` uses ``InProcessExecutionAPI``,
whose app has no access-log middleware), so a deferred wait's checks are in no log at the default
level; only the task's own requests before the deferral and after the resume are.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

ACCESS_EVENT = "request finished"
# The execution API's prefixes for questions about Dag runs and task instances, and the endpoints that
# read a run's state: its state, a count of runs in some states, its task states, the Dag's previous run.
STATE_PREFIXES = ("/execution/dag-runs/", "/execution/task-instances/")
STATE_ENDPOINTS = frozenset({"state", "count", "states", "previous"})
TRIGGER_PREFIX = "/execution/dag-runs/"
EXECUTION_PREFIX = "/execution/"
# What a task's supervisor sends as it starts the task process, a new try's or a deferred task's resume:
# PATCH /execution/task-instances/<id>/run. Airflow 3 gives every try an id of its own.
_TASK_START = re.compile(r"^/execution/task-instances/(?P<id>[^/]+)/run$")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
# structlog's console renderer writes key=value, quoting (as Python reprs) values with special characters.
_FIELD = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S*)")

RunKey = tuple[str, str]


@dataclass(frozen=True)
class Request:
    """One request the api-server served: when it finished, what it asked, and the answer's status."""

    at: datetime
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int

    @property
    def segments(self) -> list[str]:
        """The path's segments, URL-decoded (run ids carry ``+`` and ``:``)."""
        return [unquote(part) for part in self.path.strip("/").split("/")]

    def run_ids(self) -> list[str]:
        """Every run id the request names, in its path or in its query's ``run_id``/``run_ids``."""
        named = [value for key, value in self.query if key in ("run_id", "run_ids")]
        segments = self.segments
        if self.path.startswith(TRIGGER_PREFIX) and len(segments) >= 4 and segments[3] not in STATE_ENDPOINTS:
            # /execution/dag-runs/<dag_id>/<run_id>[/...]
            named.append(segments[3])
        return list(dict.fromkeys(named))

    def dag_id(self) -> str | None:
        """The Dag the request is about, from its query's ``dag_id`` or a ``/dag-runs/<dag_id>/`` path."""
        for key, value in self.query:
            if key == "dag_id":
                return value
        segments = self.segments
        if self.path.startswith(TRIGGER_PREFIX) and len(segments) >= 4 and segments[2] not in STATE_ENDPOINTS:
            return segments[2]
        return None

    @property
    def is_state_request(self) -> bool:
        """A GET about a run's or its tasks' state (see ``STATE_ENDPOINTS``)."""
        return (
            self.method == "GET"
            and self.path.startswith(STATE_PREFIXES)
            and self.segments[-1] in STATE_ENDPOINTS
        )

    @property
    def trigger(self) -> RunKey | None:
        """The run a trigger request creates (``POST /execution/dag-runs/<dag>/<run>``), if it is one."""
        segments = self.segments
        if self.method == "POST" and self.path.startswith(TRIGGER_PREFIX) and len(segments) == 4:
            return segments[2], segments[3]
        return None


def parse(lines: Iterable[str]) -> list[Request]:
    """
    Return the requests of the access-log lines among ``lines`` (other lines are skipped).

    Takes both renderings Airflow has: the console's ``key=value`` (the default, prefixed by
    ``airflow standalone`` with the component's name) and JSON lines (``[logging] json_logs``).

    :param lines: lines of an api-server's log.
    """
    requests = []
    for line in lines:
        fields = event_fields(line, ACCESS_EVENT)
        if fields is None or not {"timestamp", "method", "path"} <= fields.keys():
            continue
        requests.append(
            Request(
                at=datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00")),
                method=fields["method"],
                path=fields["path"],
                query=tuple(parse_qsl(fields.get("query", ""), keep_blank_values=True)),
                status=int(fields.get("status_code") or 0),
            )
        )
    return requests


def event_fields(line: str, event: str) -> dict[str, str] | None:
    """
    Return the fields of one Airflow log line about ``event`` (its ``timestamp`` among them), else ``None``.

    Either rendering: a JSON line, or the console's ``<timestamp> [<level>] <event> [<logger>] key=value``.

    :param line: one line of a component's log.
    :param event: the event's text, as the code logs it.
    """
    if event not in line:
        return None
    return _json_fields(line, event) or _console_fields(line, event)


def json_object(line: str) -> dict[str, Any] | None:
    """
    The JSON object a log line carries from its first ``{`` (``[logging] json_logs``), or ``None``.

    :param line: one line of a log.
    """
    start = line.find("{")
    if start < 0:
        return None
    try:
        found = json.loads(line[start:])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _json_fields(line: str, event: str) -> dict[str, str] | None:
    found = json_object(line)
    if found is None or found.get("event") != event:
        return None
    return {key: str(value) for key, value in found.items() if value is not None}


def _console_fields(line: str, event: str) -> dict[str, str] | None:
    if (stamp := TIMESTAMP.search(line)) is None:
        return None
    fields = {"timestamp": stamp.group(0)}
    for key, raw in _FIELD.findall(line[line.index(event) + len(event) :]):
        fields[key] = ast.literal_eval(raw) if raw[:1] in ("'", '"') else raw
    return fields


def state_requests_per_run(requests: Iterable[Request], runs: Collection[RunKey]) -> dict[RunKey, float]:
    """
    Count, for each of ``runs``, the state requests made about it after it was triggered.

    A request naming k run ids counts 1/k for each (a count over several runs is shared by their
    waiters). A request naming the child Dag but no run (the history look-up a wait starts with) counts
    for the run of that Dag triggered last before it. Requests before the run's trigger (a durable
    parent's check that its planned run does not exist yet) are not part of the wait; nor is the trigger.

    :param requests: what ``parse`` read, in the order served.
    :param runs: the child runs, as ``(dag_id, run_id)``.
    """
    ordered = sorted(requests, key=lambda r: r.at)
    wanted = set(runs)
    by_run_id = {run_id: (dag_id, run_id) for dag_id, run_id in wanted}
    # Every trigger first: a request may finish (and be logged) before the trigger it follows does.
    triggered: dict[RunKey, datetime] = {}
    for request in ordered:
        if (key := request.trigger) is not None and key in wanted:
            triggered.setdefault(key, request.at)
    counts: dict[RunKey, float] = defaultdict(float)
    for request in ordered:
        if not request.is_state_request:
            continue
        if named := request.run_ids():
            for run_id in named:
                key = by_run_id.get(run_id)
                # A run whose trigger is not in the log (triggered before it begins) counts from the start.
                if key is not None and (key not in triggered or request.at >= triggered[key]):
                    counts[key] += 1 / len(named)
        elif (key := _latest_triggered(triggered, request.dag_id(), request.at)) is not None:
            counts[key] += 1
    return {key: counts.get(key, 0.0) for key in runs}


def _latest_triggered(triggered: dict[RunKey, datetime], dag_id: str | None, at: datetime) -> RunKey | None:
    """The run of ``dag_id`` triggered last at or before ``at``, if any."""
    before = [(when, key) for key, when in triggered.items() if key[0] == dag_id and when <= at]
    return max(before)[1] if before else None


@dataclass(frozen=True)
class TaskStarts:
    """
    The task processes the access log shows started: ``processes`` in all, for ``tries`` task tries.

    A try's first process and each resume of a deferred task send one ``PATCH .../run``; a retry or a
    re-run is a new try under a new task-instance id. So ``processes - tries`` is the deferral resumes.
    """

    processes: int
    tries: int

    @property
    def resumes(self) -> int:
        """The processes that resumed a deferred try rather than began one."""
        return self.processes - self.tries


def between(requests: Iterable[Request], start: datetime, end: datetime) -> list[Request]:
    """
    The requests served from ``start`` to ``end`` (both included): one case's, when cases run one at a time.

    :param requests: what ``parse`` read.
    :param start: when the case began (timezone-aware).
    :param end: when it ended.
    """
    return [request for request in requests if start <= request.at <= end]


def execution_requests(requests: Iterable[Request]) -> int:
    """
    Count the execution API's requests among ``requests``: what task processes asked over HTTP.

    The triggerer's are not among them: it calls the execution API in-process (see the module).

    :param requests: what ``parse`` read (``between`` a case's start and end).
    """
    return sum(request.path.startswith(EXECUTION_PREFIX) for request in requests)


def task_starts(requests: Iterable[Request]) -> TaskStarts:
    """
    Count the task processes started and the tries they belong to, from their ``PATCH .../run``.

    A 5xx answer is left out: the supervisor's client retries it, so the same process asks again. A 409
    (the try is not in a state to run) still counts: the process was started, and refused.

    :param requests: what ``parse`` read (``between`` a case's start and end).
    """
    ids = [
        match["id"]
        for request in requests
        if request.method == "PATCH"
        and request.status < 500
        and (match := _TASK_START.match(request.path)) is not None
    ]
    return TaskStarts(processes=len(ids), tries=len(set(ids)))
