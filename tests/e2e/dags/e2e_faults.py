"""Dags of the coordinator-fault scenarios (``tests/e2e/test_faults*.py``): a child and its durable parents.

``fault_child`` works for ``sleep`` seconds and, like most production tasks, has retries: an outage of
the api-server can end one of its tries (its supervisor gives up after three failed heartbeats), which
Airflow retries within the same child run, so the child run count still says whether a parent
duplicated it. ``fault_sync`` and ``fault_deferred`` are our operator at its defaults (``durable=True``)
on the synchronous and the deferrable path, with the ``poke_interval`` and retries of a short pipeline.
Each passes its conf, ``tag`` included, to its child, so a scenario finds the runs it caused.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-e2e"],
}
_RETRIES: dict[str, Any] = {"retries": 3, "retry_delay": timedelta(seconds=2)}

with DAG(dag_id="fault_child", **_DAG_ARGS):

    @task(retries=3, retry_delay=timedelta(seconds=2))
    def work() -> float:
        seconds = float((get_current_context()["dag_run"].conf or {}).get("sleep", 30))
        time.sleep(seconds)
        return seconds

    work()

for dag_id, deferrable in (("fault_sync", False), ("fault_deferred", True)):
    with DAG(dag_id=dag_id, params={"sleep": 30, "tag": "e2e"}, **_DAG_ARGS):
        TriggerDagRunOperator(
            task_id="trigger_child",
            trigger_dag_id="fault_child",
            conf={"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"},
            wait_for_completion=True,
            deferrable=deferrable,
            poke_interval=5,
            **_RETRIES,
        )
