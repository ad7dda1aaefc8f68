"""The children the docs' complete examples trigger, under the ids the examples give them."""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from tests.integration.names import DOCS_CHILDREN

for _dag_id, _task_ids in DOCS_CHILDREN.items():
    with DAG(_dag_id, schedule=None, catchup=False):
        for _task_id in _task_ids:
            EmptyOperator(task_id=_task_id)
