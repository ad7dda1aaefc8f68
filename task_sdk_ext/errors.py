"""Turn the execution API's answer to a refused trigger into an exception that names the Dag and run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from task_sdk_ext.exceptions import DagNotFound, DagRunTriggerRejected, TriggerDagRunError

if TYPE_CHECKING:
    from airflow.sdk.exceptions import AirflowRuntimeError


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


def translate_trigger_error(
    error: AirflowRuntimeError, *, dag_id: str, run_id: str
) -> AirflowRuntimeError | TriggerDagRunError:
    """
    Map a failed ``TriggerDagRun`` request to the exception ``trigger_dag_run()`` raises.

    404 is an unknown or stale Dag; 400 a Dag that will not take the run (its reason kept); anything
    else from the server keeps its status code and message. Errors that did not come from the server
    (the supervisor's own failures) are returned unchanged, so their cause is not hidden.
    """
    from airflow.sdk.exceptions import ErrorType

    if error.error.error != ErrorType.API_SERVER_ERROR or not error.error.detail:
        return error
    detail = error.error.detail
    http_status = detail.get("status_code")
    reason, message = _server_reason(detail)
    message = message or str(detail.get("message") or error)
    kwargs: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "message": message,
        "http_status": http_status,
        "reason": reason,
    }
    if http_status == 404:
        return DagNotFound(**kwargs)
    if http_status == 400:
        return DagRunTriggerRejected(**kwargs)
    return TriggerDagRunError(**kwargs)
