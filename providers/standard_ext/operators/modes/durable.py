"""The durable path of ``TriggerDagRunOperator``: read the saved run, decide, save ahead, trigger or carry on."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.api.client import ServerResponseError
from airflow.sdk.exceptions import AirflowRuntimeError

from standard_ext.durable import decision as durable_decision
from standard_ext.durable import telemetry
from standard_ext.durable.decision import ENDED_SUCCESS, Decision, SavedRun
from standard_ext.launch import run as launch
from standard_ext.operators.modes import resume as resume_mode
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.wait.runs import child_state, task_progress
from standard_ext.wait.stop_guard import refuse_if_stopped
from standard_ext.wait.stopped import StopNote

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk.definitions.context import Context
    from pydantic import JsonValue

    from standard_ext.launch.plan import Plan
    from standard_ext.operators.modes.protocols import SingleRunOperator


class MarkableRecord(Protocol):
    """A durable record :func:`write_success_mark` can mark: a dataclass with ``ended`` and ``to_json()``."""

    @property
    def ended(self) -> str | None:
        """How the try that last held it ended."""

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""


def execute_durable(*, operator: SingleRunOperator, context: Context, plan: Plan) -> Any:
    """
    Run one try of a durable task: carry on with the run an earlier try saved, or save one and trigger it.

    :param operator: the task's operator, whose parameters decide.
    :param context: the task context (``ti`` and ``task_state_store``).
    :param plan: the run the stock operator prepared for this try.
    """
    ti = context["ti"]
    store = context["task_state_store"]
    clear_number = clear_number_of(context)
    saved, rerun, saved_state, decision = _decide(
        operator=operator, context=context, plan=plan, clear_number=clear_number
    )
    log_fields = {"decision": decision.value, "try_number": ti.try_number, "state": saved_state}
    if saved is not None and rerun and decision is not Decision.CLEAR_FAILED:
        operator.log.info(
            "The task was cleared; triggering a new Dag run",
            dag_id=saved.dag_id,
            previous_run_id=saved.run_id,
            **log_fields,
        )
    record: SavedRun | None = saved
    if saved is not None and decision is Decision.CLEAR_FAILED:
        record, decision = resume_mode.clear_saved_run(
            operator=operator, context=context, saved=saved, clear_number=clear_number, log_fields=log_fields
        )
        # A run found under a fixed id with nothing to clear is not known to be ours: the stock rules.
        decision = Decision.TRIGGER if decision is Decision.RESUBMIT and saved.held else decision
        saved_state = operator.child_end or saved_state
    if (
        saved is not None
        and record is not None
        and decision in (Decision.RECONNECT, Decision.ALREADY_FINISHED)
    ):
        operator.child_end = saved_state if decision is Decision.ALREADY_FINISHED else None
        operator.stop_note = StopNote(ti=ti, store=store, key=operator.external_id_key, record=record)
        result = _resume(
            operator=operator, context=context, saved=record, decision=decision, log_fields=log_fields
        )
    else:
        plan, reset = _plan_for(
            operator=operator,
            context=context,
            plan=plan,
            saved=saved,
            decision=decision,
            log_fields=log_fields,
        )
        record = SavedRun(
            dag_id=plan.dag_id,
            run_id=plan.run_id,
            max_tries=ti.max_tries,
            clear_number=clear_number,
            try_number=ti.try_number,
        )
        # Write-ahead: once the trigger is sent the run may exist, so its id must already be saved.
        refuse_if_stopped(operator, action="save the run id", dag_id=plan.dag_id, run_id=plan.run_id)
        store.set(operator.external_id_key, record.to_json())
        operator.stop_note = StopNote(ti=ti, store=store, key=operator.external_id_key, record=record)
        result = _trigger_and_wait(
            operator=operator, context=context, plan=plan, decision=decision, reset=reset
        )
    mark_succeeded(operator=operator, store=store, record=record)
    return result


def _decide(
    *, operator: SingleRunOperator, context: Context, plan: Plan, clear_number: int | None
) -> tuple[SavedRun | None, bool, str | None, Decision]:
    """Read the saved record and the run it names; return it, whether this is a re-run, the run's state, the decision."""
    ti = context["ti"]
    store = context["task_state_store"]
    with telemetry.decision_span(
        operator=type(operator).__name__, external_id_key=operator.external_id_key
    ) as span:
        saved, why_ignored = durable_decision.parse_saved_run(
            store.get(operator.external_id_key), dag_id=plan.dag_id
        )
        if why_ignored:
            operator.log.warning(
                "Ignoring the stored child run record", reason=why_ignored, try_number=ti.try_number
            )
        rerun = saved is not None and durable_decision.is_rerun(
            saved, max_tries=ti.max_tries, clear_number=clear_number
        )
        # On a person's clear the saved run matters only to auto_clear_failed_tasks (a failed run resumes).
        saved_state = (
            child_state(triggering_ti(context), saved.dag_id, saved.run_id)
            if saved is not None and (not rerun or operator.auto_clear_failed_tasks)
            else None
        )
        if (
            saved is not None
            and saved_state in durable_decision.ACTIVE_STATES
            and _doomed(operator=operator, context=context, saved=saved)
        ):
            # fail_fast failed the earlier try on this run; reconnecting would only fail again, so
            # the retry treats the run as failed and triggers a fresh one, as after a failed run.
            saved_state = "failed"
        decision = durable_decision.decide(
            saved=saved,
            rerun=rerun,
            child_state=saved_state,
            wait_for_completion=operator.wait_for_completion,
            allowed_states=operator.allowed_states,
            auto_clear=operator.auto_clear_failed_tasks,
        )
        if decision is Decision.TRIGGER and (held := resume_mode.held_failed_run(operator, context, plan)):
            saved, saved_state, decision = held, "failed", Decision.CLEAR_FAILED
        telemetry.record_decision(
            span,
            decision=decision,
            saved=saved,
            child_state=saved_state,
            tags=_stats_tags(operator=operator, ti=ti),
        )
    return saved, rerun, saved_state, decision


def clear_number_of(context: Context) -> int | None:
    """The parent run's ``clear_number`` (every clear in the run raises it), or ``None`` if not known."""
    value = getattr(context.get("dag_run"), "clear_number", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mark_succeeded(*, operator: SingleRunOperator, store: Any, record: SavedRun | None) -> None:
    """
    Mark the record ``ended="success"``: no automatic retry follows a success, so a later try is a clear.

    Without the mark, a clear after ``retries`` was lowered can leave ``max_tries`` as it was (see
    :func:`standard_ext.durable.decision.is_rerun`). Failing to write it fails nothing: the task
    succeeded, and the mark only matters for that rare clear, which then reconnects to the finished run
    and succeeds again.

    :param operator: the succeeding task's operator.
    :param store: its ``task_state_store``.
    :param record: the record in force; ``None`` reads it from the store (a resume after a deferral).
    """
    key = operator.external_id_key

    def read() -> SavedRun | None:
        return durable_decision.parse_saved_run(store.get(key), dag_id=str(operator.trigger_dag_id))[0]

    write_success_mark(store=store, key=key, record=record, read=read, log=operator.log)


def write_success_mark(
    *, store: Any, key: str, record: MarkableRecord | None, read: Callable[[], Any], log: Any
) -> None:
    """
    Write ``record`` (or the one ``read`` returns) back under ``key`` marked ``ended="success"``.

    The write behind :func:`mark_succeeded`, for any durable record that is a dataclass with ``ended``
    and ``to_json()`` (the fan-out operator's record too). A failed write is logged, never raised.

    :param store: the task's ``task_state_store``.
    :param key: where the record is kept.
    :param record: the record in force; ``None`` reads it with ``read`` (a resume after a deferral).
    :param read: reads the stored record back (``None`` when there is none usable).
    :param log: the task's logger.
    """
    try:
        if record is None:
            record = read()
        if record is None or record.ended == ENDED_SUCCESS:
            return
        store.set(key, replace(record, ended=ENDED_SUCCESS).to_json())  # type: ignore[type-var]
    except (AirflowRuntimeError, ServerResponseError) as e:
        log.warning("Could not mark the saved Dag run record succeeded", key=key, error=str(e))


def _doomed(*, operator: SingleRunOperator, context: Context, saved: SavedRun) -> bool:
    """Whether ``fail_fast`` already fails the saved, still active run (a task of it has failed)."""
    if not operator.fail_fast:
        return False
    watch = replace(operator.early_end_rules(), result_task_ids=None)
    end = watch.early_end(task_progress(triggering_ti(context), saved.dag_id, saved.run_id))
    if end is None or end.failure is None:
        return False
    operator.log.warning(
        "The Dag run saved by an earlier try has a failed task (fail_fast); not reconnecting to it",
        dag_id=saved.dag_id,
        run_id=saved.run_id,
        task=end.failure[0],
        task_state=end.failure[1],
    )
    return True


def _resume(
    *,
    operator: SingleRunOperator,
    context: Context,
    saved: SavedRun,
    decision: Decision,
    log_fields: dict[str, Any],
) -> Any:
    """Carry on with the run an earlier try triggered: wait on it, or finish if it already did."""
    event = (
        "Reconnecting to the Dag run saved by an earlier try"
        if decision is Decision.RECONNECT
        else "The Dag run saved by an earlier try already finished; not triggering another"
    )
    operator.log.info(event, dag_id=saved.dag_id, run_id=saved.run_id, **log_fields)
    operator.publish_run(context, dag_id=saved.dag_id, run_id=saved.run_id)
    external_id: JsonValue = {"dag_id": saved.dag_id, "run_id": saved.run_id}
    if decision is Decision.RECONNECT:
        operator.poll_until_complete(external_id, context)
    return operator.get_job_result(external_id, context)


def _plan_for(
    *,
    operator: SingleRunOperator,
    context: Context,
    plan: Plan,
    saved: SavedRun | None,
    decision: Decision,
    log_fields: dict[str, Any],
) -> tuple[Plan, bool]:
    """Return the run to trigger in this try, and whether to reset it because it exists and is ours."""
    if saved is not None and decision is Decision.TRIGGER_SAVED:
        # Saved but never created: the earlier try died between the save and the trigger. The server
        # has just answered that no run holds the id, so a conflict on it now is our own.
        return replace(plan, run_id=saved.run_id, ours=True), False
    if saved is not None and decision is Decision.RESUBMIT:
        operator.log.warning(
            "The Dag run saved by an earlier try ended badly; triggering a fresh one",
            dag_id=saved.dag_id,
            run_id=saved.run_id,
            **log_fields,
        )
        if plan.run_id == saved.run_id and not operator.attach_when_already_exists:
            # A fixed trigger_run_id, or the id a fixed logical date gives: the run under it is the
            # one this task triggered, so run it again rather than fail on it. (An attached run is
            # shared with others: not this task's to reset; the retry attaches to it again.)
            return replace(plan, ours=True), True
    return launch.claim(ti=triggering_ti(context), plan=plan, when_exists=operator.when_exists), False


def _trigger_and_wait(
    *, operator: SingleRunOperator, context: Context, plan: Plan, decision: Decision, reset: bool = False
) -> Any:
    operator.send_trigger(context, plan, decision=decision, reset=reset)
    external_id: JsonValue = {"dag_id": plan.dag_id, "run_id": plan.run_id}
    operator.poll_until_complete(external_id, context)
    return operator.get_job_result(external_id, context)


def _stats_tags(*, operator: SingleRunOperator, ti: Any) -> dict[str, str]:
    # As the mixin tags its metrics: the operator, and the team in multi-team deployments.
    tags = {"operator": type(operator).__name__}
    if team_name := ti.stats_tags.get("team_name"):
        tags["team_name"] = team_name
    return tags
