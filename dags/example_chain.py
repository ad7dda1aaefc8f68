"""Example Dags ``example_chain_a`` -> ``example_chain_b`` -> ``example_chain_c``: a chain of durable links.

It shows durable trigger-and-wait nested: ``example_chain_a`` and ``example_chain_b`` each trigger the
next link with ``durable=True, wait_for_completion=True`` and pass their own run conf on, adding their
dag id to ``path``; ``example_chain_c`` does the work like ``example_child`` (conf ``sleep``, ``fail``,
``value``; ``tag`` only labels the runs). A crash in any link's wait reconnects to the run it already
started, so every link below it runs exactly once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, result, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

_PARAMS: dict[str, Any] = {"sleep": 5, "fail": False, "value": "done", "tag": "example", "path": []}
_DAG_ARGS: dict[str, Any] = {
    # The module docstring, shown on each Dag's page in the UI.
    "doc_md": __doc__,
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "params": _PARAMS,
    # Native rendering keeps the forwarded values' types (int, bool, list) in the next link's conf.
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-example"],
}


# [START howto_durable_chain]
def chain_link(dag_id: str, next_dag_id: str) -> DAG:
    """Build one link that triggers ``next_dag_id`` durably and waits for it."""
    with DAG(dag_id=dag_id, **_DAG_ARGS) as link:
        TriggerDagRunOperator(
            task_id="trigger_next",
            trigger_dag_id=next_dag_id,
            # Params hold this run's conf (conf overrides the defaults), so this forwards all of it.
            conf={
                "sleep": "{{ params.sleep }}",
                "fail": "{{ params.fail }}",
                "value": "{{ params.value }}",
                "tag": "{{ params.tag }}",
                "path": "{{ params.path + [dag.dag_id] }}",
            },
            wait_for_completion=True,
            durable=True,
            poke_interval=1,
            retries=2,
            retry_delay=timedelta(seconds=2),
        )
    return link


example_chain_a = chain_link("example_chain_a", "example_chain_b")
example_chain_b = chain_link("example_chain_b", "example_chain_c")

with DAG(dag_id="example_chain_c", **_DAG_ARGS) as example_chain_c:
    # No retries: like ``example_child``, the last link's failure is for the links above it to handle.
    @result
    @task(retries=0)
    def work() -> object:
        conf = get_current_context()["dag_run"].conf or {}
        seconds = float(conf.get("sleep", 5))
        print(f"working for {seconds} s after {conf.get('path')}")
        time.sleep(seconds)
        if conf.get("fail"):
            raise RuntimeError("failing on purpose: the run conf says fail=true")
        return conf.get("value")

    work()
# [END howto_durable_chain]
