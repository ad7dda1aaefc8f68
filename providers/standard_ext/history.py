"""How long the child Dag usually runs: its last successful run's length, asked once when a wait begins."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from airflow.sdk.exceptions import AirflowRuntimeError

from task_sdk_ext.api_errors import server_errors_as_runtime_errors

log = structlog.get_logger(__name__)


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
