"""``TriggerDagRunOperator`` that triggers and waits on its own, with a crash-safe ``durable`` mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk import ResumableJobMixin
from airflow.sdk.exceptions import AirflowException

from standard_ext.durable import decision as durable_decision
from standard_ext.durable.decision import Decision
from standard_ext.launch import run as launch
from standard_ext.launch.run import XCOM_DAG_ID, WhenExists
from standard_ext.operators.modes import cancel as cancel_mode
from standard_ext.operators.modes import child_run_job, parameter_checks
from standard_ext.operators.modes import deferrable as deferrable_mode
from standard_ext.operators.modes import resume as resume_mode
from standard_ext.operators.modes.context import ids_of, require_context, triggering_ti
from standard_ext.operators.modes.durable import execute_durable, mark_succeeded
from standard_ext.wait.runs import child_state

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk.definitions.context import Context
    from pydantic import JsonValue

    from standard_ext.api.access import ApiAccess
    from standard_ext.launch.plan import Plan
    from standard_ext.wait.progress import Watch
    from standard_ext.wait.stopped import StopNote

__all__ = ["XCOM_DAG_ID", "TriggerDagRunOperator"]


class TriggerDagRunOperator(ResumableJobMixin, StockTriggerDagRunOperator):
    """
    Trigger a Dag run and, if asked, wait for it, from inside the task; with ``durable=True``, crash-safely.

    **Purpose:** a drop-in for the standard provider's ``TriggerDagRunOperator`` (every parameter, the
    "Triggered DAG" link and XComs are the same) whose trigger-and-wait contract lives in one place, the
    operator, so it can survive a worker crash: with ``durable=True`` a retried task reconnects to the
    child run its earlier try triggered instead of triggering a second one.

    **How it works:** the stock operator prepares the run (run id, conf with OpenLineage parent info,
    dates, paused check); this one then triggers it with ``ti.trigger_dag_run()`` and polls it with
    ``ti.get_dagrun_state()`` instead of handing both to the task runner. When durable, the planned run
    id is saved to ``task_state_store`` *before* the trigger is sent, so no crash leaves a child run the
    retry cannot find. On a later try the saved run decides (see :mod:`standard_ext.durable.decision`): still
    active, reconnect; ended in an allowed state, succeed without triggering; ended otherwise, trigger a
    fresh run (or, with ``auto_clear_failed_tasks``, resume a failed one); never created, trigger that
    same id. A conflict on a run id this task planned is its own lost answer. A person's clear of the
    task triggers a new child run.

    With ``deferrable=True`` the wait happens in the triggerer instead
    (:class:`~standard_ext.triggers.dag_run.DagRunTrigger`, one shared poll per child Dag), so waiting parents
    hold no worker slot; durable or not, the trigger and the write-ahead are the same as in the synchronous
    mode, and a retry after a crash before the deferral defers on the saved run.

    With ``result_task_ids`` the child's result (its tasks' ``return_value`` XComs) becomes this task's
    return value; either wait logs the child's progress when it changes and can end early
    (``fail_fast``, or once the result tasks succeeded); ``attach_when_already_exists`` waits on a run
    that already holds the planned id instead of failing.

    **What it does not do:** cancel the child run when the parent is stopped, unless ``cancel_on_kill``
    asks it to; even then, a run it attached to, or one a durable retry would reconnect to, goes on.

    All stock parameters apply; these are added:

    :param durable: save the child run in ``task_state_store`` before triggering it, and reconnect to it
        on retry instead of triggering another (default ``True``, as ``ResumableJobMixin``'s). With
        ``False`` every try triggers a new child run, as the stock operator's retries do.
    :param fast_poll_window: for this many seconds after triggering or reconnecting, the child's state
        is checked every second; after it the wait doubles up to ``poke_interval``. Default 5.
    :param result_task_ids: tasks of the child Dag whose ``return_value`` XComs are the child's result
        (templated). When the child succeeds, the task returns ``{task_id: value}`` (a mapped task gives
        a list ordered by map index, as the ``/wait`` endpoint does), so it becomes this task's own
        ``return_value``. Needs ``wait_for_completion=True``. The wait also ends as soon as every
        instance of these tasks has succeeded, without waiting for the rest of the child run.
    :param fail_fast: fail as soon as a task of the child run is ``failed`` or ``upstream_failed``,
        without waiting for the rest of the run (its teardown, say). Default ``False``.
    :param critical_task_ids: with ``fail_fast``, only a failure of these child tasks counts (templated).
    :param attach_when_already_exists: when a run already holds the planned run id (a
        ``trigger_run_id``, say a request id, or the id a fixed ``logical_date`` gives), wait for that
        run and return its result as if this task had triggered it, instead of failing. A fourth answer
        beside the default failure, ``skip_when_already_exists`` and ``reset_dag_run``; it cannot be
        combined with those two. Default ``False``.
    :param end_from_trigger: with ``deferrable=True``, when the child run succeeds the triggerer ends
        the task (and pushes its result) instead of a worker resuming it (Airflow's name and default, as
        its ``DateTimeSensor``'s). It skips what a worker does on success, so a worker still resumes the
        task where that would be noticed (callbacks, ``clear_on_success``, listeners, outlets, a mapped
        downstream...; the list: :func:`standard_ext.operators.modes.deferrable.why_resume_on_worker`).
        Default ``False``.
    :param cancel_on_kill: when no try of the task will wait on the child run again (marked failed or
        success, cleared, its Dag run timed out, ``execution_timeout`` on the last try), set the child
        run it triggered ``failed`` through the public REST API (Airflow's name; the rules:
        :func:`standard_ext.cancel.decision.should_cancel`). A run a durable retry reconnects to, attached
        to or reset goes on. The connection is read and signed in with before anything is triggered.
        Default ``False``.
    :param auto_clear_failed_tasks: when a try (a retry, or a person's clear of this task) finds the child
        run it saved ``failed``, clear that run's failed and ``upstream_failed`` tasks through the public
        REST API and wait on the same run again, instead of triggering a new one (the name of the
        upstream proposal, apache/airflow#53402). The clear is recorded before it is sent. Needs
        ``durable`` and ``wait_for_completion``, and signs in as ``cancel_on_kill`` does. Default ``False``.
    :param airflow_api_conn_id: with ``cancel_on_kill`` or ``auto_clear_failed_tasks``, the Airflow connection (conn_type ``http``) to the
        API server: its host is the base URL (``https://airflow-api:8080``), its login and password a user
        who may read the parent's task instances and the child's Dag runs and edit the latter; its
        extras ``verify``, ``cert`` and ``proxies`` as ``HttpHook`` reads them. With ``deferrable=True``
        the triggerer reads it too. Default ``"airflow_api_default"``.

    Example::

        from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

        TriggerDagRunOperator(
            task_id="run_child",
            trigger_dag_id="child",
            conf={"rows": 100},
            wait_for_completion=True,
            retries=3,
        )
    """

    # Renaming this on a deployed operator breaks in-flight retries: the old key is already stored.
    external_id_key = "triggered_dag_run"
    template_fields: Sequence[str] = (
        *StockTriggerDagRunOperator.template_fields,
        "result_task_ids",
        "critical_task_ids",
    )

    def __init__(
        self,
        *,
        durable: bool = True,
        fast_poll_window: float = 5.0,
        result_task_ids: Sequence[str] | str | None = None,
        fail_fast: bool = False,
        critical_task_ids: Sequence[str] | str | None = None,
        attach_when_already_exists: bool = False,
        end_from_trigger: bool = False,
        cancel_on_kill: bool = False,
        auto_clear_failed_tasks: bool = False,
        airflow_api_conn_id: str = "airflow_api_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(durable=durable, **kwargs)
        #: Whether a ``trigger_run_id`` was given (checked once rendered: ``None`` asks for a generated id).
        self.trigger_run_id_given = kwargs.get("trigger_run_id") is not None
        parameter_checks.check_arguments(
            self,
            result_task_ids=result_task_ids,
            fail_fast=fail_fast,
            critical_task_ids=critical_task_ids,
            attach_when_already_exists=attach_when_already_exists,
            fast_poll_window=fast_poll_window,
            cancel_on_kill=cancel_on_kill,
            airflow_api_conn_id=airflow_api_conn_id,
            auto_clear_failed_tasks=auto_clear_failed_tasks,
            durable=durable,
        )
        self.cancel_on_kill = cancel_on_kill
        self.auto_clear_failed_tasks = auto_clear_failed_tasks
        #: With ``auto_clear_failed_tasks``, the signed-in access a clear is sent with.
        self.rest_access: ApiAccess | None = None
        self.airflow_api_conn_id = airflow_api_conn_id
        #: With ``cancel_on_kill``, what ``on_kill`` cancels with (the token included): gathered by
        #: ``execute()``.
        self.canceller: cancel_mode.Canceller | None = None
        self.attach_when_already_exists = attach_when_already_exists
        self.end_from_trigger = end_from_trigger
        self.result_task_ids = result_task_ids
        self.fail_fast = fail_fast
        self.critical_task_ids = critical_task_ids
        self.fast_poll_window = fast_poll_window
        self._plan: Plan | None = None
        #: Set by the durable mode once it holds a record; ``on_kill`` notes a stop with it.
        self.stop_note: StopNote | None = None
        #: Set by ``on_kill``: from then on this process triggers nothing and saves no run id.
        self.stopped_by: str | None = None
        #: How the child run ended, as the wait (or the durable decision) saw it: a final state, or
        #: ``RESULTS_READY`` when the result tasks succeeded first. None until then.
        self.child_end: str | None = None
        #: When this try triggered the run it is about to wait on; None for a run found by a retry.
        self.triggered_at: float | None = None

    @property
    def when_exists(self) -> WhenExists:
        """The answer when a run this task did not trigger holds the planned id."""
        return WhenExists(
            attach=self.attach_when_already_exists,
            skip=self.skip_when_already_exists,
            reset=self.reset_dag_run,
        )

    def early_end_rules(self) -> Watch:
        """The early-end rules of this task, its templated task ids rendered and checked."""
        return parameter_checks.early_end_rules(
            task_id=self.task_id,
            fail_fast=self.fail_fast,
            result_task_ids=self.result_task_ids,
            critical_task_ids=self.critical_task_ids,
        )

    def execute(self, context: Context) -> Any:
        """Trigger the child run (or find the one an earlier try saved) and wait for it if asked."""
        require_context(context, task_id=self.task_id, durable=self.durable)
        parameter_checks.check_rendered_run_id(
            self.trigger_run_id, task_id=self.task_id, given=self.trigger_run_id_given
        )
        # First: a missing connection or refused credentials must fail the task before a child exists.
        self.canceller = cancel_mode.prepare(operator=self, context=context)
        self.rest_access = resume_mode.prepare_single(operator=self, context=context)
        # Read before the stock execute(), which overwrites trigger_run_id with the id it generates.
        user_run_id = bool(self.trigger_run_id)
        self._plan = child_run_job.prepare_plan(super().execute, context, user_run_id=user_run_id)
        self._plan.check(task_id=self.task_id)
        # Rendered by now (they are templated); checked before anything is sent.
        self.early_end_rules()
        with cancel_mode.watching_the_try(self.canceller):
            if self.durable:
                return execute_durable(operator=self, context=context, plan=self._plan)
            return self.execute_resumable(context)

    def on_kill(self) -> None:
        """
        Note in the durable record that the server stopped this try (a :class:`~standard_ext.wait.stopped.StopNote`).

        After a person's clear the next try triggers a new child run. The child run goes on, unless
        ``cancel_on_kill`` decides otherwise (:class:`~standard_ext.operators.modes.cancel.Canceller`).
        """
        child_run_job.stop(self)

    # -- ResumableJobMixin ----------------------------------------------------------------------------

    def submit_job(self, context: Context) -> JsonValue:
        """Trigger the planned run; return ``{"dag_id", "run_id"}``."""
        if self._plan is None:
            raise AirflowException("submit_job() was called before execute() planned a run")
        plan = launch.claim(ti=triggering_ti(context), plan=self._plan, when_exists=self.when_exists)
        self.send_trigger(context, plan, decision=Decision.TRIGGER)
        return {"dag_id": plan.dag_id, "run_id": plan.run_id}

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Return the child run's state, or ``"not_found"`` when the server has no such run."""
        dag_id, run_id = ids_of(external_id)
        return child_state(triggering_ti(context), dag_id, run_id) or "not_found"

    def is_job_active(self, status: str) -> bool:
        """Whether the child run is queued or running."""
        return status in durable_decision.ACTIVE_STATES

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the child run ended in one of ``allowed_states``."""
        return status in self.allowed_states

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait for the child run unless ``wait_for_completion`` is off; raise if it ends badly."""
        if not self.wait_for_completion:
            return
        dag_id, run_id = ids_of(external_id)
        child_run_job.wait_for_child(operator=self, context=context, dag_id=dag_id, run_id=run_id)

    # -- deferrable mode ------------------------------------------------------------------------------

    def resume_after_child_run(self, context: Context, event: dict[str, Any] | str) -> Any:
        """
        Resume after the trigger fired: succeed (returning the result), or raise as the synchronous wait would.

        Not ``execute_complete``: that stays the stock one, for tasks the stock operator deferred on its
        ``DagStateTrigger`` before an upgrade to this one. See
        :func:`standard_ext.operators.modes.deferrable.resume` for the event.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        result = deferrable_mode.resume(operator=self, context=context, event=event)
        if self.durable and "task_state_store" in context:
            mark_succeeded(operator=self, store=context["task_state_store"], record=None)
        return result

    def get_job_result(self, external_id: JsonValue, context: Context) -> Any:
        """Return the child's result (``result_task_ids``), or nothing, as the stock operator does, once it ended well."""
        dag_id, run_id = ids_of(external_id)
        return child_run_job.child_result(operator=self, context=context, dag_id=dag_id, run_id=run_id)

    # -- shared by both modes -------------------------------------------------------------------------

    def send_trigger(self, context: Context, plan: Plan, *, decision: Decision, reset: bool = False) -> None:
        """Trigger the planned run (or attach to it) and publish it for the link and downstream tasks."""
        child_run_job.launch_child(operator=self, context=context, plan=plan, decision=decision, reset=reset)

    def publish_run(self, context: Context, *, dag_id: str, run_id: str) -> None:
        """Push the XComs the "Triggered DAG" link and downstream tasks read, for this child run."""
        self.trigger_run_id = run_id  # as the stock operator does, for listeners
        launch.publish(ti=context["ti"], dag_id=dag_id, run_id=run_id)
