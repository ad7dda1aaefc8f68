"""Dags whose ``@task`` calls ``ti.trigger_dag_run()``, the accessor the ``task_sdk_ext`` plugin installs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import dag, get_current_context, task

from tests.integration.names import CHILD

if TYPE_CHECKING:
    from task_sdk_ext.protocols import TriggeringTaskInstance

TRIGGER_DAG = "accessor_trigger"
UNKNOWN_DAG = "accessor_unknown_dag"
TASK_ID = "call"
CONF = {"rows": 3, "source": "accessor"}
MISSING_DAG_ID = "no_such_dag"


def _ti() -> TriggeringTaskInstance:
    # The plugin adds trigger_dag_run to the task instance's class at run time; mypy cannot see it.
    return cast("TriggeringTaskInstance", get_current_context()["ti"])


@dag(dag_id=TRIGGER_DAG, schedule=None, catchup=False)
def accessor_trigger() -> None:
    @task(task_id=TASK_ID)
    def call() -> str:
        return _ti().trigger_dag_run(CHILD, conf=CONF)

    call()


@dag(dag_id=UNKNOWN_DAG, schedule=None, catchup=False)
def accessor_unknown_dag() -> None:
    @task(task_id=TASK_ID)
    def call() -> dict[str, Any]:
        # Report what was raised instead of failing, so the test can name it; anything else fails the task.
        try:
            _ti().trigger_dag_run(MISSING_DAG_ID)
        except Exception as error:
            return {
                "type": f"{type(error).__module__}.{type(error).__qualname__}",
                "dag_id": getattr(error, "dag_id", None),
                "http_status": getattr(error, "http_status", None),
            }
        raise RuntimeError(f"trigger_dag_run({MISSING_DAG_ID!r}) raised nothing")

    call()


trigger_dag = accessor_trigger()
unknown_dag = accessor_unknown_dag()
