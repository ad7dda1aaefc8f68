"""The deferrable wait of ``TriggerDagRunOperator``: defer on the child run by its id, resume when it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from standard_ext.progress import EarlyEnd
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.wait import is_done

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
    from standard_ext.polling import Schedule


def defer_on(*, operator: TriggerDagRunOperator, dag_id: str, run_id: str, schedule: Schedule) -> None:
    """
    Give the worker slot up and wait in the triggerer for the run, watched by its run id alone.

    :param operator: the task's operator (it defers, and its parameters set the wait).
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param schedule: when to check; serialized with the trigger, so a rebuilt trigger resumes it.
    """
    operator.log.info("Deferring until the Dag run ends", dag_id=dag_id, run_id=run_id)
    watch = operator.early_end_rules()
    operator.defer(
        trigger=DagRunTrigger(
            dag_id=dag_id,
            run_id=run_id,
            poke_interval=schedule.poke_interval,
            fast_poll_window=schedule.fast_poll_window,
            waiting_since=schedule.waiting_since,
            expected_seconds=schedule.expected_seconds,
            fail_fast=watch.fail_fast,
            critical_task_ids=watch.critical_task_ids,
            result_task_ids=watch.result_task_ids,
        ),
        # Not execute_complete: that stays the stock one, for tasks the stock operator deferred on its
        # DagStateTrigger before an upgrade to this one and that resume with the stock event.
        method_name="resume_after_child_run",
        # As in the synchronous mode, execution_timeout bounds the wait (Airflow 3 does not apply it
        # to a deferral by itself); a durable retry then reconnects to the run.
        timeout=operator.execution_timeout,
    )


def resume(*, operator: TriggerDagRunOperator, context: Context, event: dict[str, Any]) -> Any:
    """
    Resume after the trigger saw the child run end: succeed, or raise as the synchronous wait would.

    :param operator: the task's operator, whose states judge the event.
    :param context: the task context.
    :param event: the trigger's payload: ``dag_id``, ``run_id``, ``state`` (``None`` with an ``error``
        when the run does not exist); ``early`` when the trigger ended the wait before the run ended:
        ``"failure"`` (with the ``task`` and its ``task_state``) or ``"success"``.
    """
    dag_id, run_id, state = str(event["dag_id"]), str(event["run_id"]), event.get("state")
    if state is None:
        raise AirflowException(event.get("error") or f"Dag {dag_id!r} run {run_id!r} has no state")
    if event.get("early") == "failure":
        failure = (str(event.get("task")), str(event.get("task_state")))
        raise AirflowException(EarlyEnd(failure=failure).message(dag_id=dag_id, run_id=run_id))
    if event.get("early") == "success":
        operator.log.info(
            "The result tasks succeeded; not waiting for the rest of the Dag run",
            dag_id=dag_id,
            run_id=run_id,
        )
        return operator.get_job_result({"dag_id": dag_id, "run_id": run_id}, context)
    if not is_done(
        dag_id=dag_id,
        run_id=run_id,
        state=str(state),
        allowed_states=operator.allowed_states,
        failed_states=operator.failed_states,
    ):
        raise AirflowException(f"The trigger reported Dag {dag_id!r} run {run_id!r} in state {state!r}")
    operator.log.info("Dag run finished in an allowed state", dag_id=dag_id, run_id=run_id, state=state)
    return operator.get_job_result({"dag_id": dag_id, "run_id": run_id}, context)
