"""Task SDK extension: ``ti.trigger_dag_run()``, the trigger half that partners ``ti.get_dagrun_state()``."""

from __future__ import annotations

from task_sdk_ext.accessor import trigger_dag_run
from task_sdk_ext.exceptions import (
    DagNotFound,
    DagRunAlreadyExists,
    DagRunTriggerRejected,
    TriggerDagRunError,
)

__all__ = [
    "DagNotFound",
    "DagRunAlreadyExists",
    "DagRunTriggerRejected",
    "TriggerDagRunError",
    "trigger_dag_run",
]
