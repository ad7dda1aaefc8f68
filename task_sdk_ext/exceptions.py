"""Errors raised by ``ti.trigger_dag_run()``: each names the Dag and run it concerns."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class TriggerDagRunError(AirflowException):
    """
    The execution API refused to trigger a Dag run.

    It keeps the server's answer: ``http_status`` (the HTTP status code), ``reason`` (the machine-readable reason the
    trigger route gives, such as ``import_errors``) and ``message``.
    """

    def __init__(
        self,
        *,
        dag_id: str,
        run_id: str,
        message: str,
        http_status: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.message = message
        self.http_status = http_status
        self.reason = reason
        super().__init__(message)

    def __str__(self) -> str:
        where = f"Dag {self.dag_id!r}, run {self.run_id!r}"
        status = f" (HTTP {self.http_status}, reason {self.reason!r})" if self.http_status else ""
        return f"Could not trigger {where}{status}: {self.message}"


class DagNotFound(TriggerDagRunError):
    """No such Dag, or the Dag is stale (its file is gone)."""


class DagRunTriggerRejected(TriggerDagRunError):
    """
    The Dag exists but will not take this run.

    ``reason`` is the server's: ``import_errors`` (the Dag file does not parse), ``denied_run_type`` (the
    Dag forbids operator-triggered runs), ``value_error`` (for example a logical date before the Dag's
    start date).
    """


class DagRunAlreadyExists(TriggerDagRunError):
    """
    A run with this run id, or with this logical date, already exists, and ``reset_dag_run`` was not asked for.

    The execution API answers both with a 409 (a logical date held by another run breaks the
    ``dag_run_dag_id_logical_date_key`` unique constraint), and the Task SDK's client reports either as
    "already exists": ``ti.get_dagrun_state(dag_id, run_id)`` tells them apart.
    """

    def __init__(self, *, dag_id: str, run_id: str) -> None:
        super().__init__(
            dag_id=dag_id,
            run_id=run_id,
            message="a run with this run id, or with this logical date, already exists",
            http_status=409,
            reason="already_exists",
        )
