"""Parents with ``auto_clear_failed_tasks=True`` under dag.test(): they sign in before the trigger, then run as usual."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from tests.integration.names import CHILD

TASK_ID = "trigger"
MISSING_CONNECTION = "no_such_connection"
_DAG_ARGS = {"schedule": None, "start_date": datetime(2025, 1, 1), "catchup": False}


def _single(dag_id: str, **kwargs: object) -> DAG:
    with DAG(dag_id=dag_id, **_DAG_ARGS) as dag:  # type: ignore[arg-type]
        TriggerDagRunOperator(
            task_id=TASK_ID,
            trigger_dag_id=CHILD,
            wait_for_completion=True,
            poke_interval=1,
            auto_clear_failed_tasks=True,
            **kwargs,  # type: ignore[arg-type]
        )
    return dag


synchronous = _single("resuming_sync")
deferrable = _single("resuming_deferrable", deferrable=True)
missing_connection = _single("resuming_missing_connection", airflow_api_conn_id=MISSING_CONNECTION)

with DAG(dag_id="resuming_fan_out", **_DAG_ARGS) as fan_out:  # type: ignore[arg-type]
    TriggerDagRunsOperator(
        task_id=TASK_ID,
        trigger_dag_id=CHILD,
        confs=[{"item": 0}, {"item": 1}],
        wait_for_completion=True,
        poke_interval=1,
        auto_clear_failed_tasks=True,
    )
