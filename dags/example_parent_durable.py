"""Example Dag ``example_parent_durable``: our TriggerDagRunOperator triggers ``example_child`` durably.

It shows the one-line change from the stock operator (the import) and the ``durable`` switch. The child
run id is saved in the task's state store before the trigger, so when this task's process (or its whole
worker) dies mid-wait, the retry reconnects to the same child run instead of starting a second one. Run
conf / params: ``sleep``, ``fail``, ``value`` and ``tag`` are passed on to the child.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag

# [START howto_import_swap]
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

# [END howto_import_swap]


# [START howto_operator_trigger_dagrun_durable]
@dag(
    dag_id="example_parent_durable",
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
def example_parent_durable() -> None:
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
        durable=True,
        poke_interval=1,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )


example_parent_durable()
# [END howto_operator_trigger_dagrun_durable]
