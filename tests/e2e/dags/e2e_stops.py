"""Dags of the stop scenarios (``tests/e2e/test_stops*.py``): a child, and parents stopped in three ways.

``stops_child`` works for ``sleep`` seconds and, like ``fault_child``, has retries: an outage of the
api-server can end one of its tries, which Airflow retries within the same child run, so the child run
count still says whether a parent duplicated an item.

``stops_sync_fan_out`` is a synchronous ``TriggerDagRunsOperator`` of 24 items, 4 active at a time,
without ``cancel_on_kill``: the test marks it failed mid-way. ``stops_deferred_fan_out`` and
``stops_rest_outage_fan_out`` are deferred ones of 12 items, 4 active at a time (so they resume several
times), with ``cancel_on_kill``: the tests stop the api-server, or the REST API alone, as they resume.
``stops_deferred_timeout`` is the deferred durable single operator with ``cancel_on_kill``, no retries and
a 20 s ``execution_timeout``, waiting on a 120 s child.

Those with ``cancel_on_kill`` sign in as the ``USER``-role user ``trigger-bot`` (``tests/e2e/settings.py``),
not as admin, through connections the tests create: ``airflow_api_least_privilege`` (the Airflow's own API
server) and ``airflow_api_rest_only`` (an api-server serving the REST API only). Each parent passes its
conf's ``tag`` to its children, so a scenario finds the runs it caused.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

CHILD_DAG = "stops_child"
CONN_ID = "airflow_api_least_privilege"
# The same user, signing in to an api-server that serves the REST API only (``--apps core``).
REST_ONLY_CONN_ID = "airflow_api_rest_only"

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-e2e"],
}

with DAG(dag_id=CHILD_DAG, **_DAG_ARGS):

    @task(retries=3, retry_delay=timedelta(seconds=2))
    def work() -> float:
        seconds = float((get_current_context()["dag_run"].conf or {}).get("sleep", 2))
        time.sleep(seconds)
        return seconds

    work()


def _confs(count: int) -> list[dict[str, Any]]:
    return [{"item": item, "sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"} for item in range(count)]


with DAG(dag_id="stops_sync_fan_out", params={"sleep": 2, "tag": "e2e"}, **_DAG_ARGS):
    TriggerDagRunsOperator(
        task_id="trigger_items",
        trigger_dag_id=CHILD_DAG,
        confs=_confs(24),
        max_active=4,
        wait_for_completion=True,
        deferrable=False,
        cancel_on_kill=False,
        poke_interval=2,
        retries=0,
    )

# Both have the retries of a production pipeline: the api-server's outage ends the resumed try whatever the
# operator does (the task runner's own requests fail first), and a resume that follows another quickly can
# be failed by Airflow's stale defer-exit race (docs/deferrable.md); durable, a retry carries on.
DEFERRED_FAN_OUTS = (("stops_deferred_fan_out", CONN_ID), ("stops_rest_outage_fan_out", REST_ONLY_CONN_ID))
for dag_id, conn_id in DEFERRED_FAN_OUTS:
    with DAG(dag_id=dag_id, params={"sleep": 3, "tag": "e2e"}, **_DAG_ARGS):
        TriggerDagRunsOperator(
            task_id="trigger_items",
            trigger_dag_id=CHILD_DAG,
            confs=_confs(12),
            max_active=4,
            wait_for_completion=True,
            deferrable=True,
            cancel_on_kill=True,
            airflow_api_conn_id=conn_id,
            poke_interval=5,
            retries=3,
            retry_delay=timedelta(seconds=5),
        )

with DAG(dag_id="stops_deferred_timeout", params={"sleep": 120, "tag": "e2e"}, **_DAG_ARGS):
    TriggerDagRunOperator(
        task_id="trigger_child",
        trigger_dag_id=CHILD_DAG,
        conf={"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"},
        wait_for_completion=True,
        deferrable=True,
        durable=True,
        cancel_on_kill=True,
        airflow_api_conn_id=CONN_ID,
        poke_interval=5,
        execution_timeout=timedelta(seconds=20),
        retries=0,
    )
