"""``auto_clear_failed_tasks`` in the fan-out: its failed items resume in place, as the window has room."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from standard_ext.durable.decision import ACTIVE_STATES
from standard_ext.fanout.poll import server_states
from standard_ext.fanout.record import RECORD_KEY
from standard_ext.fanout.state import ItemAction, ItemState
from standard_ext.operators.modes import resume
from standard_ext.operators.modes.cancel_sign_in import call_riding_out_blips
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.resume.clear import failed_tasks
from standard_ext.wait.stop_guard import refuse_if_stopped

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from standard_ext.fanout.record import FanOutRecord
    from standard_ext.operators.modes.protocols import FanOutOperator


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
    access = resume.access_of(operator)
    resolved = list(actions)
    for index, action in enumerate(actions):
        if action is not ItemAction.CLEAR:
            continue
        run_id = saved.run_ids[index]
        found = call_riding_out_blips(
            functools.partial(failed_tasks, access, dag_id=saved.dag_id, run_id=run_id),
            access=access,
            prefix=f"Task {operator.task_id!r}: {resume.OPTION}",
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
    cleared = resume.clear_failed(
        operator=operator, access=resume.access_of(operator), dag_id=dag_id, run_id=run_id
    )
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
