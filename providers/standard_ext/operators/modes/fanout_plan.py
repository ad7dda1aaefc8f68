"""Planning a fan-out's runs: fresh ids saved before any trigger, or the saved ones carried on (and redriven)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.utils import openlineage

from standard_ext.durable import decision as durable_decision
from standard_ext.fanout.dates import item_dates
from standard_ext.fanout.poll import server_states
from standard_ext.fanout.record import (
    RECORD_KEY,
    FanOutRecord,
    check_distinct,
    confs_digest,
    new_run_ids,
    parse_record,
)
from standard_ext.fanout.state import FanOut, ItemAction, ItemState, item_action, state_after
from standard_ext.launch import run as launch
from standard_ext.launch.plan import Plan
from standard_ext.launch.run import WhenExists
from standard_ext.operators.modes import fanout_cancel, fanout_resume
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.operators.modes.durable import clear_number_of
from standard_ext.wait.stop_guard import refuse_if_stopped
from task_sdk_ext.accessor import generate_manual_run_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk.definitions.context import Context

    from standard_ext.operators.modes.protocols import FanOutOperator


def plan_fan_out(
    *, operator: FanOutOperator, context: Context, dag_id: str, confs: Sequence[dict[str, Any] | None]
) -> FanOut:
    """
    Return this try's fan-out: every item planned (and saved first, when durable), or carried on from a save.

    A durable task saves all run ids in one record before it triggers anything. A retry reads it back
    and asks the server about every saved run (batched): an active run is reconnected to, a succeeded one
    kept, a failed one redriven under a new id (saved before its trigger), one never created triggered
    under its saved id. A person's clear (:func:`standard_ext.durable.decision.is_rerun`) plans every item
    anew.

    :param operator: the task's operator; its ``record`` is set to the record in force.
    :param context: the task context.
    :param dag_id: the child Dag, rendered.
    :param confs: the rendered, checked confs, one per item.
    """
    generate = generate_manual_run_id
    if not operator.durable:
        run_ids = new_run_ids(count=len(confs), taken=(), generate=generate)
        check_distinct(run_ids, task_id=operator.task_id)
        return FanOut.planned(run_ids)
    ti, store = context["ti"], context["task_state_store"]
    clear_number = clear_number_of(context)
    digest = confs_digest(confs)
    saved, why_ignored = parse_record(store.get(RECORD_KEY), dag_id=dag_id, digest=digest)
    if why_ignored:
        operator.log.warning(
            "Ignoring the stored fan-out record", reason=why_ignored, try_number=ti.try_number
        )
    rerun = saved is not None and durable_decision.is_rerun(
        saved, max_tries=ti.max_tries, clear_number=clear_number
    )
    if saved is not None and rerun and operator.auto_clear_failed_tasks:
        # A person's clear with auto_clear_failed_tasks: the failed items resume in place, the rest re-run.
        return _carry_on(
            operator=operator, context=context, saved=saved, clear_number=clear_number, rerun=True
        )
    if saved is None or rerun:
        if saved is not None:
            operator.log.info(
                "The task was cleared; triggering every item anew", dag_id=dag_id, items=len(confs)
            )
        run_ids = new_run_ids(count=len(confs), taken=saved.run_ids if saved else (), generate=generate)
        check_distinct(run_ids, task_id=operator.task_id)
        record = FanOutRecord(
            dag_id=dag_id,
            run_ids=tuple(run_ids),
            confs_digest=digest,
            max_tries=ti.max_tries,
            clear_number=clear_number,
            try_numbers=(ti.try_number,) * len(run_ids),
        )
        # Write-ahead: once the first trigger is sent a run may exist, so every id must already be saved.
        refuse_if_stopped(operator, action="save the fan-out's run ids", dag_id=dag_id)
        store.set(RECORD_KEY, record.to_json())
        operator.record = record
        operator.log.info(
            "Saved the fan-out's run ids", dag_id=dag_id, items=len(run_ids), try_number=ti.try_number
        )
        return FanOut.planned(run_ids)
    return _carry_on(operator=operator, context=context, saved=saved, clear_number=clear_number)


def _carry_on(
    *,
    operator: FanOutOperator,
    context: Context,
    saved: FanOutRecord,
    clear_number: int | None,
    rerun: bool = False,
) -> FanOut:
    """
    Carry on with the fan-out an earlier try saved: reconnect, keep, trigger saved ids, redrive failures.

    With ``rerun`` (a person's clear, with ``auto_clear_failed_tasks``), every item whose run did not
    fail is re-run under a new id, and the failed ones are cleared in place.
    """
    ti, store = context["ti"], context["task_state_store"]
    states = server_states(ti=triggering_ti(context), dag_id=saved.dag_id, run_ids=saved.run_ids)
    auto_clear = operator.auto_clear_failed_tasks
    actions = [
        # Without the wait the task's job was to trigger: an existing run is done, whatever it did since.
        ItemAction.KEEP
        if not operator.wait_for_completion and states[run_id] is not None
        else item_action(states[run_id], auto_clear=auto_clear)
        for run_id in saved.run_ids
    ]
    if rerun:
        actions = [ItemAction.CLEAR if a is ItemAction.CLEAR else ItemAction.REDRIVE for a in actions]
    record = saved
    if ItemAction.CLEAR in actions:
        record, actions = fanout_resume.plan_clears(
            operator=operator, context=context, saved=saved, actions=actions, clear_number=clear_number
        )
    redriven = [index for index, action in enumerate(actions) if action is ItemAction.REDRIVE]
    if redriven:
        run_ids = list(saved.run_ids)
        fresh = new_run_ids(count=len(redriven), taken=saved.run_ids, generate=generate_manual_run_id)
        for index, run_id in zip(redriven, fresh, strict=True):
            run_ids[index] = run_id
        check_distinct(run_ids, task_id=operator.task_id)
        record = replace(
            record,
            run_ids=tuple(run_ids),
            max_tries=ti.max_tries,
            clear_number=clear_number,
            ended=None,
            clears={run_id: n for run_id, n in record.clears.items() if run_id in run_ids},
            try_numbers=_redriven_tries(record, redriven, try_number=ti.try_number),
        )
        # Write-ahead again: the redriven items' new ids are saved before any of them is triggered.
        refuse_if_stopped(operator, action="save the redriven items' run ids", dag_id=saved.dag_id)
        store.set(RECORD_KEY, record.to_json())
        operator.log.warning(
            "The task was cleared; re-running the items whose runs did not fail, under new run ids"
            if rerun
            else "Redriving the items whose Dag runs failed, under new run ids",
            dag_id=saved.dag_id,
            items=redriven,
            failed_run_ids=[saved.run_ids[index] for index in redriven],
        )
    operator.record = record
    operator.log.info(
        "Carrying on with the fan-out saved by an earlier try",
        dag_id=saved.dag_id,
        try_number=ti.try_number,
        **{action.value: actions.count(action) for action in ItemAction},
    )
    return FanOut(
        run_ids=record.run_ids,
        states=tuple(state_after(action) for action in actions),
        clearing=frozenset(index for index, action in enumerate(actions) if action is ItemAction.CLEAR),
    )


def _redriven_tries(record: FanOutRecord, redriven: Sequence[int], *, try_number: int) -> tuple[int, ...]:
    """The record's try numbers with the redriven items' set to this try's (none kept: none known)."""
    if not record.try_numbers:
        return ()
    tries = list(record.try_numbers)
    for index in redriven:
        tries[index] = try_number
    return tuple(tries)


def start_items(
    *,
    operator: FanOutOperator,
    context: Context,
    fan_out: FanOut,
    confs: Sequence[dict[str, Any] | None],
    indexes: Sequence[int],
) -> FanOut:
    """
    Trigger the items at ``indexes`` under their planned run ids; return the fan-out, those started active.

    Every planned id carries a random suffix (or was saved by this task), so no run of anyone else can
    hold it: "already exists" is this task's own request whose answer was lost, and is carried on with.
    Once ``on_kill`` ran in this process, no further item starts (:func:`~standard_ext.wait.stop_guard.refuse_if_stopped`).
    """
    started: list[int] = []
    cleared: dict[int, ItemState] = {}
    dates = item_dates(operator.checked_logical_date(), indexes=list(indexes))
    for index in indexes:
        refuse_if_stopped(
            operator,
            action="start the fan-out's items left",
            dag_id=operator.trigger_dag_id,
            not_started=fan_out.count(ItemState.PENDING) - len(started) - len(cleared),
        )
        if index in fan_out.clearing:
            # A failed run resumed in place: its clear, not a trigger, starts the item.
            cleared[index] = fanout_resume.start_cleared_item(
                operator=operator,
                context=context,
                dag_id=operator.trigger_dag_id,
                run_id=fan_out.run_ids[index],
                index=index,
            )
            continue
        conf = confs[index]
        if operator.openlineage_inject_parent_info:
            # The helper the stock operator calls: the parent's OpenLineage run in each conf.
            conf = openlineage.safe_inject_openlineage_properties_into_dagrun_conf(
                dr_conf=conf, ti=context["ti"]
            )
        plan = Plan(
            dag_id=operator.trigger_dag_id,
            run_id=fan_out.run_ids[index],
            conf=conf,
            logical_date=dates[index],
            run_after=None,
            note=None,
            ours=True,
        )
        triggered = launch.send(
            ti=triggering_ti(context),
            plan=plan,
            when_exists=WhenExists(),
            reset=False,
            log=operator.log,
            log_fields={
                "dag_id": plan.dag_id,
                "run_id": plan.run_id,
                "item": index,
                "try_number": context["ti"].try_number,
            },
        )
        started.append(index)
        fanout_cancel.note_triggered(
            operator.canceller, run_id=plan.run_id, triggered=triggered, log=operator.log
        )
    return fan_out.with_states({**dict.fromkeys(started, ItemState.ACTIVE), **cleared})
