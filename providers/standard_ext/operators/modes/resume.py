"""
``auto_clear_failed_tasks``: sign in before anything is sent; resume a failed child run by clearing its failed tasks.

The clear is sent from the task, never from the triggerer: a deferred task resumes on a worker first, and
its retry decides.
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from standard_ext.durable.decision import ACTIVE_STATES, Decision, SavedRun
from standard_ext.fanout.poll import server_states
from standard_ext.fanout.record import RECORD_KEY
from standard_ext.fanout.state import ItemAction, ItemState
from standard_ext.operators.modes.cancel_sign_in import (
    call_riding_out_blips,
    is_first_try_since_clear,
    sign_in,
)
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.resume.clear import (
    clear_failed_tasks,
    failed_tasks,
    missing_clear_permission,
    sign_in_and_check_clear,
)
from standard_ext.wait.runs import child_state
from standard_ext.wait.stop_guard import refuse_if_stopped
from standard_ext.wait.stopped import StopNote

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    import standard_ext.api.access
    from standard_ext.fanout.record import FanOutRecord
    from standard_ext.operators.modes.protocols import FanOutOperator, SingleRunOperator

OPTION = "auto_clear_failed_tasks"
#: Said after the missing permission when the sign-in check finds it missing.
NEEDS = "a failed child run is resumed by clearing its failed tasks"


def prepare(
    *,
    operator: Any,
    context: Context,
    dag_id: str,
    signed_in: standard_ext.api.access.ApiAccess | None = None,
    resuming: bool = False,
) -> standard_ext.api.access.ApiAccess | None:
    """
    Sign in and check that the user may clear the child Dag's task instances; ``None`` without the option.

    Called before anything is triggered, as ``cancel_on_kill``'s sign-in is, with its rules: a missing
    connection or a refusal fails for good on the first try since a clear, the task's retries apply on a
    later one, and the API server's passing failures are ridden out.

    :param operator: the task's operator (``auto_clear_failed_tasks``, ``airflow_api_conn_id``, ``retries``).
    :param context: the task context (``ti``).
    :param dag_id: the child Dag, rendered.
    :param signed_in: the access ``cancel_on_kill`` already signed in with: only the check is sent.
    :param resuming: a deferred fan-out resuming with items still to clear: its runs exist, so no error
        may end the task for good.
    """
    if not operator.auto_clear_failed_tasks:
        return None
    final = not resuming and is_first_try_since_clear(ti=context["ti"], retries=operator.retries)
    if signed_in is None:
        return sign_in(
            task_id=operator.task_id,
            conn_id=operator.airflow_api_conn_id,
            final=final,
            check=lambda access: sign_in_and_check_clear(access, dag_id=dag_id),
            purpose=OPTION,
            needs=NEEDS,
        )
    prefix = f"Task {operator.task_id!r}: {OPTION}"
    missing = call_riding_out_blips(
        lambda: missing_clear_permission(signed_in, dag_id=dag_id),
        access=signed_in,
        prefix=prefix,
        final=final,
        what="check the permission to clear",
    )
    if missing:
        give_up = AirflowFailException if final else AirflowException
        raise give_up(
            f"{prefix}: the user {signed_in.username!r} of connection {signed_in.conn_id!r} may not "
            + " nor ".join(missing)
            + f"; {NEEDS}"
        )
    return signed_in


def prepare_single(
    *, operator: SingleRunOperator, context: Context
) -> standard_ext.api.access.ApiAccess | None:
    """:func:`prepare` for ``TriggerDagRunOperator``, on the access ``cancel_on_kill`` signed in with, if any."""
    canceller = operator.canceller
    return prepare(
        operator=operator,
        context=context,
        dag_id=str(operator.trigger_dag_id),
        signed_in=None if canceller is None else canceller.access,
    )


def clear_failed(
    *, operator: Any, access: standard_ext.api.access.ApiAccess, dag_id: str, run_id: str
) -> list[str]:
    """
    Clear the run's failed tasks, riding out the API server's passing failures; return the tasks cleared.

    A refusal (or a failure that outlasts the blip rules) raises :class:`AirflowException`: the task's
    retries apply, and the retry finds the run as the clear left it. Once ``on_kill`` ran in this process
    no attempt is sent (:func:`~standard_ext.wait.stop_guard.refuse_if_stopped`), a blip's second one
    included.

    :param operator: the task's operator (its ``task_id``, and ``stopped_by``).
    """
    return call_riding_out_blips(
        lambda: clear_failed_tasks(access, dag_id=dag_id, run_id=run_id),
        access=access,
        prefix=f"Task {operator.task_id!r}: {OPTION}",
        final=False,
        what="clear the failed tasks of the child Dag run",
        before_each=lambda: refuse_if_stopped(
            operator, action="clear the failed tasks of the Dag run", dag_id=dag_id, run_id=run_id
        ),
    )


def clear_saved_run(
    *,
    operator: SingleRunOperator,
    context: Context,
    saved: SavedRun,
    clear_number: int | None,
    log_fields: dict[str, Any],
) -> tuple[SavedRun, Decision]:
    """
    Resume the saved, failed run: record the clear, send it, and say what follows.

    Write-ahead, as for a trigger: the record counts the clear (and takes this try's ``max_tries``, so a
    later automatic retry is not taken for a person's clear) before the clear is sent. Whatever point a
    crash comes at, the retry reads the run's state and ends on the same run: still failed, the clear was
    not sent (or not taken) and is sent now; queued or running, it took, and the retry waits.

    :return: the record now in force, and ``RECONNECT`` (wait on the run), ``ALREADY_FINISHED`` (it ended
        in an allowed state meanwhile), or ``RESUBMIT`` (it failed with no failed task to clear: a run
        marked failed by hand or timed out, whose unfinished tasks were skipped; a fresh run replaces it,
        as without the option).
    """
    ti, store = context["ti"], context["task_state_store"]
    ids = {"dag_id": saved.dag_id, "run_id": saved.run_id}
    record = replace(
        saved, max_tries=ti.max_tries, clear_number=clear_number, ended=None, clears=saved.clears + 1
    )
    refuse_if_stopped(operator, action="clear the failed tasks of the Dag run", **ids)
    store.set(operator.external_id_key, record.to_json())
    operator.stop_note = StopNote(ti=ti, store=store, key=operator.external_id_key, record=record)
    operator.log.info(
        "The Dag run saved by an earlier try failed; clearing its failed tasks",
        clears=record.clears,
        **ids,
        **log_fields,
    )
    cleared = clear_failed(operator=operator, access=_access_of(operator), **ids)
    if cleared:
        operator.log.info(
            "Cleared the failed tasks of the Dag run; waiting on it again", tasks=cleared, **ids
        )
        # Queued again just now: checked a second from now, as a run this try triggered.
        operator.triggered_at = time.time()
        return record, Decision.RECONNECT
    state = child_state(triggering_ti(context), saved.dag_id, saved.run_id)
    if state in ACTIVE_STATES:
        operator.log.info(
            "Nothing left to clear: an earlier clear took; waiting on the Dag run", state=state, **ids
        )
        return record, Decision.RECONNECT
    if state in operator.allowed_states:
        operator.child_end = state
        return record, Decision.ALREADY_FINISHED
    operator.log.warning(
        "The Dag run has no failed task to clear (marked failed, or timed out); triggering a fresh one",
        state=state,
        **ids,
    )
    return record, Decision.RESUBMIT


def plan_clears(
    *,
    operator: FanOutOperator,
    context: Context,
    saved: FanOutRecord,
    actions: list[ItemAction],
    clear_number: int | None,
) -> tuple[FanOutRecord, list[ItemAction]]:
    """
    Decide which failed items resume in place, and record their clears before any is sent.

    Each ``CLEAR`` item's run is asked with a dry run what a clear would clear. One with nothing (a run
    marked failed by hand, or timed out, whose unfinished tasks were skipped) is redriven under a new run
    id instead, as without the option. The rest stay ``CLEAR``: the record counts their clears (and takes
    this try's ``max_tries``) now, and each is sent when the window has room for its item
    (:func:`start_cleared_item`), so ``max_active`` holds for them as for new runs. Whatever point a crash
    comes at, the retry finds each run failed (not cleared yet: cleared then) or active (cleared: waited
    on), so each run is cleared once.

    :param actions: each item's action; those ``CLEAR`` are looked at.
    :return: the record now in force, and the actions with nothing-to-clear items made ``REDRIVE``.
    """
    ti, store = context["ti"], context["task_state_store"]
    access = _access_of(operator)
    resolved = list(actions)
    for index, action in enumerate(actions):
        if action is not ItemAction.CLEAR:
            continue
        run_id = saved.run_ids[index]
        found = call_riding_out_blips(
            functools.partial(failed_tasks, access, dag_id=saved.dag_id, run_id=run_id),
            access=access,
            prefix=f"Task {operator.task_id!r}: {OPTION}",
            final=False,
            what="list the failed tasks of the child Dag run",
        )
        if not found:
            resolved[index] = ItemAction.REDRIVE
            operator.log.warning(
                "The item's run has no failed task to clear (marked failed, or timed out); redriving it",
                item=index,
                run_id=run_id,
            )
    indexes = [index for index, action in enumerate(resolved) if action is ItemAction.CLEAR]
    if not indexes:
        return saved, resolved
    clears = dict(saved.clears)
    for index in indexes:
        clears[saved.run_ids[index]] = clears.get(saved.run_ids[index], 0) + 1
    record = replace(saved, max_tries=ti.max_tries, clear_number=clear_number, ended=None, clears=clears)
    refuse_if_stopped(operator, action="record the clears of the failed items", dag_id=saved.dag_id)
    store.set(RECORD_KEY, record.to_json())
    operator.log.warning(
        "Redriving the failed items in place: their runs' failed tasks are cleared as the window has room",
        dag_id=saved.dag_id,
        items=indexes,
        run_ids=[saved.run_ids[index] for index in indexes],
    )
    return record, resolved


def start_cleared_item(
    *, operator: FanOutOperator, context: Context, dag_id: str, run_id: str, index: int
) -> ItemState:
    """
    Start an item whose failed run resumes in place: clear the run's failed tasks; return the item's state.

    The clear was recorded by :func:`plan_clears`. Nothing left to clear means an earlier clear took (a
    lost answer, or a person's): the run's state says what the item is. A run that has failed again with
    nothing to clear fails its item, and a retry redrives it.
    """
    cleared = clear_failed(operator=operator, access=_access_of(operator), dag_id=dag_id, run_id=run_id)
    if cleared:
        operator.log.info(
            "Cleared the failed tasks of the item's run", item=index, run_id=run_id, tasks=cleared
        )
        return ItemState.ACTIVE
    state = server_states(ti=triggering_ti(context), dag_id=dag_id, run_ids=[run_id])[run_id]
    item_state = (
        ItemState.ACTIVE
        if state in ACTIVE_STATES
        else ItemState.SUCCEEDED
        if state == "success"
        else ItemState.FAILED
    )
    operator.log.warning(
        "Nothing left to clear in the item's run",
        item=index,
        run_id=run_id,
        state=state,
        item_state=item_state.value,
    )
    return item_state


def _access_of(operator: Any) -> standard_ext.api.access.ApiAccess:
    if operator.rest_access is None:
        raise AirflowException(f"Task {operator.task_id!r}: {OPTION} was not signed in before the clear")
    access: standard_ext.api.access.ApiAccess = operator.rest_access
    return access
