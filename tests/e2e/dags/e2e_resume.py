"""Dags of the ``auto_clear_failed_tasks`` scenarios (``tests/e2e/test_auto_clear.py``): a child that fails once.

``resume_child`` runs three chained tasks; its second fails on its first try when the conf asks
(``fail``), and succeeds once cleared (its try number is 2 then). ``resume_parent`` is our durable operator
with ``retries=1`` and ``auto_clear_failed_tasks=True``; ``resume_fan_out`` and ``resume_fan_out_off`` are
one ``TriggerDagRunsOperator`` of eight items, items 2 and 5 failing once, with the option and without
it. They clear through the connection ``airflow_api_default``, which the tests create. Each passes its
conf, ``tag`` included, to its children, so a scenario finds the runs it caused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-e2e"],
}
ITEMS, FAILING = 8, (2, 5)

with DAG(dag_id="resume_child", **_DAG_ARGS):

    @task(retries=0)
    def first() -> None:
        pass

    @task(retries=0)
    def second() -> None:
        context = get_current_context()
        if (context["dag_run"].conf or {}).get("fail") and context["ti"].try_number == 1:
            raise RuntimeError("second fails on its first try")

    @task(retries=0)
    def third() -> None:
        pass

    first() >> second() >> third()

with DAG(dag_id="resume_parent", params={"tag": "e2e"}, **_DAG_ARGS):
    TriggerDagRunOperator(
        task_id="trigger_child",
        trigger_dag_id="resume_child",
        conf={"fail": True, "tag": "{{ params.tag }}"},
        wait_for_completion=True,
        poke_interval=5,
        auto_clear_failed_tasks=True,
        retries=1,
        retry_delay=timedelta(seconds=2),
    )

for dag_id, auto_clear in (("resume_fan_out", True), ("resume_fan_out_off", False)):
    with DAG(dag_id=dag_id, params={"tag": "e2e"}, **_DAG_ARGS):
        TriggerDagRunsOperator(
            task_id="trigger_children",
            trigger_dag_id="resume_child",
            confs=[
                {"fail": item in FAILING, "tag": "{{ params.tag }}", "item": item} for item in range(ITEMS)
            ],
            wait_for_completion=True,
            poke_interval=5,
            auto_clear_failed_tasks=auto_clear,
            retries=1,
            retry_delay=timedelta(seconds=2),
        )
