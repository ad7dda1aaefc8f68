"""Example Dag ``example_fan_out``: one TriggerDagRunsOperator task triggers ``example_child`` per item.

It shows the one-task fan-out: ``build_confs`` makes ``count`` confs (default 10); the one task
``trigger_children`` triggers a run of ``example_child`` for each, at most 4 of them at a time
(``max_active``; a new one starts as one ends), and waits for all of them in the triggerer, resuming
only to start the next items. Every run id is saved in the task's state store before the first trigger:
a retry reconnects to the runs still going, keeps the ones that succeeded, and triggers again only the
items whose run failed. Its return value is each child's ``work`` result (its conf's ``value``), in item
order. Run conf / params: ``count``, ``sleep`` (each child's), ``tag`` (copied into every child's conf).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator


# [START howto_operator_trigger_dagruns]
@dag(
    dag_id="example_fan_out",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"count": 10, "sleep": 5, "tag": "example"},
    render_template_as_native_obj=True,
    tags=["durable-trigger-example"],
)
def example_fan_out() -> None:
    @task
    def build_confs() -> list[dict[str, Any]]:
        params = get_current_context()["params"]
        return [
            {"sleep": params["sleep"], "tag": params["tag"], "item": item, "value": item}
            for item in range(int(params["count"]))
        ]

    TriggerDagRunsOperator(
        task_id="trigger_children",
        trigger_dag_id="example_child",
        confs=build_confs(),
        max_active=4,
        result_task_ids=["work"],
        wait_for_completion=True,
        deferrable=True,
        poke_interval=5,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )


example_fan_out()
# [END howto_operator_trigger_dagruns]
