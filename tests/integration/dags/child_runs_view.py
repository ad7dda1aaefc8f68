"""Parents whose task instances the "Child runs" route reads (``tests/integration/test_child_runs_route.py``)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from tests.integration.names import CHILD

TASK_ID = "trigger"
ITEMS = 12
_DAG_ARGS = {"schedule": None, "start_date": datetime(2025, 1, 1), "catchup": False}

# Twelve children, not waited for: the test sets their states as a scheduler would.
with DAG(dag_id="child_runs_fan_out", **_DAG_ARGS) as fan_out:  # type: ignore[arg-type]
    TriggerDagRunsOperator(
        task_id=TASK_ID,
        trigger_dag_id=CHILD,
        confs=[{"item": item} for item in range(ITEMS)],
        logical_date=None,
    )

with DAG(dag_id="child_runs_single", **_DAG_ARGS) as single:  # type: ignore[arg-type]
    TriggerDagRunOperator(task_id=TASK_ID, trigger_dag_id=CHILD, conf={"rows": 3}, logical_date=None)

with DAG(dag_id="child_runs_other", **_DAG_ARGS) as other:  # type: ignore[arg-type]

    @task(task_id=TASK_ID)
    def work() -> int:
        return 1

    work()
