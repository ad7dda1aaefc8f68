"""A small client for the parts of Airflow's public REST API (``/api/v2``) the end-to-end tests use."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

Json = dict[str, Any]

log = structlog.get_logger(__name__)

# The list endpoints cap a page at 100 entries (``[api] maximum_page_limit``).
_PAGE = 100
# Answers a loaded Airflow gives now and then and not the next time: SQLite's "database is locked" comes
# back as 500 {"reason": "Database error"}; a proxy or a restarting api-server as 502-504.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
# Waits before each retry: about 15 s in all, then the error is raised.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


class AirflowClient:
    """
    Purpose: trigger Dags and read back what Airflow recorded, as a test would through the UI.

    How it works: logs in as ``admin`` with the password ``airflow standalone`` generated, and sends the
    bearer token with every request; a 401 (expired token) logs in again once.

    A transient answer (5xx, or a dropped connection) is retried a bounded number of times with a
    growing wait, each retry logged. Requests are safe to repeat: reads are, and a trigger names its own
    run id, so a repeated trigger whose first attempt did create the run finds it instead of a second.

    What it does not do: retry anything else. Any other non-2xx answer, or a transient one that outlasts
    the retries, raises ``httpx.HTTPStatusError`` carrying the server's reason, so a test failure shows
    why the API refused.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._username = username
        self._password = password
        self._token: str | None = None
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def _login(self) -> str:
        body = {"username": self._username, "password": self._password}
        resp = self._send_retrying("POST", "/auth/token", json=body)
        _raise_for_status(resp)
        token: str = resp.json()["access_token"]
        return token

    def _send_retrying(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send once, and again after each of ``RETRY_DELAYS`` while the answer is transient."""
        for delay in (*RETRY_DELAYS, None):
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                if delay is None:
                    raise
                problem = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code not in TRANSIENT_STATUSES or delay is None:
                    return resp
                problem = f"{resp.status_code} {resp.text[:200]}"
            log.warning(
                "Transient Airflow API error; retrying",
                method=method,
                path=path,
                problem=problem,
                retry_in=delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt either returned or raised")

    def _request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        for attempt in range(2):
            if self._token is None:
                self._token = self._login()
            auth = {"Authorization": f"Bearer {self._token}"}
            resp = self._send_retrying(method, path, headers={**(headers or {}), **auth}, **kwargs)
            if resp.status_code == 401 and attempt == 0:
                # The token expired (they last a day by default): log in again, once.
                self._token = None
                continue
            _raise_for_status(resp)
            return resp
        raise AssertionError("unreachable: the second attempt either returned or raised")

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params).json()

    def _list(self, path: str, key: str, **params: Any) -> list[Json]:
        """Read every page of a list endpoint."""
        items: list[Json] = []
        while True:
            page = self._get(path, limit=_PAGE, offset=len(items), **params)
            items.extend(page[key])
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    # -- monitor and Dags ----------------------------------------------------------------------------

    def health(self) -> Json:
        """The components' health; needs no token, so it also tells whether the api-server is up."""
        resp = self._http.get("/api/v2/monitor/health")
        _raise_for_status(resp)
        result: Json = resp.json()
        return result

    def dags(self) -> list[Json]:
        return self._list("/api/v2/dags", "dags")

    def import_errors(self) -> list[Json]:
        return self._list("/api/v2/importErrors", "import_errors")

    # -- Dag runs ------------------------------------------------------------------------------------

    def trigger_dag_run(self, dag_id: str, conf: Json) -> Json:
        """Start a manual run now (no logical date, like a trigger from the UI) and return it."""
        # A random id of our own makes the trigger safe to repeat: if a retried attempt is told the run
        # exists, it can only be the run an earlier attempt of this call created before its answer was lost.
        run_id = f"manual__{datetime.now(tz=UTC).isoformat()}_{secrets.token_hex(5)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        try:
            result: Json = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json()
        except httpx.HTTPStatusError as e:
            if e.response.status_code != 409:
                raise
            log.warning("The retried trigger had created the run already", dag_id=dag_id, run_id=run_id)
            return self.dag_run(dag_id, run_id)
        return result

    def dag_run(self, dag_id: str, run_id: str) -> Json:
        result: Json = self._get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def wait_dag_run(self, dag_id: str, run_id: str, *, result: list[str], timeout: float) -> Json:
        """
        Wait through the run's own ``/wait`` endpoint, as a request/response client does; return its last line.

        The endpoint streams one JSON line per second until the run is finished; the last carries the
        ``results`` of the ``result`` tasks' ``return_value`` XComs.
        """
        resp = self._request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/wait",
            params={"interval": 1, "result": result},
            timeout=timeout,
        )
        lines = [line for line in resp.text.splitlines() if line.strip()]
        last: Json = json.loads(lines[-1])
        return last

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str) -> Json:
        """Mark a run ``success`` or ``failed`` (its unfinished tasks are stopped), as from the UI."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
        result: Json = self._request("PATCH", path, json={"state": state}).json()
        return result

    def create_connection(
        self,
        conn_id: str,
        *,
        conn_type: str,
        host: str,
        login: str | None = None,
        password: str | None = None,
    ) -> None:
        """Create Airflow connection ``conn_id`` (in the metadata database) unless it exists."""
        body = {
            "connection_id": conn_id,
            "conn_type": conn_type,
            "host": host,
            "login": login,
            "password": password,
        }
        try:
            self._request("POST", "/api/v2/connections", json=body)
        except httpx.HTTPStatusError as e:
            if e.response.status_code != 409:
                raise

    def dag_runs(self, dag_id: str, conf_contains: str | None = None) -> list[Json]:
        """All runs of ``dag_id``, oldest first; ``conf_contains`` narrows to runs whose conf has the text."""
        params: Json = {"order_by": "run_after"}
        if conf_contains is not None:
            params["conf_contains"] = conf_contains
        return self._list(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs", **params)

    def event_logs(self, **filters: Any) -> list[Json]:
        """The audit log (``/api/v2/eventLogs``): who did what, narrowed by ``dag_id``, ``run_id``, ``owner``..."""
        return self._list("/api/v2/eventLogs", "event_logs", **filters)

    # -- task instances ------------------------------------------------------------------------------

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Json:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        result: Json = self._get(path if map_index < 0 else f"{path}/{map_index}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[Json]:
        """Every task instance of a run, mapped ones expanded (one entry per map index)."""
        return self._list(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def set_task_instance_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Json:
        """Mark a task instance ``failed`` or ``success`` as a person does from the UI."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        result: Json = self._request("PATCH", path, json={"new_state": state}).json()
        return result

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[Json]:
        """One record per try of a task instance: the history plus the current try."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return self._list(f"{path}/tries" if map_index < 0 else f"{path}/{map_index}/tries", "task_instances")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The full log of one try as text, one line per structured log event."""
        resp = self._request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True, "map_index": map_index},
            headers={"Accept": "application/json"},
        )
        return _log_text(resp.json()["content"])

    def clear_task_instances(self, dag_id: str, run_id: str, task_ids: list[str]) -> list[Json]:
        """
        Clear tasks of one run as a person does from the UI's "Clear" dialog; return what was cleared.

        The body is the one the UI sends (running tasks included, no relatives, ``reset_dag_runs`` left
        at its default), so the run's ``clear_number`` goes up as after a click. Sent once, never
        retried: a repeat of a clear that did happen would clear a second time.
        """
        if self._token is None:
            self._token = self._login()
        body = {
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "dry_run": False,
            "only_failed": False,
            "include_upstream": False,
            "include_downstream": False,
            "include_future": False,
            "include_past": False,
        }
        resp = self._http.post(
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            json=body,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        _raise_for_status(resp)
        cleared: list[Json] = resp.json()["task_instances"]
        return cleared

    def state_store(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[Json]:
        """The task instance's ``task_state_store`` entries (they outlive its tries)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        return self._list(path, "task_state_store", map_index=map_index)


def _log_text(content: Any) -> str:
    """Render the log endpoint's JSON content, a list of structured events (or older plain strings)."""
    if isinstance(content, str):
        return content
    lines = []
    for entry in content:
        if not isinstance(entry, dict):
            lines.append(str(entry))
            continue
        fields = {k: v for k, v in entry.items() if k not in ("timestamp", "event", "level", "logger")}
        extra = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        lines.append(
            " ".join(
                part
                for part in (
                    str(entry.get("timestamp", "")),
                    str(entry.get("level", "")),
                    entry["event"],
                    extra,
                )
                if part
            )
        )
    return "\n".join(lines)


def _raise_for_status(resp: httpx.Response) -> None:
    """Like ``resp.raise_for_status()`` but with the server's explanation in the message."""
    if resp.is_success:
        return
    raise httpx.HTTPStatusError(
        f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:2000]}",
        request=resp.request,
        response=resp,
    )
