"""Example Dag ``example_fan_out_mapped``: our durable, deferrable TriggerDagRunOperator, mapped over confs.

It shows a fan-out as a mapped task: ``build_confs`` makes ``count`` confs (default 10) and the operator
is expanded over them, so one ``example_child`` run starts per item. Each mapped task triggers its
child, then defers: the wait happens in the triggerer, where all of them share one poll of the
``example_child`` Dag, so the fan-out may be wider than the worker slots (a synchronous wait holds a
slot per parent, and with every slot held no child can start). Each mapped task keeps its own child run
id in its own state store (the store is per map index), so a crash of any of them before it defers
reconnects only that one. Run conf / params: ``count``, ``sleep`` (each child's), ``tag`` (copied into
every child's conf).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator


# [START howto_fan_out_mapped]
@dag(
    dag_id="example_fan_out_mapped",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"count": 10, "sleep": 5, "tag": "example"},
    tags=["durable-trigger-example"],
)
def example_fan_out_mapped() -> None:
    @task
    def build_confs() -> list[dict[str, Any]]:
        params = get_current_context()["params"]
        return [
            {"sleep": params["sleep"], "tag": params["tag"], "item": item, "value": item}
            for item in range(int(params["count"]))
        ]

    TriggerDagRunOperator.partial(
        task_id="trigger_children",
        trigger_dag_id="example_child",
        wait_for_completion=True,
        deferrable=True,
        durable=True,
        poke_interval=1,
        retries=2,
        retry_delay=timedelta(seconds=2),
    ).expand(conf=build_confs())


example_fan_out_mapped()
# [END howto_fan_out_mapped]
