"""Dags only the end-to-end tests use: deferrable parents that can hold a crash window open, and fan-outs.

A crash between the trigger and the deferral, or while the task resumes after the child ended, lasts
milliseconds in real use: too short for a test to hit with a SIGKILL. ``HoldingTriggerDagRunOperator``
is our operator with a pause in those two places, on try 1 only, when the child's conf asks for it:

- ``hold_before_wait``: seconds to pause after the trigger (and the write-ahead), before the wait,
  which in deferrable mode is the deferral;
- ``hold_before_resume``: seconds to pause when the task resumes after the trigger fired;
- ``hold_only_in``: if not empty, only tasks of these Dags hold (a chain forwards its conf down).

The test kills the task during the pause; the retry runs without it. Every Dag passes its conf
(``tag`` included) to the runs it triggers, so a scenario finds the runs it caused.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context
    from pydantic import JsonValue

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    # Native rendering keeps ints, bools and lists in the child's conf.
    "render_template_as_native_obj": True,
    "tags": ["durable-trigger-e2e"],
}
_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=2)}
_CONF_KEYS = (
    "sleep",
    "fail",
    "value",
    "tag",
    "path",
    "hold_before_wait",
    "hold_before_resume",
    "hold_only_in",
)


class HoldingTriggerDagRunOperator(TriggerDagRunOperator):
    """Our operator, pausing try 1 in a crash window when the child's conf names one (see the module)."""

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        self._hold(context, "hold_before_wait")
        super().poll_until_complete(external_id, context)

    def resume_after_child_run(self, context: Context, event: dict[str, Any] | str) -> Any:
        self._hold(context, "hold_before_resume")
        return super().resume_after_child_run(context, event)

    def _hold(self, context: Context, key: str) -> None:
        conf = self.conf or {}
        seconds = float(conf.get(key) or 0)
        only_in = conf.get("hold_only_in") or []
        if only_in and self.dag_id not in only_in:
            return
        if seconds and context["ti"].try_number == 1:
            self.log.info("Holding the crash window open", window=key, seconds=seconds)
            time.sleep(seconds)


def _forwarded_conf() -> dict[str, str]:
    return {key: f"{{{{ params.{key} }}}}" for key in _CONF_KEYS if key != "path"} | {
        "path": "{{ params.path + [dag.dag_id] }}"
    }


def _params() -> dict[str, Any]:
    return {
        "sleep": 5,
        "fail": False,
        "value": "done",
        "tag": "e2e",
        "path": [],
        "hold_before_wait": 0,
        "hold_before_resume": 0,
        "hold_only_in": [],
    }


# One deferrable durable parent of ``example_child``.
with DAG(dag_id="parent_deferrable", params=_params(), **_DAG_ARGS):
    HoldingTriggerDagRunOperator(
        task_id="trigger_child",
        trigger_dag_id="example_child",
        conf=_forwarded_conf(),
        wait_for_completion=True,
        deferrable=True,
        durable=True,
        poke_interval=1,
        **_RETRIES,
    )

# A deferrable durable chain ending in dags/example_chain.py's last link.
_CHAIN = ("chain_deferrable_a", "chain_deferrable_b", "example_chain_c")
for link, next_link in itertools.pairwise(_CHAIN):
    with DAG(dag_id=link, params=_params(), **_DAG_ARGS):
        HoldingTriggerDagRunOperator(
            task_id="trigger_next",
            trigger_dag_id=next_link,
            conf=_forwarded_conf(),
            wait_for_completion=True,
            deferrable=True,
            durable=True,
            poke_interval=1,
            **_RETRIES,
        )


def fan_out(dag_id: str, operator: type[StockTriggerDagRunOperator], **kwargs: Any) -> None:
    """
    ``count`` children of ``example_child`` (each ``sleep`` s), one mapped parent task each; the items in
    ``hold_items`` hold the window before the wait open for ``hold`` s.
    """
    with DAG(
        dag_id=dag_id,
        params={"count": 10, "sleep": 5, "tag": "e2e", "hold_items": [], "hold": 0},
        **_DAG_ARGS,
    ):

        @task
        def build_confs() -> list[dict[str, Any]]:
            params = get_current_context()["params"]
            return [
                {
                    "sleep": params["sleep"],
                    "tag": params["tag"],
                    "item": item,
                    "value": item,
                    "hold_before_wait": params["hold"] if item in params["hold_items"] else 0,
                }
                for item in range(int(params["count"]))
            ]

        operator.partial(
            task_id="trigger_children",
            trigger_dag_id="example_child",
            wait_for_completion=True,
            poke_interval=1,
            **kwargs,
            **_RETRIES,
        ).expand(conf=build_confs())


# The three ways to fan out that the 4-slot comparison sets side by side.
fan_out("fan_out_deferrable", HoldingTriggerDagRunOperator, deferrable=True, durable=True)
fan_out("fan_out_stock_deferrable", StockTriggerDagRunOperator, deferrable=True)
fan_out("fan_out_sync", TriggerDagRunOperator, durable=True)

# On the distributed backend the parents run in a queue of their own (tests.e2e.settings.PARENTS_QUEUE),
# served by a Celery worker of its own, so a test can take the parents' worker away while the children
# run on. Elsewhere the queue changes nothing.
PARENTS_QUEUE = "parents"
fan_out("fan_out_sync_parents_queue", TriggerDagRunOperator, durable=True, queue=PARENTS_QUEUE)
with DAG(dag_id="parent_durable_parents_queue", params=_params(), **_DAG_ARGS):
    TriggerDagRunOperator(
        task_id="trigger_child",
        trigger_dag_id="example_child",
        conf=_forwarded_conf(),
        wait_for_completion=True,
        durable=True,
        poke_interval=1,
        queue=PARENTS_QUEUE,
        **_RETRIES,
    )
