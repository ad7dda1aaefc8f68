"""
How long the child Dag usually runs: its last successful run's length, asked once when a wait begins.

Where the Dag has no such run (none yet, or only runs without a logical date, which the execution API
does not find), a fan-out reads the length of its own runs once they succeeded (:func:`ended_runs_seconds`).
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from airflow.sdk.exceptions import AirflowRuntimeError

from task_sdk_ext.api_errors import server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

log = structlog.get_logger(__name__)

#: How many ended runs :func:`ended_runs_seconds` reads at most: one request each, and the median of a
#: few is not thrown far by one odd run.
LEARN_FROM_RUNS = 3


def last_success_seconds(*, dag_id: str) -> float | None:
    """
    Return how long the Dag's latest successful run (by logical date, up to now) took, or ``None``.

    One ``GetPreviousDagRun`` request, the one the task runner itself makes for ``prev_start_date``.
    Runs without a logical date are not considered (the execution API finds runs by logical date), and
    a failure to ask only costs the schedule its prediction: it is logged, never raised, since the
    wait works without it.

    :param dag_id: the child Dag.
    """
    from airflow.sdk.execution_time.comms import GetPreviousDagRun, PreviousDagRunResult
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    question = GetPreviousDagRun(dag_id=dag_id, logical_date=datetime.now(UTC), state="success")
    try:
        with server_errors_as_runtime_errors():
            answer = SUPERVISOR_COMMS.send(question)
    except AirflowRuntimeError as e:
        log.warning(
            "Could not read the Dag's last successful run; polling without it", dag_id=dag_id, error=str(e)
        )
        return None
    run = answer.dag_run if isinstance(answer, PreviousDagRunResult) else None
    if run is None or run.start_date is None or run.end_date is None:
        return None
    seconds = (run.end_date - run.start_date).total_seconds()
    return seconds if seconds > 0 else None


def ended_runs_seconds(*, dag_id: str, run_ids: Sequence[str]) -> float | None:
    """
    Return the median length of the Dag's given runs that succeeded, or ``None`` if none tells.

    One ``GetDagRun`` for each of the first :data:`LEARN_FROM_RUNS` of ``run_ids``, which gives the run's
    start and end dates whether it has a logical date or not. Only a task's supervisor answers that
    message (the triggerer does not), so only a task may call this. A run not ended, not succeeded or
    never started tells nothing. As with :func:`last_success_seconds`, a failure to ask is logged, never
    raised; it ends the asking, since the next request would most likely fail as well.

    :param dag_id: the child Dag.
    :param run_ids: its runs that ended succeeded, the most recently seen first.
    """
    from airflow.sdk.execution_time.comms import DagRunResult, GetDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    lengths: list[float] = []
    for run_id in run_ids[:LEARN_FROM_RUNS]:
        try:
            with server_errors_as_runtime_errors():
                answer = SUPERVISOR_COMMS.send(GetDagRun(dag_id=dag_id, run_id=run_id))
        except AirflowRuntimeError as e:
            log.warning(
                "Could not read how long a Dag run took; polling without it",
                dag_id=dag_id,
                run_id=run_id,
                error=str(e),
            )
            break
        if not isinstance(answer, DagRunResult) or answer.state != "success":
            continue
        if answer.start_date is None or answer.end_date is None:
            continue
        seconds = (answer.end_date - answer.start_date).total_seconds()
        if seconds > 0:
            lengths.append(seconds)
    return statistics.median(lengths) if lengths else None
