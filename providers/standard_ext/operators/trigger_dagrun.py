"""``TriggerDagRunOperator`` that triggers and waits on its own, with a crash-safe ``durable`` mode."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk import ResumableJobMixin
from airflow.sdk.exceptions import AirflowException

from standard_ext import durable, telemetry, triggering
from standard_ext.durable import Decision, SavedRun
from standard_ext.options import check_schedule, refuse_contradictions
from standard_ext.plan import Plan
from standard_ext.progress import EarlyEnd, Watch
from standard_ext.results import check_task_ids, collect_results
from standard_ext.runs import child_state, task_progress
from standard_ext.triggering import XCOM_DAG_ID, WhenExists
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.wait import is_done, wait_for_final_state

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk.definitions.context import Context
    from pydantic import JsonValue

    from task_sdk_ext.protocols import TriggeringTaskInstance

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
    retry cannot find. On a later try the saved run decides (see :mod:`standard_ext.durable`): still
    active, reconnect; ended in an allowed state, succeed without triggering; ended otherwise, trigger a
    fresh run; never created, trigger that same id. A conflict on a run id this task planned means the
    first answer was lost after the run was created: the run is ours and the task carries on with it.
    A try that comes from a person clearing the task (Airflow raises ``max_tries`` then) is a re-run and
    triggers a new child run.

    With ``deferrable=True`` the wait happens in the triggerer instead (:class:`DagRunTrigger`, one
    shared poll per child Dag), so waiting parents hold no worker slot; durable or not, the trigger and
    the write-ahead are the same as in the synchronous mode, and a retry after a crash before the
    deferral defers on the saved run.

    With ``result_task_ids`` the child's result (its tasks' ``return_value`` XComs) becomes this task's
    return value; either wait logs the child's progress when it changes and can end early
    (``fail_fast``, or once the result tasks succeeded); ``attach_when_already_exists`` waits on a run
    that already holds the planned id instead of failing.

    **What it does not do:** it does not cancel the child run when the parent is stopped.

    All stock parameters apply; these are added:

    :param durable: save the child run in ``task_state_store`` and reconnect to it on retry (default
        ``False``).
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

    Example::

        from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

        TriggerDagRunOperator(
            task_id="run_child",
            trigger_dag_id="child",
            conf={"rows": 100},
            wait_for_completion=True,
            durable=True,
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
        durable: bool = False,
        fast_poll_window: float = 5.0,
        result_task_ids: Sequence[str] | str | None = None,
        fail_fast: bool = False,
        critical_task_ids: Sequence[str] | str | None = None,
        attach_when_already_exists: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(durable=durable, **kwargs)
        refuse_contradictions(
            task_id=self.task_id,
            wait_for_completion=self.wait_for_completion,
            result_task_ids=result_task_ids,
            fail_fast=fail_fast,
            critical_task_ids=critical_task_ids,
            attach_when_already_exists=attach_when_already_exists,
            skip_when_already_exists=self.skip_when_already_exists,
            reset_dag_run=self.reset_dag_run,
        )
        check_schedule(
            task_id=self.task_id, poke_interval=self.poke_interval, fast_poll_window=fast_poll_window
        )
        self.attach_when_already_exists = attach_when_already_exists
        self.result_task_ids = result_task_ids
        self.fail_fast = fail_fast
        self.critical_task_ids = critical_task_ids
        self.fast_poll_window = fast_poll_window
        self._plan: Plan | None = None

    @property
    def when_exists(self) -> WhenExists:
        """The answer when a run this task did not trigger holds the planned id."""
        return WhenExists(
            attach=self.attach_when_already_exists,
            skip=self.skip_when_already_exists,
            reset=self.reset_dag_run,
        )

    def _watch(self) -> Watch:
        """The early-end rules of this task, its templated task ids rendered and checked."""
        results = check_task_ids(self.result_task_ids, task_id=self.task_id, parameter="result_task_ids")
        critical = check_task_ids(self.critical_task_ids, task_id=self.task_id, parameter="critical_task_ids")
        return Watch(
            fail_fast=self.fail_fast,
            critical_task_ids=tuple(critical) if critical else None,
            result_task_ids=tuple(results) if results else None,
        )

    def execute(self, context: Context) -> Any:
        """Trigger the child run (or find the one an earlier try saved) and wait for it if asked."""
        self._require_context(context)
        # Read before the stock execute(), which overwrites trigger_run_id with the id it generates.
        user_run_id = bool(self.trigger_run_id)
        try:
            super().execute(context)
        except DagRunTriggerException as prepared:
            self._plan = Plan.from_prepared(prepared, user_run_id=user_run_id)
        else:  # pragma: no cover - the stock operator always raises on Airflow 3
            raise AirflowException("The stock TriggerDagRunOperator returned without preparing a run")
        self._plan.check(task_id=self.task_id)
        # Rendered by now (they are templated); checked before anything is sent.
        self._watch()
        if self.durable:
            return self._execute_durable(context, self._plan)
        return self.execute_resumable(context)

    def _require_context(self, context: Context) -> None:
        """Name what is missing when execute() is called without Airflow's task context."""
        needed = ["ti", "task_state_store"] if self.durable else ["ti"]
        if missing := [key for key in needed if key not in context]:
            raise ValueError(
                f"Task {self.task_id!r}: execute() needs Airflow's task context, which has no "
                f"{', '.join(repr(key) for key in missing)}; run the task through Airflow "
                "(a Dag run, dag.test() or airflow tasks test) rather than calling execute() directly"
            )

    # -- ResumableJobMixin ----------------------------------------------------------------------------

    def submit_job(self, context: Context) -> JsonValue:
        """Trigger the planned run; return ``{"dag_id", "run_id"}``."""
        if self._plan is None:
            raise AirflowException("submit_job() was called before execute() planned a run")
        plan = triggering.claim(ti=_ti(context), plan=self._plan, when_exists=self.when_exists)
        self._trigger(context, plan, decision=Decision.TRIGGER)
        return {"dag_id": plan.dag_id, "run_id": plan.run_id}

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """Return the child run's state, or ``"not_found"`` when the server has no such run."""
        dag_id, run_id = _ids(external_id)
        return child_state(_ti(context), dag_id, run_id) or "not_found"

    def is_job_active(self, status: str) -> bool:
        """Whether the child run is queued or running."""
        return status in durable.ACTIVE_STATES

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the child run ended in one of ``allowed_states``."""
        return status in self.allowed_states

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait for the child run unless ``wait_for_completion`` is off; raise if it ends badly."""
        if not self.wait_for_completion:
            return
        dag_id, run_id = _ids(external_id)
        if self.deferrable:
            self._defer_on(dag_id, run_id)
        wait_for_final_state(
            ti=_ti(context),
            dag_id=dag_id,
            run_id=run_id,
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
            poke_interval=self.poke_interval,
            fast_poll_window=self.fast_poll_window,
            log=self.log,
            watch=self._watch(),
        )

    # -- deferrable mode ------------------------------------------------------------------------------

    def _defer_on(self, dag_id: str, run_id: str) -> None:
        """Give the worker slot up and wait in the triggerer for the run, watched by its run id alone."""
        self.log.info("Deferring until the Dag run ends", dag_id=dag_id, run_id=run_id)
        watch = self._watch()
        self.defer(
            trigger=DagRunTrigger(
                dag_id=dag_id,
                run_id=run_id,
                poke_interval=self.poke_interval,
                fast_poll_window=self.fast_poll_window,
                # The schedule counts from here, and a rebuilt trigger (triggerer restart) resumes it.
                waiting_since=time.time(),
                fail_fast=watch.fail_fast,
                critical_task_ids=watch.critical_task_ids,
                result_task_ids=watch.result_task_ids,
            ),
            # Not execute_complete: that stays the stock one, for tasks the stock operator deferred on its
            # DagStateTrigger before an upgrade to this one and that resume with the stock event.
            method_name="resume_after_child_run",
            # As in the synchronous mode, execution_timeout bounds the wait (Airflow 3 does not apply it
            # to a deferral by itself); a durable retry then reconnects to the run.
            timeout=self.execution_timeout,
        )

    def resume_after_child_run(self, context: Context, event: dict[str, Any]) -> Any:
        """
        Resume after the trigger saw the child run end: succeed, or raise as the synchronous wait would.

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
            self.log.info(
                "The result tasks succeeded; not waiting for the rest of the Dag run",
                dag_id=dag_id,
                run_id=run_id,
            )
            return self.get_job_result({"dag_id": dag_id, "run_id": run_id}, context)
        if not is_done(
            dag_id=dag_id,
            run_id=run_id,
            state=str(state),
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
        ):
            raise AirflowException(f"The trigger reported Dag {dag_id!r} run {run_id!r} in state {state!r}")
        self.log.info("Dag run finished in an allowed state", dag_id=dag_id, run_id=run_id, state=state)
        return self.get_job_result({"dag_id": dag_id, "run_id": run_id}, context)

    def get_job_result(self, external_id: JsonValue, context: Context) -> Any:
        """
        Return the child's result (``result_task_ids``), or nothing, as the stock operator does.

        Called once the run has ended in an allowed state, whichever path got there: the synchronous
        wait, the resume after a deferral, or a durable retry that found the run finished.
        """
        task_ids = self._watch().result_task_ids
        if not task_ids:
            return None
        dag_id, run_id = _ids(external_id)
        ti = _ti(context)
        state = child_state(ti, dag_id, run_id)
        if state != "success" and not task_progress(ti, dag_id, run_id).all_succeeded(task_ids):
            # An allowed state other than success (allowed_states says so): its result tasks need not
            # have run, so there is no result to promise. (Still running with them all done is the
            # early success, which returns the result.)
            self.log.info("No result: the Dag run did not succeed", dag_id=dag_id, run_id=run_id, state=state)
            return None
        results = collect_results(ti=ti, dag_id=dag_id, run_id=run_id, task_ids=task_ids)
        self.log.info("Returning the Dag run's result", dag_id=dag_id, run_id=run_id, tasks=task_ids)
        return results

    # -- durable mode ---------------------------------------------------------------------------------

    def _execute_durable(self, context: Context, plan: Plan) -> Any:
        ti = context["ti"]
        store = context["task_state_store"]
        with telemetry.decision_span(
            operator=type(self).__name__, external_id_key=self.external_id_key
        ) as span:
            saved, why_ignored = durable.parse_saved_run(store.get(self.external_id_key), dag_id=plan.dag_id)
            if why_ignored:
                self.log.warning(
                    "Ignoring the stored child run record", reason=why_ignored, try_number=ti.try_number
                )
            rerun = saved is not None and durable.is_rerun(saved, max_tries=ti.max_tries)
            saved_state = (
                child_state(_ti(context), saved.dag_id, saved.run_id)
                if saved is not None and not rerun
                else None
            )
            if saved is not None and saved_state in durable.ACTIVE_STATES and self._doomed(context, saved):
                # fail_fast failed the earlier try on this run; reconnecting would only fail again, so
                # the retry treats the run as failed and triggers a fresh one, as after a failed run.
                saved_state = "failed"
            decision = durable.decide(
                saved=saved,
                rerun=rerun,
                child_state=saved_state,
                wait_for_completion=self.wait_for_completion,
                allowed_states=self.allowed_states,
            )
            telemetry.record_decision(
                span, decision=decision, saved=saved, child_state=saved_state, tags=self._stats_tags(ti)
            )
        log_fields = {"decision": decision.value, "try_number": ti.try_number, "state": saved_state}
        if rerun:
            self.log.info("The task was cleared; triggering a new Dag run", **log_fields)
        if saved is not None and decision in (Decision.RECONNECT, Decision.ALREADY_FINISHED):
            return self._resume(context, saved, decision, log_fields)

        plan, reset = self._plan_for(context, plan, saved, decision, log_fields)
        # Write-ahead: once the trigger is sent the run may exist, so its id must already be saved.
        store.set(
            self.external_id_key,
            SavedRun(dag_id=plan.dag_id, run_id=plan.run_id, max_tries=ti.max_tries).to_json(),
        )
        return self._trigger_and_wait(context, plan, decision, reset=reset)

    def _doomed(self, context: Context, saved: SavedRun) -> bool:
        """Whether ``fail_fast`` already fails the saved, still active run (a task of it has failed)."""
        if not self.fail_fast:
            return False
        watch = replace(self._watch(), result_task_ids=None)
        end = watch.early_end(task_progress(_ti(context), saved.dag_id, saved.run_id))
        if end is None or end.failure is None:
            return False
        self.log.warning(
            "The Dag run saved by an earlier try has a failed task (fail_fast); not reconnecting to it",
            dag_id=saved.dag_id,
            run_id=saved.run_id,
            task=end.failure[0],
            task_state=end.failure[1],
        )
        return True

    def _resume(
        self, context: Context, saved: SavedRun, decision: Decision, log_fields: dict[str, Any]
    ) -> Any:
        """Carry on with the run an earlier try triggered: wait on it, or finish if it already did."""
        event = (
            "Reconnecting to the Dag run saved by an earlier try"
            if decision is Decision.RECONNECT
            else "The Dag run saved by an earlier try already finished; not triggering another"
        )
        self.log.info(event, dag_id=saved.dag_id, run_id=saved.run_id, **log_fields)
        self._publish(context, saved.dag_id, saved.run_id)
        external_id: JsonValue = {"dag_id": saved.dag_id, "run_id": saved.run_id}
        if decision is Decision.RECONNECT:
            self.poll_until_complete(external_id, context)
        return self.get_job_result(external_id, context)

    def _plan_for(
        self,
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
            self.log.warning(
                "The Dag run saved by an earlier try ended badly; triggering a fresh one",
                dag_id=saved.dag_id,
                run_id=saved.run_id,
                **log_fields,
            )
            if plan.run_id == saved.run_id and not self.attach_when_already_exists:
                # A fixed trigger_run_id, or the id a fixed logical date gives: the run under it is the
                # one this task triggered, so run it again rather than fail on it. (An attached run is
                # shared with others: not this task's to reset; the retry attaches to it again.)
                return replace(plan, ours=True), True
        return triggering.claim(ti=_ti(context), plan=plan, when_exists=self.when_exists), False

    def _trigger_and_wait(
        self, context: Context, plan: Plan, decision: Decision, *, reset: bool = False
    ) -> Any:
        self._trigger(context, plan, decision=decision, reset=reset)
        external_id: JsonValue = {"dag_id": plan.dag_id, "run_id": plan.run_id}
        self.poll_until_complete(external_id, context)
        return self.get_job_result(external_id, context)

    # -- shared by both modes -------------------------------------------------------------------------

    def _trigger(self, context: Context, plan: Plan, *, decision: Decision, reset: bool = False) -> None:
        """Trigger the planned run (or attach to it) and publish it for the link and downstream tasks."""
        fields = triggering.decision_fields(plan=plan, decision=decision, try_number=context["ti"].try_number)
        triggering.send(
            ti=_ti(context),
            plan=plan,
            when_exists=self.when_exists,
            reset=reset,
            log=self.log,
            log_fields=fields,
        )
        self._publish(context, plan.dag_id, plan.run_id)

    def _stats_tags(self, ti: Any) -> dict[str, str]:
        # As the mixin tags its metrics: the operator, and the team in multi-team deployments.
        tags = {"operator": type(self).__name__}
        if team_name := ti.stats_tags.get("team_name"):
            tags["team_name"] = team_name
        return tags

    def _publish(self, context: Context, dag_id: str, run_id: str) -> None:
        self.trigger_run_id = run_id  # as the stock operator does, for listeners
        triggering.publish(ti=context["ti"], dag_id=dag_id, run_id=run_id)


def _ti(context: Context) -> TriggeringTaskInstance:
    # ti.trigger_dag_run is installed by the task_sdk_ext plugin, which the type checker cannot see.
    return cast("TriggeringTaskInstance", context["ti"])


def _ids(external_id: JsonValue) -> tuple[str, str]:
    if not isinstance(external_id, dict):
        raise AirflowException(f"Expected a {{'dag_id', 'run_id'}} record, got {external_id!r}")
    return str(external_id["dag_id"]), str(external_id["run_id"])
