"""Example Dag ``example_parent_stock``: the stock TriggerDagRunOperator triggers ``example_child`` and waits.

It shows the comparison case for ``example_parent_durable``: when this task's process dies mid-wait, the
retry cannot know which child run it started, so it triggers a second one. Run conf / params:
``sleep``, ``fail``, ``value`` and ``tag`` are passed on to the child (see ``example_child``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag


# [START howto_operator_trigger_dagrun_stock]
@dag(
    dag_id="example_parent_stock",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"sleep": 5, "fail": False, "value": "done", "tag": "example"},
    # Native rendering keeps ``sleep`` an int and ``fail`` a bool in the child's conf.
    render_template_as_native_obj=True,
    tags=["durable-trigger-example"],
)
def example_parent_stock() -> None:
    TriggerDagRunOperator(
        task_id="trigger_child",
        trigger_dag_id="example_child",
        conf={
            "sleep": "{{ params.sleep }}",
            "fail": "{{ params.fail }}",
            "value": "{{ params.value }}",
            "tag": "{{ params.tag }}",
        },
        wait_for_completion=True,
        poke_interval=1,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )


example_parent_stock()
# [END howto_operator_trigger_dagrun_stock]
