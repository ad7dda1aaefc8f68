"""Dags of the ``cancel_on_kill`` scenarios (``tests/e2e/test_cancel_on_kill.py``): a long child, its parents.

``cancel_child`` works for ``sleep`` seconds; ``cancel_sync`` and ``cancel_deferred`` are our durable
operator with ``cancel_on_kill=True`` on each path (connection ``airflow_api_default``, which the test
creates pointing at the Airflow's own API server); ``keep_sync`` is the same without it, and
``cancel_bad_connection`` names a connection that does not exist; ``cancel_fan_out`` is one
``TriggerDagRunsOperator`` task of three children with ``cancel_on_kill=True``. Each passes its conf, ``tag``
included, to its child, so a scenario finds the runs it caused.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-e2e"],
}

with DAG(dag_id="cancel_child", **_DAG_ARGS):

    @task(retries=0)
    def work() -> float:
        seconds = float((get_current_context()["dag_run"].conf or {}).get("sleep", 120))
        time.sleep(seconds)
        return seconds

    work()

PARENTS: dict[str, dict[str, Any]] = {
    "cancel_sync": {"deferrable": False, "cancel_on_kill": True},
    "cancel_deferred": {"deferrable": True, "cancel_on_kill": True},
    "keep_sync": {"deferrable": False, "cancel_on_kill": False},
    "cancel_bad_connection": {
        "deferrable": False,
        "cancel_on_kill": True,
        "airflow_api_conn_id": "no_such_connection",
    },
}
for dag_id, options in PARENTS.items():
    with DAG(dag_id=dag_id, params={"sleep": 120, "tag": "e2e"}, **_DAG_ARGS):
        TriggerDagRunOperator(
            task_id="trigger_child",
            trigger_dag_id="cancel_child",
            conf={"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"},
            wait_for_completion=True,
            poke_interval=5,
            retries=2,
            retry_delay=timedelta(seconds=2),
            **options,
        )

# Three children from one task, each passed the tag, cancelled together.
with DAG(dag_id="cancel_fan_out", params={"sleep": 120, "tag": "e2e"}, **_DAG_ARGS):
    TriggerDagRunsOperator(
        task_id="trigger_children",
        trigger_dag_id="cancel_child",
        confs=[{"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}", "item": item} for item in range(3)],
        wait_for_completion=True,
        poke_interval=5,
        cancel_on_kill=True,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
