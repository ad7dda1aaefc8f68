"""The benchmark's Dags (``python -m bench``): every operator at its defaults but for what a case needs.

- **Latency** (cases 1 and 2): one child Dag per (length, parent variant), ``bench_child_<n>s_<variant>``,
  whose single task sleeps ``n`` seconds, and one parent Dag per variant, ``bench_parent_<variant>``,
  that triggers the child of its ``length`` param and waits: stock and ours, each synchronous and
  deferrable, and ours deferrable with ``end_from_trigger=True``. A child Dag of its own per variant keeps
  the variants' request counts apart (the history look-up names only the child Dag) and, with the
  repetitions staggered, far below Airflow's 16 active runs per Dag.
- **Durable cost** (case 3): ``bench_durable_cost_on`` / ``_off``, our operator mapped over
  ``DURABLE_COST_ITEMS`` items, one at a time, ``wait_for_completion=False``, triggering runs of the paused
  ``bench_paused_target``: the runs are created and never run, so the measurement costs no slots.
- **Fan-out** (case 4): ``bench_fan_out_<variant>``, one mapped parent per child of
  ``bench_fan_out_child``, whose task sleeps the ``sleep`` of its conf.
- **Width** (``python -m bench --width``): the fan-out's children (``bench_fan_out_child``) alone, under the
  stock and our mapped deferrable parents (case 4's), and under ``bench_fan_out_ours_one_task``: one
  ``TriggerDagRunsOperator`` task, deferrable and durable, ``max_active=None`` (every child triggered at
  once: the slots throttle them). Then ``bench_waiters_<operator>``: a mapped deferrable parent per
  ``count`` whose every task waits on a run of the paused ``bench_paused_target``, which never starts: the
  waiters stay waiting as long as the bench measures them.
- **Varying length** (case 6): ``bench_varying_parent_<variant>`` for stock and ours, each synchronous
  and deferrable (at their defaults, ``end_from_trigger=False``), each triggering a child Dag of its
  own, ``bench_varying_child_<variant>``, that sleeps the ``sleep`` of its conf: the parent's ``sleep``
  param. One child Dag per variant keeps each variant's last success its own.

Every parent passes its ``tag`` param to the runs it triggers, so the bench finds the runs one trigger
caused (``tests.e2e.scenario.Scenario``).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk import DAG, get_current_context, task

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

LENGTHS = (2, 20, 120)
# The hour's child (python -m bench --hour): too long for case 1, waited on once per variant.
HOUR_SECONDS = 3600
# Ours, deferrable, ended in the triggerer: bench.model.END_FROM_TRIGGER, spelled out here because the
# Dag processor loads this file without the project root on sys.path (bench is not installed).
END_FROM_TRIGGER = "deferrable + end_from_trigger"
# variant -> (operator, path): the five parents of the latency cases. Stock has no end_from_trigger.
VARIANTS: dict[str, tuple[str, str]] = {
    "stock_sync": ("stock", "sync"),
    "stock_deferrable": ("stock", "deferrable"),
    "ours_sync": ("ours", "sync"),
    "ours_deferrable": ("ours", "deferrable"),
    "ours_deferrable_end_from_trigger": ("ours", END_FROM_TRIGGER),
}
# What each path sets beyond wait_for_completion; the synchronous path sets nothing.
_PATH_KWARGS: dict[str, dict[str, Any]] = {
    "sync": {},
    # end_from_trigger left at its default (False): a worker resumes the task, as stock's does.
    "deferrable": {"deferrable": True},
    END_FROM_TRIGGER: {"deferrable": True, "end_from_trigger": True},
}
PARENT_TASK = "trigger_child"
CHILD_TASK = "work"
DURABLE_COST_ITEMS = 4
DURABLE_COST_TASK = "trigger"
PAUSED_TARGET = "bench_paused_target"
FAN_OUT_CHILD = "bench_fan_out_child"
# The one-task fan-out's children, a Dag of their own that nothing else runs: on a fresh Airflow its
# first fan-out has no earlier run to predict a child's length from, and learns it from its own.
ONE_TASK_CHILD = "bench_fan_out_child_one_task"
FAN_OUT_TASK = "trigger_children"
# The fan-out's baseline: its children triggered through the REST API, no parent (bench/fan_out.py).
CHILDREN_ALONE = "children alone (no parent)"
# The varying-length case's parents (keys of VARIANTS): ours only at its default end_from_trigger=False.
VARYING_VARIANTS = ("stock_sync", "stock_deferrable", "ours_sync", "ours_deferrable")
# Its short run, which sets each child Dag's last success, then the run measured: ten times longer, well
# past the window the short one predicts (it closes near 1.15 x 2 s + 5 s).
VARYING_PRIME_SECONDS = 2
VARYING_CHILD_SECONDS = 20
FAN_OUTS = {
    "stock, deferrable": "bench_fan_out_stock_deferrable",
    "ours, deferrable + durable": "bench_fan_out_ours_deferrable",
    "ours, synchronous + durable": "bench_fan_out_ours_sync",
}
# The width bench's parents, in the order it runs them after the children alone: the two mapped
# deferrable fan-outs above, then one TriggerDagRunsOperator task for every child.
ONE_TASK_FAN_OUT = "ours, TriggerDagRunsOperator, deferrable + durable"
WIDTH_PARENTS = {
    "stock, mapped, deferrable": FAN_OUTS["stock, deferrable"],
    "ours, mapped, deferrable + durable": FAN_OUTS["ours, deferrable + durable"],
    ONE_TASK_FAN_OUT: "bench_fan_out_ours_one_task",
}
# The deferred waiters' parents (python -m bench --width), by operator: a mapped task per waiter, each on a
# run of PAUSED_TARGET, which never runs.
WAITERS = {"stock": "bench_waiters_stock", "ours": "bench_waiters_ours"}

_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["durable-trigger-bench"],
}


def fan_out_child(label: str) -> str:
    """The child Dag of the fan-out case ``label`` (a key of ``WIDTH_PARENTS`` or ``FAN_OUTS``)."""
    return ONE_TASK_CHILD if label == ONE_TASK_FAN_OUT else FAN_OUT_CHILD


def child_dag_id(length: int, variant: str) -> str:
    """The child Dag the ``variant`` parent triggers for a ``length``-second child."""
    return f"bench_child_{length}s_{variant}"


def parent_dag_id(variant: str) -> str:
    """The parent Dag of ``variant`` (its ``length`` param picks the child)."""
    return f"bench_parent_{variant}"


def varying_child_dag_id(variant: str) -> str:
    """The child Dag, sleeping the ``sleep`` of its conf, of the varying-length case's ``variant`` parent."""
    return f"bench_varying_child_{variant}"


def varying_parent_dag_id(variant: str) -> str:
    """The varying-length case's parent Dag of ``variant`` (its ``sleep`` param is the child's length)."""
    return f"bench_varying_parent_{variant}"


def _operator(name: str) -> type[StockTriggerDagRunOperator]:
    return StockTriggerDagRunOperator if name == "stock" else TriggerDagRunOperator


def _child(dag_id: str, seconds: int) -> None:
    with DAG(dag_id=dag_id, **_DAG_ARGS):

        @task(task_id=CHILD_TASK, retries=0)
        def work() -> None:
            time.sleep(seconds)

        work()


for _variant, (_operator_name, _path) in VARIANTS.items():
    for _length in (*LENGTHS, HOUR_SECONDS):
        _child(child_dag_id(_length, _variant), _length)
    # Nothing but wait_for_completion and the path's own arguments set: poke_interval,
    # fast_poll_window and retries are each operator's defaults, and so is deferrable on the
    # synchronous path.
    with DAG(dag_id=parent_dag_id(_variant), params={"length": LENGTHS[0], "tag": "bench"}, **_DAG_ARGS):
        _operator(_operator_name)(
            task_id=PARENT_TASK,
            trigger_dag_id=f"bench_child_{{{{ params.length }}}}s_{_variant}",
            conf={"tag": "{{ params.tag }}"},
            wait_for_completion=True,
            **_PATH_KWARGS[_path],
        )


with DAG(dag_id=PAUSED_TARGET, **{**_DAG_ARGS, "is_paused_upon_creation": True}):

    @task(task_id=CHILD_TASK)
    def never_runs() -> None:
        """Its Dag stays paused: the runs triggered into it wait queued for ever, costing no slot."""

    never_runs()


for _durable in (True, False):
    with DAG(dag_id=f"bench_durable_cost_{'on' if _durable else 'off'}", **_DAG_ARGS):
        # One task at a time per Dag, the two Dags side by side: two task processes on the machine, not
        # a crowd whose CPU contention would swamp the milliseconds measured.
        TriggerDagRunOperator.partial(
            task_id=DURABLE_COST_TASK,
            trigger_dag_id=PAUSED_TARGET,
            durable=_durable,
            max_active_tis_per_dag=1,
        ).expand(conf=[{"item": item} for item in range(DURABLE_COST_ITEMS)])


def _sleeping_child(dag_id: str) -> None:
    with DAG(dag_id=dag_id, **_DAG_ARGS):

        @task(task_id=CHILD_TASK, retries=0)
        def sleep_as_told() -> None:
            """Sleep the ``sleep`` seconds of the run's conf: a child that holds a worker slot that long."""
            time.sleep(float((get_current_context()["dag_run"].conf or {}).get("sleep", 10)))

        sleep_as_told()


_sleeping_child(FAN_OUT_CHILD)
_sleeping_child(ONE_TASK_CHILD)


for _variant in VARYING_VARIANTS:
    _operator_name, _path = VARIANTS[_variant]
    _sleeping_child(varying_child_dag_id(_variant))
    # The conf's sleep is rendered as text ("20"): the child reads it through float().
    with DAG(
        dag_id=varying_parent_dag_id(_variant),
        params={"sleep": VARYING_PRIME_SECONDS, "tag": "bench"},
        **_DAG_ARGS,
    ):
        _operator(_operator_name)(
            task_id=PARENT_TASK,
            trigger_dag_id=varying_child_dag_id(_variant),
            conf={"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"},
            wait_for_completion=True,
            **_PATH_KWARGS[_path],
        )


def _build_confs() -> Any:
    """The task that builds one conf per child from the run's params; call it inside a Dag."""

    @task
    def build_confs() -> list[dict[str, Any]]:
        params = get_current_context()["params"]
        return [
            {"sleep": params["sleep"], "tag": params["tag"], "item": item}
            for item in range(int(params["count"]))
        ]

    return build_confs()


# Native rendering keeps the params' ints for build_confs.
_FAN_OUT_DAG_ARGS: dict[str, Any] = {
    "params": {"count": 30, "sleep": 10, "tag": "bench"},
    "render_template_as_native_obj": True,
    **_DAG_ARGS,
}


def _fan_out(
    dag_id: str, operator: type[StockTriggerDagRunOperator], child: str = FAN_OUT_CHILD, **kwargs: Any
) -> None:
    with DAG(dag_id=dag_id, **_FAN_OUT_DAG_ARGS):
        operator.partial(
            task_id=FAN_OUT_TASK, trigger_dag_id=child, wait_for_completion=True, **kwargs
        ).expand(conf=_build_confs())


_fan_out(FAN_OUTS["stock, deferrable"], StockTriggerDagRunOperator, deferrable=True)
_fan_out(FAN_OUTS["ours, deferrable + durable"], TriggerDagRunOperator, deferrable=True, durable=True)
_fan_out(FAN_OUTS["ours, synchronous + durable"], TriggerDagRunOperator, durable=True)


with DAG(dag_id=WIDTH_PARENTS[ONE_TASK_FAN_OUT], **_FAN_OUT_DAG_ARGS):
    # Every child at once (max_active=None): the slots, not a window, throttle them, as they throttle the
    # mapped fan-outs' children.
    TriggerDagRunsOperator(
        task_id=FAN_OUT_TASK,
        trigger_dag_id=ONE_TASK_CHILD,
        confs=_build_confs(),
        max_active=None,
        wait_for_completion=True,
        deferrable=True,
        durable=True,
    )


# Deferrable and nothing else: each operator's waiting at its defaults (poke_interval=60), as the latency
# case's deferrable parents.
_fan_out(WAITERS["stock"], StockTriggerDagRunOperator, child=PAUSED_TARGET, deferrable=True)
_fan_out(WAITERS["ours"], TriggerDagRunOperator, child=PAUSED_TARGET, deferrable=True)
