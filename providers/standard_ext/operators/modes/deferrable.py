"""The deferrable wait of ``TriggerDagRunOperator``: defer on the child run by its id; end in the triggerer on success, else resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import XCOM_RUN_ID
from airflow.sdk.exceptions import AirflowException

from standard_ext.launch.run import XCOM_DAG_ID
from standard_ext.operators.modes import cancel as cancel_mode
from standard_ext.operators.modes import timeout as timeout_mode
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.triggers.deadline import TIMED_OUT
from standard_ext.wait.in_task import RESULTS_READY, is_done
from standard_ext.wait.progress import EarlyEnd

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from standard_ext.operators.modes.protocols import SingleRunOperator
    from standard_ext.wait.schedule import Schedule


def defer_on(*, operator: SingleRunOperator, dag_id: str, run_id: str, schedule: Schedule) -> None:
    """
    Give the worker slot up and wait in the triggerer for the run, watched by its run id alone.

    :param operator: the task's operator (it defers, and its parameters set the wait).
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param schedule: when to check; serialized with the trigger, so a rebuilt trigger resumes it.
    """
    watch = operator.early_end_rules()
    resume_reason = why_resume_on_worker(operator)
    cancelling = cancel_mode.trigger_kwargs(operator.canceller, dag_id=dag_id, run_id=run_id)
    timeout_at, timeout = timeout_mode.deferral_timing(operator, cancel_on_kill=bool(cancelling))
    operator.log.info(
        "Deferring until the Dag run ends",
        dag_id=dag_id,
        run_id=run_id,
        # Where the task ends when the run succeeds, and if on a worker, why.
        finish_on_success="worker" if resume_reason else "triggerer",
        reason=resume_reason,
    )
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
            finish_on_success=resume_reason is None,
            push_result=operator.do_xcom_push,
            dag_result=operator.returns_dag_result,
            # Only for a run this task triggered: the trigger's on_kill cancels it then, and so does
            # the resume after the trigger's own deadline (execution_timeout).
            timeout_at=timeout_at,
            **cancelling,
        ),
        # Not execute_complete: that stays the stock one, for tasks the stock operator deferred on its
        # DagStateTrigger before an upgrade to this one and that resume with the stock event.
        method_name="resume_after_child_run",
        # As in the synchronous mode, execution_timeout bounds the wait (Airflow 3 does not apply it
        # to a deferral by itself); a durable retry then reconnects to the run. With cancel_on_kill the
        # trigger's own deadline comes first, and this is a backstop.
        timeout=timeout,
    )


def why_resume_on_worker(operator: SingleRunOperator) -> str | None:
    """
    Say why a success must resume the task on a worker, or ``None`` when the triggerer may end it.

    The triggerer ends a task by setting its state and pushing its XComs; whatever else a worker does
    when a task returns would not happen: the ``ti_successes`` and ``operator_successes`` metrics (the
    task runner's ``_handle_current_task_success``), ``task.duration`` (``finalize``), the task's span
    (``_make_task_span``), the audit log row and ``[state_store] clear_on_success`` (the execution API's
    ``ti_update_state``); and its success callbacks go to the Dag processor, which drops them
    (``_execute_task_callbacks`` runs failure callbacks only). So it may only when asked
    (``end_from_trigger=True``) and nothing of that applies here.

    :param operator: the deferring task's operator.
    """
    if not operator.end_from_trigger:
        return "end_from_trigger=False"
    if "success" not in operator.allowed_states or "success" in operator.failed_states:
        return "success is not an allowed state"
    return _what_only_a_worker_does(operator) or _what_the_code_around_it_does(operator)


def _what_only_a_worker_does(operator: SingleRunOperator) -> str | None:
    """Name what the task asks for that happens only when a worker ends it, if anything."""
    from airflow.sdk.configuration import conf

    if operator.on_success_callback:
        # Airflow sends a trigger-ended task's success callbacks to the Dag processor, whose
        # _execute_task_callbacks runs failure callbacks only: the callback would never run.
        return "an on_success_callback runs only when a worker ends the task"
    if conf.getboolean("state_store", "clear_on_success", fallback=False):
        # The execution API clears the store when a worker reports success (ti_update_state); the
        # triggerer's success (handle_event_submit) does not.
        return "[state_store] clear_on_success runs only when a worker ends the task"
    if operator.outlets:
        return "the task has outlets, whose asset events a worker emits"
    # The post_execute= argument has no public getter; BaseOperator.post_execute calls this attribute.
    if getattr(operator, "_post_execute_hook", None) is not None:
        return "a post_execute hook runs on the worker"
    if operator.multiple_outputs:
        return "multiple_outputs: a worker splits the result into XComs"
    return None


def _what_the_code_around_it_does(operator: SingleRunOperator) -> str | None:
    """Name what around the task (its Dag, listeners, a subclass) needs a worker to end it, if anything."""
    from airflow.sdk.listener import get_listener_manager

    # A task running in Airflow always has its Dag; a bare operator (unit tests) has none to ask.
    if operator.has_dag() and next(operator.iter_mapped_dependants(), None) is not None:
        return "a downstream task maps over the result, which a worker must record"
    if get_listener_manager().has_listeners:
        return "listeners (OpenLineage, say) see a task end only on a worker"
    ours = _operator_class(operator)
    for method in ("resume_after_child_run", "get_job_result", "post_execute"):
        if getattr(type(operator), method) is not getattr(ours, method):
            return f"{type(operator).__name__} overrides {method}()"
    return None


def _operator_class(operator: SingleRunOperator) -> type:
    """
    Our ``TriggerDagRunOperator`` among the classes of ``operator``: the first to define the resume.

    Found in the class's own ancestry rather than imported: the operator's module imports this one.
    """
    defining = (cls for cls in reversed(type(operator).__mro__) if "resume_after_child_run" in vars(cls))
    return next(defining, type(operator))


def resume(*, operator: SingleRunOperator, context: Context, event: dict[str, Any] | str) -> Any:
    """
    Resume after the trigger saw the child run end: succeed, or raise as the synchronous wait would.

    :param operator: the task's operator, whose states judge the event.
    :param context: the task context.
    :param event: the trigger's payload: ``dag_id``, ``run_id``, ``state`` (``None`` with an ``error``
        when the run does not exist); ``early`` when the trigger ended the wait before the run ended:
        ``"failure"`` (with the ``task`` and its ``task_state``) or ``"success"``.
    """
    if isinstance(event, str):
        return _resume_after_task_end(operator=operator, context=context, event=event)
    dag_id, run_id, state = str(event["dag_id"]), str(event["run_id"]), event.get("state")
    if event.get(TIMED_OUT):
        timeout_mode.timed_out_single(operator, context, dag_id=dag_id, run_id=run_id)
    if state is None:
        raise AirflowException(event.get("error") or f"Dag {dag_id!r} run {run_id!r} has no state")
    if event.get("early") == "failure":
        failure = (str(event.get("task")), str(event.get("task_state")))
        raise AirflowException(EarlyEnd(failure=failure).message(dag_id=dag_id, run_id=run_id))
    if event.get("early") == "success":
        operator.child_end = RESULTS_READY
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
    operator.child_end = str(state)
    return operator.get_job_result({"dag_id": dag_id, "run_id": run_id}, context)


def _resume_after_task_end(*, operator: SingleRunOperator, context: Context, event: str) -> Any:
    """
    Finish a task whose trigger ended it (``TaskSuccessEvent``) but which resumed anyway: ``dag.test()``.

    ``dag.test()`` runs the trigger in line and resumes the task with the event's payload, the state
    ``"success"``, rather than ending it; the task then returns what the triggerer would have pushed.
    """
    if event != "success":
        raise AirflowException(f"Task {operator.task_id!r} resumed with an unexpected event {event!r}")
    ti = context["ti"]
    dag_id = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_DAG_ID)
    run_id = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_RUN_ID)
    if not dag_id or not run_id:
        raise AirflowException(f"Task {operator.task_id!r} resumed without the Dag run it triggered")
    operator.log.info("The trigger saw the Dag run succeed", dag_id=dag_id, run_id=run_id)
    # The trigger ends a task only for the run's success or its result tasks' (finish.succeeded), and
    # both return the result.
    operator.child_end = RESULTS_READY
    return operator.get_job_result({"dag_id": str(dag_id), "run_id": str(run_id)}, context)
