"""Dags of the one-task fan-out scenario (``tests/e2e/test_fan_out_one_task.py``).

``e2e_fan_out_one_task`` builds ``count`` confs and hands them to one synchronous, durable
``TriggerDagRunsOperator`` task with a window of 8 child runs (``max_active``); it returns each item's result
in item order. ``e2e_fan_out_one_task_child`` is the child: its one task sleeps ``sleep`` seconds and
returns ``{"item": <item>}``.

How the child fails on its first run only: the item whose conf says ``fail_first`` claims a marker file,
``<marker_dir>/item-<item>.first-run``, with an exclusive create (``O_CREAT | O_EXCL``) before it does
anything else. The run that creates the file is the item's first run and fails after its sleep; any
later run of that item (the parent's redrive) finds the file there and succeeds. The exclusive create
makes this deterministic whatever the run ids, the timing or the parent's tries: exactly one run of the
item can ever create the file. ``marker_dir`` is a temporary directory the test owns (the LocalExecutor
runs the child's task on the test's machine). The child has no retries of its own, so its failure stays
a failure and the parent's redrive is what reacts to it.

Every conf carries the scenario's ``tag``, so the test finds the child runs its scenario caused.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

PARENT_DAG = "e2e_fan_out_one_task"
CHILD_DAG = "e2e_fan_out_one_task_child"
PARENT_TASK = "trigger_items"
CHILD_TASK = "work"

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["durable-trigger-e2e"],
}


def claim_first_run(marker_dir: str, item: int) -> bool:
    """Create the item's marker file; True for the one run that created it (the item's first run)."""
    marker = Path(marker_dir) / f"item-{item}.first-run"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


with DAG(dag_id=CHILD_DAG, **_DAG_ARGS):
    # At most 3 child tasks at once, whatever the runs: of the 4 slots the parent always finds one, so a
    # retry starts as soon as its retry_delay is over, while runs of the killed try are still active.
    @task(task_id=CHILD_TASK, retries=0, max_active_tis_per_dag=3)
    def work() -> dict[str, int]:
        conf = get_current_context()["dag_run"].conf or {}
        item = int(conf["item"])
        first_run = bool(conf.get("fail_first")) and claim_first_run(str(conf["marker_dir"]), item)
        time.sleep(float(conf.get("sleep", 3)))
        if first_run:
            raise RuntimeError(f"item {item} fails on its first run, as its conf says (fail_first)")
        return {"item": item}

    work()


with DAG(
    dag_id=PARENT_DAG,
    params={"count": 40, "sleep": 3, "fail_item": -1, "marker_dir": "", "tag": "e2e"},
    **_DAG_ARGS,
):

    @task
    def build_confs() -> list[dict[str, Any]]:
        params = get_current_context()["params"]
        return [
            {
                "item": item,
                "sleep": params["sleep"],
                "fail_first": item == int(params["fail_item"]),
                "marker_dir": params["marker_dir"],
                "tag": params["tag"],
            }
            for item in range(int(params["count"]))
        ]

    TriggerDagRunsOperator(
        task_id=PARENT_TASK,
        trigger_dag_id=CHILD_DAG,
        confs=build_confs(),
        max_active=8,
        result_task_ids=[CHILD_TASK],
        wait_for_completion=True,
        durable=True,
        deferrable=False,
        # Short for the test; fast_poll_window stays at its default.
        poke_interval=2,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
