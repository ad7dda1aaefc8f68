"""
Cancelling a child Dag run through Airflow's public REST API: signing in, reading the parent, the PATCH.

The conversations are here; what they stand on is below them, each module one job:
:mod:`~standard_ext.api.access` (the connection and the parent task's ids), :mod:`~standard_ext.api.extras`
(its TLS and proxy extras), :mod:`~standard_ext.api.exchange` (running a conversation on a client, in time),
:mod:`~standard_ext.api.calls` (signing in, an authorized request and its answer),
:mod:`~standard_ext.api.errors` (what a failed request raises) and :mod:`~standard_ext.api.redaction`
(keeping secrets out of error texts). The names other modules use are all re-exported from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from standard_ext.api.access import ApiAccess, TaskRef, base_url
from standard_ext.api.calls import authorized, expect, json_object, sign_in
from standard_ext.api.errors import ApiError, UnsafePathError
from standard_ext.api.exchange import Exchange, T, conversation, run_async, run_sync
from standard_ext.cancel.decision import Parent
from standard_ext.durable.decision import FINAL_STATES

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ApiAccess",
    "ApiError",
    "Exchange",
    "Outcome",
    "T",
    "TaskRef",
    "UnsafePathError",
    "base_url",
    "cancel_run",
    "decide_then_cancel",
    "read_task_instance",
    "report",
    "run_async",
    "run_sync",
    "sign_in",
    "sign_in_and_check",
]


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: the run was cancelled, or why not (``ended``: the state it already had)."""

    cancelled: bool
    reason: str
    ended: str | None = None


@conversation
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
    response = yield from authorized(
        access, "GET", access.url("api", "v2", "dags", dag_id, "dagRuns") + "?limit=1"
    )
    # 404: no such Dag (the trigger says so, naming it); any other answer is for the request's own sake.
    if response.status_code == 403:
        missing.append(f"read the Dag runs of Dag {dag_id!r} (FAB: can read on DAG Runs and on the Dag)")
    elif response.status_code not in (200, 404):
        expect(access, response, 200, what=f"list the Dag runs of Dag {dag_id!r}")
    segments = ["api", "v2", "dags", task.dag_id, "dagRuns", task.run_id, "taskInstances", task.task_id]
    if task.map_index >= 0:
        segments.append(str(task.map_index))
    response = yield from authorized(access, "GET", access.url(*segments))
    if response.status_code == 403:
        missing.append(
            f"read the task instances of Dag {task.dag_id!r} (FAB: can read on DAG Runs, on Task Instances "
            "and on the Dag)"
        )
    elif response.status_code not in (200, 404):
        expect(access, response, 200, what="read the parent task instance")
    return missing


@conversation
def read_task_instance(access: ApiAccess, task: TaskRef) -> Exchange[Parent]:
    """Return the task instance's live state, try number and ``max_tries``."""
    segments = ["api", "v2", "dags", task.dag_id, "dagRuns", task.run_id, "taskInstances", task.task_id]
    if task.map_index >= 0:
        segments.append(str(task.map_index))
    response = yield from authorized(access, "GET", access.url(*segments))
    expect(access, response, 200, what="read the parent task instance")
    body = json_object(response)
    state, try_number, max_tries = body.get("state"), body.get("try_number"), body.get("max_tries")
    return Parent(
        state=str(state) if state else None,
        try_number=try_number if isinstance(try_number, int) else None,
        max_tries=max_tries if isinstance(max_tries, int) else None,
    )


@conversation
def cancel_run(access: ApiAccess, *, dag_id: str, run_id: str, reason: str) -> Exchange[Outcome]:
    """Set the run ``failed``, unless it already ended: that PATCH would turn a success into a failure."""
    url = access.url("api", "v2", "dags", dag_id, "dagRuns", run_id)
    response = yield from authorized(access, "GET", url)
    expect(access, response, 200, what="read the child Dag run")
    state = json_object(response).get("state")
    if state in FINAL_STATES:
        return Outcome(cancelled=False, reason=reason, ended=str(state))
    # Its running tasks are failed (their heartbeat is refused, so they get on_kill), the rest skipped.
    response = yield from authorized(access, "PATCH", url, body={"state": "failed"})
    expect(access, response, 200, what="set the child Dag run failed")
    return Outcome(cancelled=True, reason=reason)


@conversation
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
