"""
The Dags the parents trigger. Nothing runs their tasks under ``dag.test()``: a test's ``ChildFinisher``
plays the scheduler and sets each new run to a final state.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task

from tests.integration.names import CHILD, PAUSED_CHILD, RESULTS_CHILD, WIDE_CHILD

with DAG(CHILD, schedule=None, catchup=False) as child:
    EmptyOperator(task_id="work")

# Paused from its creation (the session's default leaves Dags unpaused), for fail_when_dag_is_paused.
with DAG(PAUSED_CHILD, schedule=None, catchup=False, is_paused_upon_creation=True) as paused_child:
    EmptyOperator(task_id="work")

# A child with results: one task, one mapped over a literal list (expanded when the run is created).
with DAG(RESULTS_CHILD, schedule=None, catchup=False) as results_child:

    @task
    def answer() -> None: ...

    @task
    def shard(item: int) -> None: ...

    answer()
    shard.expand(item=[0, 1, 2])

# A child too large to read every task state at each check: 150 mapped instances, expanded at creation.
WIDE = 150
with DAG(WIDE_CHILD, schedule=None, catchup=False) as wide_child:

    @task
    def part(item: int) -> None: ...

    part.expand(item=list(range(WIDE)))
