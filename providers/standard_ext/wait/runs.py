"""Reading a child Dag run's state through the task's accessors, the same way under every supervisor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowRuntimeError

from standard_ext.wait.progress import TaskProgress
from task_sdk_ext.api_errors import http_status, server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from task_sdk_ext.protocols import TriggeringTaskInstance


#: At most this many run ids in one request about child runs (the shared poller's tick, the fan-out's
#: check): the execution API takes them in the query string, and a few hundred 60-character ids would
#: outgrow the URL length proxies and servers accept. One chunk per tick, not one per 100 due runs, is
#: what keeps the shared poller's requests per tick from growing with the number of waiters.
CHUNK = 100


def state_name(state: object) -> str:
    """The state as a plain string; the accessor is typed ``str`` but answers the API's enum."""
    return str(getattr(state, "value", state))


def child_state(ti: TriggeringTaskInstance, dag_id: str, run_id: str) -> str | None:
    """
    Return the run's state, or ``None`` when the server has no such run.

    :param ti: the task instance whose accessors ask the execution API.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    """
    try:
        return get_state(ti, dag_id, run_id)
    except AirflowRuntimeError as e:
        if http_status(e) == 404:
            return None
        raise


def get_state(ti: TriggeringTaskInstance, dag_id: str, run_id: str) -> str:
    """Return the run's state; any error, a missing run included, is raised as ``AirflowRuntimeError``."""
    with server_errors_as_runtime_errors():
        return state_name(ti.get_dagrun_state(dag_id, run_id))


def task_progress(ti: TriggeringTaskInstance, dag_id: str, run_id: str) -> TaskProgress:
    """Return the run's task instance states (one ``GetTaskStates`` request)."""
    with server_errors_as_runtime_errors():
        answer = ti.get_task_states(dag_id=dag_id, run_ids=[run_id])
    return progress_of(answer.get(run_id, {}))


def progress_of(states: Mapping[str, object]) -> TaskProgress:
    """
    Read one run's part of a ``GetTaskStates`` answer.

    :param states: ``{task_key: state}``; a state may be the API's enum, a string or ``None``.
    """
    return TaskProgress(
        states={key: None if state is None else state_name(state) for key, state in states.items()}
    )
