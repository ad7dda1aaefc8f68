"""The Dag of the "Child runs" browser test (``tests/e2e/test_child_runs_tab.py``): twelve items, two failing.

``child_runs_fan_out`` is one ``TriggerDagRunsOperator`` of twelve items of ``resume_child``
(``tests/e2e/dags/e2e_resume.py``), items 3 and 8 asking their child to fail; two failures are tolerated,
so the parent succeeds with ten children succeeded and two failed. It passes its conf's ``tag`` on.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

ITEMS, FAILING = 12, (3, 8)

with DAG(
    dag_id="child_runs_fan_out",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    render_template_as_native_obj=True,
    params={"tag": "e2e"},
    tags=["durable-trigger-e2e"],
):
    TriggerDagRunsOperator(
        task_id="trigger_children",
        trigger_dag_id="resume_child",
        confs=[{"fail": item in FAILING, "tag": "{{ params.tag }}", "item": item} for item in range(ITEMS)],
        wait_for_completion=True,
        poke_interval=5,
        tolerated_failures=len(FAILING),
        retries=0,
    )
