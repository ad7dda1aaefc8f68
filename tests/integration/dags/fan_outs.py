"""
Parents that fan out to the child Dag with ``TriggerDagRunsOperator``: synchronous, deferred, and mapped.

A test's ``ChildFinisher`` plays the scheduler for the child runs, which ``dag.test()`` never runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from tests.integration.names import CHILD

TASK_ID = "fan_out"
ITEMS = [{"item": i} for i in range(4)]
# Two chunks of a fan-out too wide for one task, one mapped task instance each.
CHUNKS = [[{"item": 0}, {"item": 1}], [{"item": 2}]]


def _parent(dag_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, catchup=False, default_args={"retry_delay": timedelta(seconds=1)}) as dag:

        @task
        def items() -> list[dict[str, Any]]:
            return ITEMS

        # confs from an upstream task's return value: an XComArg, resolved when the task is rendered.
        TriggerDagRunsOperator(
            task_id=TASK_ID,
            trigger_dag_id=CHILD,
            confs=items(),
            max_active=2,
            wait_for_completion=True,
            poke_interval=1,
            **kwargs,
        )
    return dag


fan_out_sync = _parent("fan_out__sync")
fan_out_deferrable = _parent("fan_out__deferrable", deferrable=True)

with DAG("fan_out__mapped", schedule=None, catchup=False) as fan_out_mapped:

    @task
    def chunks() -> list[list[dict[str, Any]]]:
        return CHUNKS

    TriggerDagRunsOperator.partial(
        task_id=TASK_ID,
        trigger_dag_id=CHILD,
        max_active=1,
        wait_for_completion=True,
        deferrable=True,
        poke_interval=1,
    ).expand(confs=chunks())

with DAG("fan_out__from_mapped_task", schedule=None, catchup=False) as fan_out_from_mapped_task:

    @task
    def conf_of(item: int) -> dict[str, Any]:
        return {"item": item}

    # A mapped task's output: confs renders to a LazyXComSequence, neither a list nor a tuple.
    TriggerDagRunsOperator(
        task_id=TASK_ID,
        trigger_dag_id=CHILD,
        confs=conf_of.expand(item=[item["item"] for item in ITEMS]),
        wait_for_completion=True,
        poke_interval=1,
    )
