"""The shared poller's execution-API requests, each on a worker thread of its own and bounded in time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from airflow.sdk.exceptions import AirflowRuntimeError
from asgiref.sync import sync_to_async

from standard_ext.durable.decision import ACTIVE_STATES
from standard_ext.wait.runs import progress_of, state_name
from task_sdk_ext.api_errors import http_status, server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from standard_ext.wait.progress import TaskProgress

T = TypeVar("T")

#: How long the poller waits for one answer before it gives up on it and asks again at its next tick.
#: A healthy answer takes milliseconds. The supervisor's client gives each HTTP attempt
#: ``[workers] execution_api_timeout`` (5 s by default) and retries a failed one after a short, growing
#: wait, so 30 s lets a request ride out a blip of a few attempts and still answer. Longer than that the
#: request is taken as hung: waiting on would hold that Dag's poll for as long, while asking afresh a
#: second later costs one request. It is also half the default ``poke_interval`` (60 s), so a hang delays
#: a check by less than the longest step between two checks. Read at each request, so tests can shorten
#: it (the loop's monotonic clock runs it, which time-machine leaves real).
REQUEST_TIMEOUT_SECONDS = 30.0


class RequestTimedOut(TimeoutError):
    """The execution API did not answer within :data:`REQUEST_TIMEOUT_SECONDS`; ask again later."""


# The errors that mean "no answer this time": the poller asks again at its next tick. Anything else is a
# fault on this side, which a retry would only hide.
UNANSWERED = (AirflowRuntimeError, RequestTimedOut)


def status_of(error: BaseException) -> int | None:
    """
    Return the HTTP status the execution API answered with, or ``None`` (no answer, or not the API's).

    :param error: what a request raised.
    """
    return http_status(error) if isinstance(error, AirflowRuntimeError) else None


async def _ask(call: Callable[[], T], *, what: str) -> T:
    # thread_sensitive=False: a worker thread of the loop's default executor per request, not the one
    # thread every sync_to_async call of the process shares, so a hung request holds up only its own
    # poller. Concurrent requests are safe: the triggerer's comms match answers to requests by frame id.
    timeout = REQUEST_TIMEOUT_SECONDS
    try:
        return await asyncio.wait_for(sync_to_async(call, thread_sensitive=False)(), timeout)
    except TimeoutError:
        # The thread cannot be stopped: it ends when its answer comes, which nobody waits for any more.
        raise RequestTimedOut(f"The execution API did not answer the {what} within {timeout} s") from None


async def count_active(*, dag_id: str, run_ids: list[str]) -> int:
    """
    Return how many of ``run_ids`` are ``queued`` or ``running`` (one ``GetDRCount`` request).

    :param dag_id: the child Dag.
    :param run_ids: its runs to count.
    :raises AirflowRuntimeError: the API answered with an error.
    :raises RequestTimedOut: it did not answer in time.
    """

    def call() -> int:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        with server_errors_as_runtime_errors():
            return RuntimeTaskInstance.get_dr_count(
                dag_id=dag_id, run_ids=run_ids, states=sorted(ACTIVE_STATES)
            )

    return await _ask(call, what="count of active runs")


async def read_state(*, dag_id: str, run_id: str) -> str:
    """
    Return the run's state (one ``GetDagRunState`` request).

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :raises AirflowRuntimeError: the API answered with an error; a 404 when there is no such run.
    :raises RequestTimedOut: it did not answer in time.
    """

    def call() -> str:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        with server_errors_as_runtime_errors():
            return state_name(RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id))

    return await _ask(call, what="run's state")


async def read_task_states(*, dag_id: str, run_ids: list[str]) -> dict[str, TaskProgress]:
    """
    Return each run's task states (one ``GetTaskStates`` request for all of them).

    :param dag_id: the child Dag.
    :param run_ids: its runs.
    :raises AirflowRuntimeError: the API answered with an error.
    :raises RequestTimedOut: it did not answer in time.
    """

    def call() -> dict[str, TaskProgress]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        with server_errors_as_runtime_errors():
            answer = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=run_ids)
        return {run_id: progress_of(answer.get(run_id, {})) for run_id in run_ids}

    return await _ask(call, what="task states")
