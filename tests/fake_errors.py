"""The errors a task sees from the execution API, built as the supervisor forwards them."""

from __future__ import annotations

import httpx
from airflow.sdk.api.client import ServerResponseError
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import ErrorResponse


def api_error(status_code: int, reason: str, message: str) -> AirflowRuntimeError:
    """The error a task sees when the execution API answers ``status_code`` (as the supervisor forwards it)."""
    return AirflowRuntimeError(
        ErrorResponse(
            error=ErrorType.API_SERVER_ERROR,
            detail={
                "status_code": status_code,
                "message": f"Server returned error {status_code}",
                "detail": {"detail": {"reason": reason, "message": message}},
            },
        )
    )


def connection_refused() -> AirflowRuntimeError:
    """What a task sees when the API server did not answer at all, after the supervisor's client retried."""
    return AirflowRuntimeError(
        ErrorResponse(
            error=ErrorType.API_SERVER_ERROR,
            detail={
                "status_code": None,
                "message": "All connection attempts failed",
                "exception_type": "ConnectError",
            },
        )
    )


def as_server_response_error(error: AirflowRuntimeError) -> ServerResponseError:
    """The same API error as the in-process supervisor lets it through: the HTTP client's exception."""
    detail = error.error.detail or {}
    request = httpx.Request("GET", "http://in-process/execution/dag-runs")
    response = httpx.Response(detail["status_code"], json=detail["detail"], request=request)
    return ServerResponseError(detail["message"], request=request, response=response)
