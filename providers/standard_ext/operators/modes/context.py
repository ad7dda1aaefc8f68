"""What the operator's modes read from the task context and from the external id they pass around."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context
    from pydantic import JsonValue

    from task_sdk_ext.protocols import TriggeringTaskInstance


def triggering_ti(context: Context) -> TriggeringTaskInstance:
    """The running task instance, with the accessors the ``task_sdk_ext`` plugin installs."""
    # ti.trigger_dag_run is installed by the plugin, which the type checker cannot see.
    return cast("TriggeringTaskInstance", context["ti"])


def ids_of(external_id: JsonValue) -> tuple[str, str]:
    """The ``(dag_id, run_id)`` of a ``{"dag_id", "run_id"}`` record."""
    if not isinstance(external_id, dict):
        raise AirflowException(f"Expected a {{'dag_id', 'run_id'}} record, got {external_id!r}")
    return str(external_id["dag_id"]), str(external_id["run_id"])


def require_context(context: Context, *, task_id: str, durable: bool) -> None:
    """
    Name what is missing when ``execute()`` is called without Airflow's task context.

    :param context: what ``execute()`` was given.
    :param task_id: the task, named in the error.
    :param durable: whether the task needs its ``task_state_store`` too.
    :raises ValueError: a key the task needs is missing, before anything is sent.
    """
    needed = ["ti", "task_state_store"] if durable else ["ti"]
    if missing := [key for key in needed if key not in context]:
        raise ValueError(
            f"Task {task_id!r}: execute() needs Airflow's task context, which has no "
            f"{', '.join(repr(key) for key in missing)}; run the task through Airflow "
            "(a Dag run, dag.test() or airflow tasks test) rather than calling execute() directly"
        )
