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
