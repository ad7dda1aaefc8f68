"""
Execution-API errors as a task sees them: one shape under every supervisor, and named trigger errors.

The helpers that read and translate what the server answered; the exceptions ``trigger_dag_run()``
raises, which users catch, are defined in :mod:`task_sdk_ext.exceptions`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowRuntimeError

from task_sdk_ext.exceptions import DagNotFound, DagRunTriggerRejected, TriggerDagRunError

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def server_errors_as_runtime_errors() -> Iterator[None]:
    """
    Raise an execution-API error the same way whichever supervisor the task runs under.

    Under the real supervisor a failed request reaches the task as ``AirflowRuntimeError``; under the
    in-process one that ``dag.test()`` and ``airflow dags test`` use, the API client's
    ``ServerResponseError`` arrives unchanged. This turns the second into the first, with the ``detail``
    the real supervisor builds (``status_code``, ``message``, ``detail``), so one ``except`` serves both.
    """
    # Imported here: the plugin loads this module in every Airflow process, most of which never call it.
    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    try:
        yield
    except ServerResponseError as e:
        try:
            body = e.response.json()
        except ValueError:
            body = None
        detail = {"status_code": e.response.status_code, "message": str(e), "detail": body}
        raise AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail=detail)) from e


def http_status(error: AirflowRuntimeError) -> int | None:
    """The HTTP status the execution API answered with, if the error came from it."""
    status = (error.error.detail or {}).get("status_code")
    return status if isinstance(status, int) else None


def is_transient(error: AirflowRuntimeError) -> bool:
    """
    Whether the request failed for the server's sake, so the same request may succeed later.

    The supervisor's client retries such failures itself (connection errors, timeouts, 5xx) before it
    gives up; one that reaches the task carries the 5xx status, or none when no answer came at all.
    """
    from airflow.sdk.exceptions import ErrorType

    if error.error.error != ErrorType.API_SERVER_ERROR:
        return False
    status = http_status(error)
    return status is None or status >= 500


def _server_reason(detail: dict[str, Any]) -> tuple[str | None, str | None]:
    """
    Return ``(reason, message)`` from the body the trigger route answered with.

    The supervisor forwards the body as ``detail["detail"]``; FastAPI wraps an ``HTTPException`` detail
    in ``{"detail": ...}``, which is ``{"reason": ..., "message": ...}`` on this route and a list of
    validation errors on a 422.
    """
    body = detail.get("detail")
    inner = body.get("detail") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        reason, message = inner.get("reason"), inner.get("message")
        return (str(reason) if reason else None, str(message) if message else None)
    if inner is not None:
        return None, str(inner)
    return None, None


# How the execution API's clear route words a run id no run holds (routes/dag_runs.py, clear_dag_run).
RUN_NOT_FOUND = "Dag run with run_id: "


def translate_trigger_error(
    error: AirflowRuntimeError, *, dag_id: str, run_id: str
) -> AirflowRuntimeError | TriggerDagRunError:
    """
    Map a failed ``TriggerDagRun`` request to the exception ``trigger_dag_run()`` raises.

    404 is an unknown or stale Dag, or, with ``reset_dag_run``, a logical date another run holds (the
    client's reset finds no run to clear); 400 a Dag that will not take the run (its reason kept); anything
    else from the server keeps its status code and message. Errors that did not come from the server
    (the supervisor's own failures) are returned unchanged, so their cause is not hidden.
    """
    from airflow.sdk.exceptions import ErrorType

    if error.error.error != ErrorType.API_SERVER_ERROR or not error.error.detail:
        return error
    detail = error.error.detail
    status = http_status(error)
    reason, message = _server_reason(detail)
    message = message or str(detail.get("message") or error)
    kwargs: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "message": message,
        "http_status": status,
        "reason": reason,
    }
    if status == 404 and message.startswith(RUN_NOT_FOUND):
        # The route's 409 with reset_dag_run: the client clears the run id, which no run holds, so the
        # conflict was the logical date, held by a run under another id that a reset does not touch.
        kwargs["message"] = (
            f"{message}: another run of the Dag holds this logical date, and reset_dag_run resets only a run "
            "with this run id (Airflow keeps one run per Dag and logical date)"
        )
        return TriggerDagRunError(**kwargs)
    if status == 404:
        return DagNotFound(**kwargs)
    if status == 400:
        return DagRunTriggerRejected(**kwargs)
    return TriggerDagRunError(**kwargs)
