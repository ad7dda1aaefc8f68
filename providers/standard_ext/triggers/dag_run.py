"""``DagRunTrigger``: wait in the triggerer for one child Dag run, identified by run id, to end."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog
from airflow.triggers.base import BaseTrigger, TriggerEvent

from standard_ext.triggers.deadline import TIMED_OUT, seconds_left
from standard_ext.triggers.finish import succeeded, success_event
from standard_ext.triggers.inflate import refused_as_type_error
from standard_ext.triggers.on_kill import cancel_child, shielded
from standard_ext.triggers.shared_poll import wait_in_triggerer
from standard_ext.wait.progress import Watch
from standard_ext.wait.schedule import Schedule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from standard_ext.triggers.shared_poll import RunOutcome
    from standard_ext.wait.progress import TaskProgress

log = structlog.get_logger(__name__)

# Stored with every deferred task: renaming or moving the class breaks the deferrals in flight, whose
# triggerer can no longer import it.
CLASSPATH = "standard_ext.triggers.dag_run.DagRunTrigger"


class DagRunTrigger(BaseTrigger):
    """
    Wait for one Dag run to reach a final state (``success`` or ``failed``) and fire one event with it.

    **Purpose:** let a deferrable ``TriggerDagRunOperator`` give up its worker slot while the child runs,
    and let one triggerer hold thousands of such waits cheaply.

    **How it works:** ``run()`` registers with the event loop's shared poller for ``dag_id``
    (:mod:`standard_ext.triggers.shared_poll`), which checks all waiting runs of that Dag with one
    batched task-state question, and yields ``TriggerEvent({"dag_id", "run_id", "state"})`` when this
    run ends. A run that does not exist yields ``"state": None`` and an ``"error"`` naming the Dag and
    run. While the run is active, the poller hands over its task states: the trigger logs the run's
    progress when it changes, and ends early under the operator's rules: ``fail_fast`` (of
    ``critical_task_ids`` when given) yields ``"early": "failure"`` with the ``"task"`` and its
    ``"task_state"``; every instance of ``result_task_ids`` succeeded yields ``"early": "success"``.
    The checks follow
    :func:`standard_ext.wait.schedule.poll_delays` counted from ``waiting_since``, which is serialized, so a
    trigger rebuilt by a restarted triggerer resumes the same schedule. Cancelling ``run()`` (triggerer
    shutdown, the task cleared) deregisters it from the poller.

    With ``finish_on_success``, a success ends the task from here instead (``TaskSuccessEvent``, the
    result as its ``return_value``): no worker resumes it (:mod:`standard_ext.triggers.finish`).

    **What it does not do:** decide whether a state other than success is good (the operator's ``resume_after_child_run`` does,
    against its ``allowed_states`` and ``failed_states``); look the run up by logical date (run id only:
    upstream issue 57756 hung the stock trigger after ``reset_dag_run``); stop the child run, unless
    ``cancel_on_kill`` asks ``on_kill`` to (:mod:`standard_ext.triggers.on_kill`).

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: for this many seconds after ``waiting_since`` the run is checked every
        second; then the wait doubles up to ``poke_interval``.
    :param waiting_since: when the wait began, as a UNIX timestamp (``time.time()``).
    :param fail_fast: end the wait as soon as a task of the run is ``failed`` or ``upstream_failed``.
    :param critical_task_ids: with ``fail_fast``, only a failure of these tasks counts.
    :param result_task_ids: end the wait as soon as every instance of these tasks succeeded.
    :param expected_seconds: how long the child Dag's last successful run took; the checks are dense
        around that length after ``waiting_since`` (see :mod:`standard_ext.wait.schedule`).
    :param finish_on_success: when the run (or, early, its result tasks) succeeded, end the task here
        with ``TaskSuccessEvent`` and the result as its ``return_value``, instead of resuming it on a
        worker (see :mod:`standard_ext.triggers.finish`); the operator sets it when nothing on a worker
        would see the difference. Off, the default, every outcome resumes the task.
    :param push_result: with ``finish_on_success``, push the result (the task's ``do_xcom_push``).
    :param dag_result: with ``finish_on_success``, flag the pushed result as its Dag's result (the
        task's ``returns_dag_result``), as a worker's push would.
    :param cancel_on_kill: when the triggerer kills this trigger because the task left ``deferred`` (a
        person marked or cleared it, its Dag run was marked or timed out), set the child run ``failed``
        through the public REST API; the operator sets it only for a run its task triggered.
    :param airflow_api_conn_id: with ``cancel_on_kill``, the Airflow connection (conn_type ``http``) to the
        API server, read in the triggerer.
    :param timeout_at: a deadline (UNIX timestamp): once it passes, fire ``{"dag_id", "run_id", "state":
        None, "timed_out": True}`` so that the task resumes, cancels the run and raises the timeout
        (:mod:`standard_ext.triggers.deadline`). ``None``: no deadline of its own.
    :param durable: with ``cancel_on_kill``, whether a retry of the task reconnects to what this trigger
        waits on (:func:`standard_ext.cancel.decision.should_cancel`). Default ``True``.

    Example::

        self.defer(
            trigger=DagRunTrigger(
                dag_id="child",
                run_id=run_id,
                poke_interval=60,
                fast_poll_window=5,
                waiting_since=time.time(),
            ),
            method_name="resume_after_child_run",
        )
    """

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        poke_interval: float,
        fast_poll_window: float,
        waiting_since: float,
        fail_fast: bool = False,
        critical_task_ids: Sequence[str] | None = None,
        result_task_ids: Sequence[str] | None = None,
        expected_seconds: float | None = None,
        finish_on_success: bool = False,
        push_result: bool = True,
        dag_result: bool = False,
        cancel_on_kill: bool = False,
        airflow_api_conn_id: str | None = None,
        timeout_at: float | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        # A bad keyword argument fails this trigger (and its task), never the triggerer's loop.
        with refused_as_type_error(type(self).__name__):
            self.dag_id = dag_id
            self.run_id = run_id
            # The defaults keep a trigger serialized before these existed rebuilding as it was.
            self.watch = Watch(
                fail_fast=bool(fail_fast),
                critical_task_ids=tuple(critical_task_ids) if critical_task_ids else None,
                result_task_ids=tuple(result_task_ids) if result_task_ids else None,
            )
            self._last_progress: str | None = None
            self.finish_on_success = bool(finish_on_success)
            self.push_result = bool(push_result)
            self.dag_result = bool(dag_result)
            self.cancel_on_kill = bool(cancel_on_kill)
            self.airflow_api_conn_id = airflow_api_conn_id
            self.timeout_at = None if timeout_at is None else float(timeout_at)
            # True for a trigger serialized before it existed: keeping a run is the safe side.
            self.durable = bool(durable)
            # Validated here, so a bad value fails this trigger as it is built, never the shared poller.
            self.schedule = Schedule(
                waiting_since=float(waiting_since),
                poke_interval=float(poke_interval),
                fast_poll_window=float(fast_poll_window),
                expected_seconds=None if expected_seconds is None else float(expected_seconds),
            )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger."""
        return CLASSPATH, {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "poke_interval": self.schedule.poke_interval,
            "fast_poll_window": self.schedule.fast_poll_window,
            "waiting_since": self.schedule.waiting_since,
            "fail_fast": self.watch.fail_fast,
            "critical_task_ids": list(self.watch.critical_task_ids or []) or None,
            "result_task_ids": list(self.watch.result_task_ids or []) or None,
            "expected_seconds": self.schedule.expected_seconds,
            "finish_on_success": self.finish_on_success,
            "push_result": self.push_result,
            "dag_result": self.dag_result,
            "cancel_on_kill": self.cancel_on_kill,
            "airflow_api_conn_id": self.airflow_api_conn_id,
            "timeout_at": self.timeout_at,
            "durable": self.durable,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until the run ends, or the watch ends the wait early, then yield one event."""
        log.info(
            "Waiting for Dag run",
            dag_id=self.dag_id,
            run_id=self.run_id,
            expected_seconds=self.schedule.expected_seconds,
        )
        try:
            outcome = await asyncio.wait_for(
                wait_in_triggerer(
                    dag_id=self.dag_id,
                    run_id=self.run_id,
                    schedule=self.schedule,
                    watch=self.watch,
                    on_progress=self._log_progress,
                ),
                timeout=seconds_left(self.timeout_at),
            )
        except TimeoutError:
            # The task resumes to cancel the run (cancel_on_kill) and raise the timeout.
            log.info(
                "execution_timeout passed while waiting for the Dag run",
                dag_id=self.dag_id,
                run_id=self.run_id,
            )
            yield TriggerEvent({"dag_id": self.dag_id, "run_id": self.run_id, "state": None, TIMED_OUT: True})  # type: ignore[no-untyped-call]
            return
        if outcome.early is None:
            log.info("Dag run ended", dag_id=self.dag_id, run_id=self.run_id, state=outcome.state)
        elif outcome.early.failure is not None:
            task, task_state = outcome.early.failure
            log.info("A task of the Dag run failed (fail_fast)", task=task, task_state=task_state)
        else:
            log.info("The result tasks succeeded; not waiting for the rest of the Dag run")
        if self.finish_on_success and succeeded(outcome):
            event = await success_event(
                dag_id=self.dag_id,
                run_id=self.run_id,
                result_task_ids=self.watch.result_task_ids,
                push_result=self.push_result,
                dag_result=self.dag_result,
                parent=self.task_instance,
            )
            if event is not None:
                yield event
                return
        yield TriggerEvent(self.event_payload(outcome))  # type: ignore[no-untyped-call]

    async def on_kill(self) -> None:
        """With ``cancel_on_kill``, cancel the child run unless the task is still deferred."""
        if self.cancel_on_kill and self.airflow_api_conn_id:
            await shielded(
                cancel_child(
                    conn_id=self.airflow_api_conn_id,
                    parent=self.task_instance,
                    dag_id=self.dag_id,
                    run_id=self.run_id,
                    durable=self.durable,
                )
            )

    def _log_progress(self, progress: TaskProgress) -> None:
        # Only on change: a long child would otherwise fill the task's log with identical lines.
        if progress.line != self._last_progress:
            log.info("Dag run progress", dag_id=self.dag_id, run_id=self.run_id, progress=progress.line)
            self._last_progress = progress.line

    def event_payload(self, outcome: RunOutcome) -> dict[str, str | None]:
        """
        Return the event's payload: JSON-plain, as it is stored and handed to the operator's resume method (``event=``).

        :param outcome: what the wait ended with.
        """
        payload: dict[str, str | None] = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": outcome.state,
        }
        if outcome.error is not None:
            payload["error"] = outcome.error
        if outcome.early is not None:
            payload["early"] = "success" if outcome.early.failure is None else "failure"
            if outcome.early.failure is not None:
                payload["task"], payload["task_state"] = outcome.early.failure
        return payload
