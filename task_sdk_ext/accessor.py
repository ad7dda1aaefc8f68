"""``trigger_dag_run()``: the Task SDK accessor that triggers a Dag run, partner of ``get_dagrun_state()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from task_sdk_ext.api_errors import server_errors_as_runtime_errors, translate_trigger_error
from task_sdk_ext.exceptions import DagRunAlreadyExists
from task_sdk_ext.validation import check_aware_datetime, check_conf, check_dag_id, check_run_id

if TYPE_CHECKING:
    from datetime import datetime

log = structlog.get_logger(__name__)


def generate_manual_run_id(*, logical_date: datetime | None = None, run_after: datetime | None = None) -> str:
    """
    Name a run the way Airflow names manual runs (``manual__<run_after>``, plus a random suffix when the run has no logical date), as the stock ``TriggerDagRunOperator`` does.

    :param logical_date: the run's logical date, if it has one.
    :param run_after: when the run may start; now if not given.
    """
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.types import DagRunType

    return DagRun.generate_run_id(
        run_type=DagRunType.MANUAL,
        logical_date=logical_date,
        run_after=run_after or logical_date or timezone.utcnow(),
    )


def trigger_dag_run(
    dag_id: str,
    run_id: str | None = None,
    *,
    conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
    run_after: datetime | None = None,
    reset_dag_run: bool = False,
    note: str | None = None,
) -> str:
    """
    Trigger a run of ``dag_id`` from inside a task and return its run id.

    It sends the supervisor the same ``TriggerDagRun`` message the task runner sends for the stock
    ``TriggerDagRunOperator``, so the run is created through the same execution-API endpoint with the
    task's own scoped token. Installed on every task instance as ``ti.trigger_dag_run()``; wait for the
    run with ``ti.get_dagrun_state(dag_id, run_id)``.

    Arguments are checked before anything is sent; a bad one raises ``ValueError`` naming it.

    :param dag_id: the Dag to trigger.
    :param run_id: the new run's id; generated the way Airflow names manual runs when not given.
    :param conf: the run's configuration, a JSON-serializable dict.
    :param logical_date: the run's logical date (timezone-aware); ``None`` for a run without one.
    :param run_after: the earliest time the run may start (timezone-aware); now when not given.
    :param reset_dag_run: if a run with ``run_id`` already exists, clear it so it runs again, and return
        its id, instead of raising ``DagRunAlreadyExists``.
    :param note: a note to attach to the new run.
    :return: the run id of the run created (or reset).
    :raises DagRunAlreadyExists: a run with ``run_id`` exists and ``reset_dag_run`` is false.
    :raises DagNotFound: ``dag_id`` names no Dag the server knows (or a stale one).
    :raises DagRunTriggerRejected: the Dag has import errors, forbids operator-triggered runs, or the
        server rejected a value; ``.reason`` carries the server's reason.
    :raises TriggerDagRunError: any other server failure, with its status code and message.
    """
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    check_dag_id(dag_id)
    conf = check_conf(conf)
    logical_date = check_aware_datetime("logical_date", logical_date)
    run_after = check_aware_datetime("run_after", run_after)
    if note is not None and not isinstance(note, str):
        raise ValueError(f"note must be a string or None, got {type(note).__name__}")
    run_id = (
        check_run_id(run_id)
        if run_id is not None
        else generate_manual_run_id(logical_date=logical_date, run_after=run_after)
    )

    msg = TriggerDagRun(
        dag_id=dag_id,
        run_id=run_id,
        conf=conf,
        logical_date=logical_date,
        run_after=run_after,
        reset_dag_run=reset_dag_run,
        note=note,
    )
    try:
        with server_errors_as_runtime_errors():
            response = SUPERVISOR_COMMS.send(msg)
    except AirflowRuntimeError as e:
        raise translate_trigger_error(e, dag_id=dag_id, run_id=run_id) from e

    # A conflict comes back as the answer, not as a raised error (the supervisor's client turns the 409
    # into an ErrorResponse; with reset_dag_run it clears the run instead and answers OK).
    if isinstance(response, ErrorResponse):
        if response.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            raise DagRunAlreadyExists(dag_id=dag_id, run_id=run_id)
        raise translate_trigger_error(AirflowRuntimeError(response), dag_id=dag_id, run_id=run_id)

    log.info("Triggered Dag run", dag_id=dag_id, run_id=run_id, reset_dag_run=reset_dag_run)
    return run_id
