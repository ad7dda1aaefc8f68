"""Waiting for a child run: judging a state it was seen in, and the synchronous poll loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowTaskTimeout

from standard_ext import polling
from standard_ext.durable import FINAL_STATES
from standard_ext.runs import get_state, task_progress

if TYPE_CHECKING:
    from collections.abc import Collection

    from structlog.typing import FilteringBoundLogger

    from standard_ext.progress import Watch
    from task_sdk_ext.protocols import TriggeringTaskInstance


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


def wait_for_final_state(
    *,
    ti: TriggeringTaskInstance,
    dag_id: str,
    run_id: str,
    allowed_states: Collection[str],
    failed_states: Collection[str],
    poke_interval: float,
    fast_poll_window: float,
    log: FilteringBoundLogger,
    watch: Watch | None = None,
) -> str:
    """
    Wait until the run ends, or until ``watch`` ends the wait early; return the run's last state.

    While the run is active, each check also reads its task states (a second request), to log the
    progress when it changes and to let ``watch`` judge an early end.

    :param ti: the task instance whose accessor reads the run's state.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param allowed_states: final states in which the wait succeeds.
    :param failed_states: states that fail the task (a plain ``AirflowException``, so retries apply).
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long after the start to check every second.
    :param log: where progress is logged.
    :param watch: the early-end rules (``fail_fast``, ``critical_task_ids``, ``result_task_ids``).
    :raises AirflowException: the run ended in a failed state, or in a final state in neither list, or
        ``watch`` saw a (critical) task fail.
    :raises AirflowTaskTimeout: ``execution_timeout`` ran out during the wait; the message names the run.
    """
    log.info("Waiting for Dag run", dag_id=dag_id, run_id=run_id, allowed_states=list(allowed_states))
    last_line = None
    try:
        for delay in polling.poll_delays(poke_interval=poke_interval, fast_poll_window=fast_poll_window):
            state = get_state(ti, dag_id, run_id)
            judged = {"dag_id": dag_id, "run_id": run_id, "state": state}
            if is_done(**judged, allowed_states=allowed_states, failed_states=failed_states):
                log.info("Dag run finished in an allowed state", **judged)
                return state
            progress = task_progress(ti, dag_id, run_id)
            if progress.line != last_line:
                # Only on change: a long child would otherwise fill the log with identical lines.
                log.info("Dag run progress", dag_id=dag_id, run_id=run_id, progress=progress.line)
                last_line = progress.line
            if watch is not None and (end := watch.early_end(progress)) is not None:
                if end.failure is not None:
                    raise AirflowException(end.message(dag_id=dag_id, run_id=run_id))
                log.info("The result tasks succeeded; not waiting for the rest of the Dag run", **judged)
                return state
            polling.wait(delay)
    except AirflowTaskTimeout as e:
        # The task runner's execution_timeout covers the whole of execute(), this wait included. Say
        # which run was left behind: it goes on running, and a durable retry reconnects to it.
        raise AirflowTaskTimeout(
            f"execution_timeout expired while waiting for Dag {dag_id!r} run {run_id!r}; the run goes on, "
            "and with durable=True a retry reconnects to it instead of triggering another"
        ) from e
    raise AssertionError("unreachable: poll_delays never ends")  # pragma: no cover
