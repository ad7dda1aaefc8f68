"""Waiting for a child run inside the task: judging a state it was seen in, and the synchronous poll loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowRuntimeError, AirflowTaskTimeout

from standard_ext.durable.decision import FINAL_STATES
from standard_ext.wait.counts import COUNT_ABOVE, counted_progress
from standard_ext.wait.outage import OUTAGE_STEP_SECONDS, Outage
from standard_ext.wait.progress import TaskProgress
from standard_ext.wait.runs import get_state, task_progress
from standard_ext.wait.stopped import wait_between_checks
from standard_ext.wait.window import FAST_STEP_SECONDS, FINISHING_CHECKS

if TYPE_CHECKING:
    from collections.abc import Collection

    from structlog.typing import FilteringBoundLogger

    from standard_ext.wait.progress import Progress, Watch
    from standard_ext.wait.schedule import Schedule
    from standard_ext.wait.stopped import StopNote
    from task_sdk_ext.protocols import TriggeringTaskInstance


#: What the wait returns when it ended early because the result tasks succeeded (``result_task_ids``):
#: not a Dag run state, since the run may still be running.
RESULTS_READY = "results_ready"


def is_done(
    *, dag_id: str, run_id: str, state: str, allowed_states: Collection[str], failed_states: Collection[str]
) -> bool:
    """
    Judge a state the child run was seen in: ``True`` when the wait is over, ``False`` while it goes on.

    The synchronous loop and the deferrable path's ``resume_after_child_run`` both judge by this.

    :param dag_id: the child Dag, named in errors.
    :param run_id: the child run, named in errors.
    :param state: the state seen.
    :param allowed_states: final states in which the wait succeeds.
    :param failed_states: states that fail the task.
    :raises AirflowException: a failed state (a plain ``AirflowException``, so the task's retries apply),
        or a final state in neither list (the stock loop would wait for ever on it).
    """
    if state in failed_states:
        raise AirflowException(f"Dag {dag_id!r} run {run_id!r} ended in failed state {state!r}")
    if state in allowed_states:
        return True
    if state in FINAL_STATES:
        raise AirflowException(
            f"Dag {dag_id!r} run {run_id!r} ended in state {state!r}, which is in neither "
            f"allowed_states {list(allowed_states)} nor failed_states {list(failed_states)}"
        )
    return False


def wait_in_task(
    *,
    ti: TriggeringTaskInstance,
    dag_id: str,
    run_id: str,
    allowed_states: Collection[str],
    failed_states: Collection[str],
    schedule: Schedule,
    log: FilteringBoundLogger,
    watch: Watch | None = None,
    stop: StopNote | None = None,
    fresh: bool = False,
) -> str:
    """
    Wait in the task, holding its worker slot, until the run ends or ``watch`` ends the wait early.

    Returns how it ended: the run's final state (one of ``allowed_states``), or :data:`RESULTS_READY`
    when the result tasks succeeded first. The deferrable mode waits in the triggerer instead
    (:func:`standard_ext.triggers.shared_poll.wait_in_triggerer`).

    Each check is one request, for the run's task states: they give the progress (logged when it
    changes), let ``watch`` judge an early end, and say when the run may have ended, which only then is
    read (a second request). While the task instances are all finished but the run is not yet, the
    next check comes after a second, whatever the schedule: the scheduler is about to end the run. After
    ``window.FINISHING_CHECKS`` such checks the schedule applies again (a paused child Dag's run is
    not examined by the scheduler at all).

    :param ti: the task instance whose accessors ask the execution API.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param allowed_states: final states in which the wait succeeds.
    :param failed_states: states that fail the task (a plain ``AirflowException``, so retries apply).
    :param schedule: when to check; its ``waiting_since`` is when the wait began.
    :param log: where progress is logged.
    :param watch: the early-end rules (``fail_fast``, ``critical_task_ids``, ``result_task_ids``).
    :param stop: a durable task's :class:`~standard_ext.wait.stopped.StopNote`: ``on_kill`` wakes the wait,
        which notes the stop in the record before the wait goes on.
    :param fresh: this try triggered the run a moment ago, so it is queued: the first check comes at the
        schedule's first step instead of at once, where it could only say so. A run found already there
        (a durable retry, an attached run) is checked at once: it may have ended long ago.
    :raises AirflowException: the run ended in a failed state, or in a final state in neither list, or
        ``watch`` saw a (critical) task fail.
    :raises AirflowTaskTimeout: ``execution_timeout`` ran out during the wait; the message names the run.
    """
    log.info(
        "Waiting for Dag run",
        dag_id=dag_id,
        run_id=run_id,
        allowed_states=list(allowed_states),
        # How long the Dag's last success took: the checks are dense around it (None: not known).
        expected_seconds=schedule.expected_seconds,
    )
    last_line = None
    waiting_seen = False
    counting = False
    # Checks in a row that found every task instance finished and the run not ended yet.
    finishing = 0
    # Seconds since the wait began, counted by the waits themselves: the schedule is walked the same
    # under a real clock and a test's.
    elapsed = 0.0
    try:
        if fresh:
            elapsed = schedule.next_offset_after(0.0)
            wait_between_checks(elapsed, stop=stop)
        outage = Outage(dag_id=dag_id, run_id=run_id, log=log)
        while True:
            try:
                progress, state = _check(
                    ti,
                    dag_id,
                    run_id,
                    watch=watch,
                    counting=counting,
                    start_seen=schedule.started_after is not None,
                )
            except AirflowRuntimeError as e:
                outage.failed(e, elapsed=elapsed)
                delay = min(schedule.next_offset_after(elapsed) - elapsed, OUTAGE_STEP_SECONDS)
                wait_between_checks(delay, stop=stop)
                elapsed += delay
                continue
            outage.checked()
            # A large run is followed by counts from the second check on (standard_ext.wait.counts).
            counting = counting or (isinstance(progress, TaskProgress) and len(progress.states) > COUNT_ABOVE)
            # The run's own clock: once it is seen starting, the schedule counts from its start.
            schedule = schedule.seen(started=progress.started, after=elapsed, waiting_seen=waiting_seen)
            waiting_seen = waiting_seen or not progress.started
            # Only a run whose task instances are all finished can have ended (its state was read above
            # only then): Airflow ends a run once they are, and the routes that end one by hand finish
            # them too. None at all means the run is gone (or has no tasks), which only its state can say.
            judged = {"dag_id": dag_id, "run_id": run_id, "state": state}
            if state is not None and is_done(
                dag_id=dag_id,
                run_id=run_id,
                state=state,
                allowed_states=allowed_states,
                failed_states=failed_states,
            ):
                log.info("Dag run finished in an allowed state", **judged)
                return state
            if progress.line != last_line:
                # Only on change: a long child would otherwise fill the log with identical lines.
                log.info("Dag run progress", dag_id=dag_id, run_id=run_id, progress=progress.line)
                last_line = progress.line
            if watch is not None and (end := watch.early_end(progress)) is not None:
                if end.failure is not None:
                    raise AirflowException(end.message(dag_id=dag_id, run_id=run_id))
                log.info("The result tasks succeeded; not waiting for the rest of the Dag run", **judged)
                return RESULTS_READY
            finishing = finishing + 1 if state is not None and progress.has_tasks else 0
            if 0 < finishing <= FINISHING_CHECKS:
                # Its tasks are done: the scheduler is about to end the run (a few times, wait/window.py).
                delay = FAST_STEP_SECONDS
            else:
                delay = schedule.next_offset_after(elapsed) - elapsed
            wait_between_checks(delay, stop=stop)
            elapsed += delay
    except AirflowTaskTimeout as e:
        # The task runner's execution_timeout covers the whole of execute(), this wait included. Say
        # which run was left behind: it goes on running, and a durable retry reconnects to it.
        raise AirflowTaskTimeout(
            f"execution_timeout expired while waiting for Dag {dag_id!r} run {run_id!r}; the run goes on, "
            "and with durable=True a retry reconnects to it instead of triggering another"
        ) from e


def _check(
    ti: TriggeringTaskInstance,
    dag_id: str,
    run_id: str,
    *,
    watch: Watch | None,
    counting: bool,
    start_seen: bool,
) -> tuple[Progress, str | None]:
    """
    One check: the run's progress, and its state once every task instance has finished (else None).

    The progress is every task instance's state, or, for a large run, counts (``counting``).
    """
    progress: Progress = (
        counted_progress(ti, dag_id, run_id, watch=watch, start_seen=start_seen)
        if counting
        else task_progress(ti, dag_id, run_id)
    )
    return progress, get_state(ti, dag_id, run_id) if progress.all_finished else None
