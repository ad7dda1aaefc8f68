"""
The child run as ``TriggerDagRunOperator``'s ``ResumableJobMixin`` job: launch it, wait for it, its result.

The operator's job hooks (``submit_job``, ``poll_until_complete``, ``get_job_result``) and the
``send_trigger`` both modes share stay on the operator, so a subclass can override them; their work is
done here. What decides whether to launch at all (a durable retry's saved run) is
:mod:`standard_ext.operators.modes.durable`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.sdk.exceptions import AirflowException

from standard_ext.durable.decision import FINAL_STATES
from standard_ext.launch import run as launch
from standard_ext.launch.plan import Plan
from standard_ext.operators.modes import cancel as cancel_mode
from standard_ext.operators.modes import deferrable as deferrable_mode
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.wait import history
from standard_ext.wait.in_task import RESULTS_READY, wait_in_task
from standard_ext.wait.results import collect_results
from standard_ext.wait.runs import child_state
from standard_ext.wait.schedule import Schedule
from standard_ext.wait.stop_guard import STOPPED_BY_ON_KILL, refuse_if_stopped

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk.definitions.context import Context

    from standard_ext.durable.decision import Decision
    from standard_ext.operators.modes.protocols import SingleRunOperator


def launch_child(
    *, operator: SingleRunOperator, context: Context, plan: Plan, decision: Decision, reset: bool = False
) -> None:
    """
    Trigger the planned run (or attach to it), note it for ``cancel_on_kill`` and publish it.

    :param operator: the task's operator.
    :param context: the task context.
    :param plan: the run to trigger, its id claimed.
    :param decision: why it is triggered, for the log.
    :param reset: clear and re-run the run if it exists (it is this task's).
    """
    refuse_if_stopped(operator, action="trigger", dag_id=plan.dag_id, run_id=plan.run_id)
    # reset_dag_run on a fixed id clears and re-runs a run that may be someone else's: cancel_on_kill must
    # not count it as this task's. Asked only when it matters (it costs a request).
    someone_elses = (
        operator.canceller is not None
        and operator.when_exists.reset
        and not plan.ours
        and child_state(triggering_ti(context), plan.dag_id, plan.run_id) is not None
    )
    operator.triggered_at = time.time()
    fields = launch.decision_fields(plan=plan, decision=decision, try_number=context["ti"].try_number)
    triggered = launch.send(
        ti=triggering_ti(context),
        plan=plan,
        when_exists=operator.when_exists,
        reset=reset,
        log=operator.log,
        log_fields=fields,
    )
    cancel_mode.note_triggered(
        operator.canceller, dag_id=plan.dag_id, run_id=plan.run_id, triggered=triggered and not someone_elses
    )
    operator.publish_run(context, dag_id=plan.dag_id, run_id=plan.run_id)


def wait_for_child(*, operator: SingleRunOperator, context: Context, dag_id: str, run_id: str) -> None:
    """
    Wait for the child run: defer on it, or poll it from the task; record how it ended in ``child_end``.

    :param operator: the waiting task's operator.
    :param context: the task context.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :raises AirflowException: the run ended in a failed state, or an early-end rule failed it.
    :raises TaskDeferred: deferrable: the wait goes on in the triggerer.
    """
    cancel_mode.note_waiting(
        operator.canceller,
        dag_id=dag_id,
        run_id=run_id,
        may_have_attached=operator.attach_when_already_exists,
    )
    # Set by this try's trigger, and used up by the schedule: a run just triggered, not one reconnected to.
    fresh = operator.triggered_at is not None
    schedule = wait_schedule(operator=operator, dag_id=dag_id)
    if operator.deferrable:
        deferrable_mode.defer_on(operator=operator, dag_id=dag_id, run_id=run_id, schedule=schedule)
    operator.child_end = wait_in_task(
        ti=triggering_ti(context),
        dag_id=dag_id,
        run_id=run_id,
        allowed_states=operator.allowed_states,
        failed_states=operator.failed_states,
        schedule=schedule,
        log=operator.log,
        watch=operator.early_end_rules(),
        stop=operator.stop_note,
        fresh=fresh,
    )


def wait_schedule(*, operator: SingleRunOperator, dag_id: str) -> Schedule:
    """
    When to check the child run: counted from its trigger, dense where its last success says it ends.

    Only a run this try has just triggered gets the prediction: a run found by a durable retry
    started earlier, so the usual length says nothing about when it ends from now.

    :param operator: the waiting task's operator; its ``triggered_at`` is used up here.
    :param dag_id: the child Dag, whose last successful run gives the prediction.
    """
    triggered_at, operator.triggered_at = operator.triggered_at, None
    return Schedule(
        waiting_since=time.time() if triggered_at is None else triggered_at,
        poke_interval=operator.poke_interval,
        fast_poll_window=operator.fast_poll_window,
        expected_seconds=None if triggered_at is None else history.last_success_seconds(dag_id=dag_id),
    )


def child_result(*, operator: SingleRunOperator, context: Context, dag_id: str, run_id: str) -> Any:
    """
    Return the child's result (``result_task_ids``) once it ended in an allowed state; else ``None``.

    Called whichever path got there: the synchronous wait, the resume after a deferral, or a durable
    retry that found the run finished. Each of them records how the run ended in ``child_end``; the run
    is not read again, since it may have been re-queued since (a reset, a clear), and the parent must
    return what it waited for.

    :param operator: the task's operator.
    :param context: the task context.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :raises AirflowException: nothing recorded how the run ended, and it has not ended yet.
    """
    task_ids = operator.early_end_rules().result_task_ids
    if not task_ids:
        return None
    end = operator.child_end
    if end is None:
        # Not recorded: a subclass's own path got here. Only a run that is over can be judged now.
        end = child_state(triggering_ti(context), dag_id, run_id)
        if end not in FINAL_STATES:
            raise AirflowException(
                f"Dag {dag_id!r} run {run_id!r} is {end or 'gone'}, not ended: it has no result yet"
            )
    if end not in ("success", RESULTS_READY):
        # An allowed state other than success (allowed_states says so): its result tasks need not
        # have run, so there is no result to promise.
        operator.log.info("No result: the Dag run did not succeed", dag_id=dag_id, run_id=run_id, state=end)
        return None
    results = collect_results(dag_id=dag_id, run_id=run_id, task_ids=task_ids)
    operator.log.info("Returning the Dag run's result", dag_id=dag_id, run_id=run_id, tasks=task_ids)
    return results


def prepare_plan(stock_execute: Callable[[Context], Any], context: Context, *, user_run_id: bool) -> Plan:
    """
    Let the stock operator render and prepare the run, and return it as a :class:`~standard_ext.launch.plan.Plan`.

    :param stock_execute: the stock ``execute()``, which raises ``DagRunTriggerException`` on Airflow 3.
    :param context: the task context.
    :param user_run_id: whether the user gave the run id (read before the stock ``execute()`` overwrites it).
    """
    try:
        stock_execute(context)
    except DagRunTriggerException as prepared:
        return Plan.from_prepared(prepared, user_run_id=user_run_id)
    # pragma: no cover - the stock operator always raises on Airflow 3
    raise AirflowException("The stock TriggerDagRunOperator returned without preparing a run")


def stop(operator: SingleRunOperator) -> None:
    """
    What ``on_kill`` does: refuse any new trigger, note the stop for the durable record, cancel if asked.

    :param operator: the task's operator.
    """
    # First, before anything that may take time: the task goes on after the handler returns (the
    # SIGKILL is 5 s away), and it must not trigger or save a new run in those seconds.
    operator.stopped_by = STOPPED_BY_ON_KILL
    if operator.stop_note is not None:
        # Only the flag: this runs in the SIGTERM handler, where no request may be sent.
        operator.stop_note.requested.set()
    cancel_mode.on_kill(operator.canceller, log=operator.log)
