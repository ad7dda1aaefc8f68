"""The triggers' ``on_kill`` with ``cancel_on_kill``: cancel the child run(s) once the parent is stopped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from airflow.sdk import BaseHook

from standard_ext.cancel import api as cancel_api
from standard_ext.cancel import runs as cancel_runs
from standard_ext.cancel.decision import Killed, Parent, Try, should_cancel

if TYPE_CHECKING:
    from collections.abc import Coroutine

log = structlog.get_logger(__name__)

#: Well inside [triggerer] on_kill_timeout (30 s by default), after which the triggerer stops waiting.
KILL_SECONDS = 20.0
KILL_REQUEST_SECONDS = 5.0

# The cancels under way, held so that the event loop keeps them (it holds tasks only weakly).
_UNDER_WAY: set[asyncio.Task[None]] = set()


async def shielded(work: Coroutine[Any, Any, None]) -> None:
    """
    Run ``work`` to its end even if the triggerer cancels the ``on_kill`` awaiting it.

    **Why:** the triggerer keeps a cancelled trigger in its list to cancel until the trigger reports
    it finished, and sends the cancel again at each sync, about every second; the second cancel lands in
    the ``on_kill`` it is awaiting, whatever ``[triggerer] on_kill_timeout`` says. A sign-in and two
    requests per run can take longer than a second on a busy API server, so the work runs in a task of
    its own, bounded by :data:`KILL_SECONDS`, and a cancel only stops the waiting for it.
    """
    task = asyncio.ensure_future(work)
    _UNDER_WAY.add(task)
    task.add_done_callback(_UNDER_WAY.discard)
    await asyncio.shield(task)


async def cancel_child(*, conn_id: str, parent: Any, dag_id: str, run_id: str, durable: bool = True) -> None:
    """
    Cancel the child run, unless the parent is still deferred (its trigger moved to another triggerer).

    Every failure is logged as a warning, never raised: the triggerer would only log it less clearly.

    :param conn_id: the ``airflow_api_conn_id`` connection, read here (the triggerer's own secrets chain).
    :param parent: the trigger's ``task_instance``; ``None`` where no triggerer set it (``dag.test()``).
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param durable: whether a retry of the task reconnects to the run.
    """
    ids = {"dag_id": dag_id, "run_id": run_id}
    ready = await _ready(conn_id, parent, wording=_ONE, fields=ids)
    if ready is None:
        return
    access, task = ready
    decide = _deferred_decision(task, durable=durable)
    exchange = cancel_api.decide_then_cancel(access, task=task, dag_id=dag_id, run_id=run_id, decide=decide)
    try:
        outcome = await cancel_api.run_async(exchange, seconds=KILL_SECONDS, per_request=KILL_REQUEST_SECONDS)
    except cancel_api.ApiError as e:
        log.warning("Not cancelling the Dag run: a request to the Airflow API failed", error=str(e), **ids)
        return
    cancel_api.report(outcome, log=log, **ids)


async def cancel_children(
    *, conn_id: str, parent: Any, dag_id: str, run_ids: list[str], durable: bool = True
) -> None:
    """
    Cancel a fan-out's active runs, unless the parent is still deferred; one by one, in the budget.

    The parent is read once for all of them; then the runs
    are cancelled one at a time, within :data:`KILL_SECONDS`; the runs left when it is up are logged.
    Every failure is logged as a warning, never raised.

    :param conn_id: the ``airflow_api_conn_id`` connection, read here (the triggerer's own secrets chain).
    :param parent: the trigger's ``task_instance``; ``None`` where no triggerer set it (``dag.test()``).
    :param dag_id: the child Dag.
    :param run_ids: the runs to cancel: those of the fan-out not seen over.
    :param durable: whether a retry of the task reconnects to the runs.
    """
    ids: dict[str, Any] = {"dag_id": dag_id, "runs": len(run_ids)}
    if not run_ids:
        log.info("Not cancelling: none of the fan-out's Dag runs is active", **ids)
        return
    ready = await _ready(conn_id, parent, wording=_MANY, fields=ids)
    if ready is None:
        return
    access, task = ready
    tally = cancel_runs.Tally(dag_id=dag_id, run_ids=tuple(run_ids))
    await cancel_runs.decide_then_cancel_all(
        access,
        tally,
        task=task,
        decide=_deferred_decision(task, durable=durable),
        seconds=KILL_SECONDS,
        per_request=KILL_REQUEST_SECONDS,
    )
    cancel_runs.report_all(tally, log=log)


@dataclass(frozen=True)
class _Wording:
    no_parent: str
    no_connection: str


_ONE = _Wording(
    no_parent="Not cancelling the Dag run: the trigger has no task instance to ask about",
    no_connection="Not cancelling the Dag run: no usable connection to the API server",
)
_MANY = _Wording(
    no_parent="Not cancelling the fan-out's Dag runs: the trigger has no task instance to ask about",
    no_connection="Not cancelling the fan-out's Dag runs: no usable connection to the API server",
)


async def _ready(
    conn_id: str, parent: Any, *, wording: _Wording, fields: dict[str, Any]
) -> tuple[cancel_api.ApiAccess, cancel_api.TaskRef] | None:
    """The access to the API server and the parent to ask about; ``None`` (logged why) without either."""
    if parent is None:
        log.info(wording.no_parent, **fields)
        return None
    try:
        # Awaited: on_kill runs in an asyncio task of its own, where a sync SDK call raises.
        conn = await BaseHook.aget_connection(conn_id)
        access = cancel_api.ApiAccess.from_connection(conn, conn_id=conn_id)
    except Exception as e:
        # Not found, incomplete, or a secrets backend's own error: the reason is logged, the run goes on.
        log.warning(wording.no_connection, conn_id=conn_id, error=f"{type(e).__name__}: {e}", **fields)
        return None
    return access, cancel_api.TaskRef.of(parent)


def _deferred_decision(task: cancel_api.TaskRef, *, durable: bool) -> cancel_runs.Decide:
    """Judge the trigger's kill from the parent as the API shows it now (:func:`should_cancel`)."""
    stopped = Try(
        try_number=task.try_number,
        max_tries=task.max_tries,
        durable=durable,
        # As the server decided when the try started.
        retries_left=task.max_tries is None or task.try_number <= task.max_tries,
        killed=Killed.TRIGGER,
    )

    def decide(parent: Parent) -> tuple[bool, str]:
        return should_cancel(parent=parent, stopped=stopped)

    return decide
