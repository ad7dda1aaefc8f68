"""``DagRunTrigger.on_kill`` with ``cancel_on_kill``: cancel the child run once its parent is stopped."""

from __future__ import annotations

from typing import Any

import structlog
from airflow.sdk import BaseHook

from standard_ext import cancel
from standard_ext.cancel_decision import should_cancel_deferred

log = structlog.get_logger(__name__)

# Well inside [triggerer] on_kill_timeout (30 s by default), after which the triggerer stops waiting.
KILL_SECONDS = 20.0
KILL_REQUEST_SECONDS = 5.0


async def cancel_child(*, conn_id: str, parent: Any, dag_id: str, run_id: str) -> None:
    """
    Cancel the child run, unless the parent is still deferred (its trigger moved to another triggerer).

    Every failure is logged as a warning, never raised: the triggerer would only log it less clearly.

    :param conn_id: the ``airflow_api_conn_id`` connection, read here (the triggerer's own secrets chain).
    :param parent: the trigger's ``task_instance``; ``None`` where no triggerer set it (``dag.test()``).
    :param dag_id: the child Dag.
    :param run_id: the child run.
    """
    ids = {"dag_id": dag_id, "run_id": run_id}
    if parent is None:
        log.info("Not cancelling the Dag run: the trigger has no task instance to ask about", **ids)
        return
    try:
        # Awaited: on_kill runs in an asyncio task of its own, where a sync SDK call raises.
        conn = await BaseHook.aget_connection(conn_id)
        access = cancel.ApiAccess.from_connection(conn, conn_id=conn_id)
    except Exception as e:
        # Not found, incomplete, or a secrets backend's own error: the reason is logged, the run goes on.
        log.warning(
            "Not cancelling the Dag run: no usable connection to the API server",
            conn_id=conn_id,
            error=f"{type(e).__name__}: {e}",
            **ids,
        )
        return
    this_try = int(parent.try_number)
    task = cancel.TaskRef(
        dag_id=parent.dag_id,
        run_id=parent.run_id,
        task_id=parent.task_id,
        map_index=-1 if parent.map_index is None else int(parent.map_index),
        try_number=this_try,
    )

    def decide(state: str | None, try_number: int | None) -> tuple[bool, str]:
        return should_cancel_deferred(parent_state=state, parent_try=try_number, this_try=this_try)

    exchange = cancel.decide_then_cancel(access, task=task, dag_id=dag_id, run_id=run_id, decide=decide)
    try:
        outcome = await cancel.run_async(exchange, seconds=KILL_SECONDS, per_request=KILL_REQUEST_SECONDS)
    except cancel.ApiError as e:
        log.warning("Not cancelling the Dag run: a request to the Airflow API failed", error=str(e), **ids)
        return
    cancel.report(outcome, log=log, **ids)
