"""
The Dags the parents trigger. Nothing runs their tasks under ``dag.test()``: a test's ``ChildFinisher``
plays the scheduler and sets each new run to a final state.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from tests.integration.names import CHILD, PAUSED_CHILD

with DAG(CHILD, schedule=None, catchup=False) as child:
    EmptyOperator(task_id="work")

# Paused from its creation (the session's default leaves Dags unpaused), for fail_when_dag_is_paused.
with DAG(PAUSED_CHILD, schedule=None, catchup=False, is_paused_upon_creation=True) as paused_child:
    EmptyOperator(task_id="work")
