"""
``ours__saved_run``: a durable parent whose ``trigger`` task finds a record left by an "earlier try".

``dag.test()`` creates the parent's run itself (replacing any run with the same logical date, and the
task state with it), so the record cannot be written before the test starts. The upstream task
``save_record`` writes it instead, once the run exists: the record a try of ``trigger`` saves before it
triggers, naming the child run given in the parent's conf. It writes through the metadata-database
state backend, the one the REST API's ``PUT .../taskInstances/{task_id}/state-store/{key}`` uses; tasks
can only reach their own store, and this is another task's. That works only in-process, where a task can
reach the database.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.integration.names import CHILD

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

SAVED_RUN_DAG = "ours__saved_run"
TASK_ID = "trigger"
# The parent's conf key naming the child run the record points at.
CHILD_RUN_ID_KEY = "child_run_id"
RETRIES = 1


def save_record(dag_run: DagRunProtocol) -> None:
    # Core imports, inside the task: only this in-process test reaches the database from a task.
    from airflow._shared.state import TaskScope
    from airflow.state.metastore import MetastoreBackend

    conf = dag_run.conf or {}
    record = {
        "dag_id": CHILD,
        "run_id": conf[CHILD_RUN_ID_KEY],
        # What a try saves: the task instance's max_tries, which is its retries until someone clears it.
        "max_tries": RETRIES,
    }
    scope = TaskScope(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=TASK_ID)
    MetastoreBackend().set(scope, TriggerDagRunOperator.external_id_key, json.dumps(record))


with DAG(
    SAVED_RUN_DAG,
    schedule=None,
    catchup=False,
    default_args={"retry_delay": timedelta(seconds=1)},
) as saved_run:
    saving = PythonOperator(task_id="save_record", python_callable=save_record)
    triggering = TriggerDagRunOperator(
        task_id=TASK_ID,
        trigger_dag_id=CHILD,
        wait_for_completion=True,
        durable=True,
        poke_interval=1,
        retries=RETRIES,
    )
    saving >> triggering
