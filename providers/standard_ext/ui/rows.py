"""What the "Child runs" tab shows, from what the task recorded and what the child runs are: pure functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from standard_ext.durable.decision import parse_saved_run
from standard_ext.fanout import record as fan_out_record

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

#: Where the fan-out keeps its durable record.
FAN_OUT_KEY = fan_out_record.RECORD_KEY
#: Where the single operator keeps its durable record (``TriggerDagRunOperator.external_id_key``).
SINGLE_KEY = "triggered_dag_run"
#: The XComs both operators push (and the stock operator's task runner, ``trigger_run_id``).
XCOM_DAG_ID, XCOM_RUN_ID, XCOM_RUN_IDS, XCOM_RESULT = (
    "trigger_dag_id",
    "trigger_run_id",
    "trigger_run_ids",
    "return_value",
)
#: The operator class names the tab knows (``task_instance.operator``).
SINGLE_OPERATOR, FAN_OUT_OPERATOR = "TriggerDagRunOperator", "TriggerDagRunsOperator"
#: The states the counts show, besides "not started" (a planned run not created yet).
COUNTED_STATES = ("success", "failed", "running", "queued")
#: How long a conf or a result may be in a row before it is shortened (the whole is sent beside it).
SHORT = 80


@dataclass(frozen=True)
class Item:
    """One child run the task triggered (or planned): its place among the items, its id, the try that planned it."""

    index: int
    run_id: str
    try_number: int | None


@dataclass(frozen=True)
class Children:
    """What the task instance's record says it triggered; ``kind`` says which operator, or why nothing."""

    kind: str
    dag_id: str | None = None
    items: tuple[Item, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class ChildRun:
    """A child run as the database has it."""

    run_id: str
    state: str | None
    start_date: datetime | None
    end_date: datetime | None
    conf: Any


def children_of(
    *, operator: str | None, records: Mapping[str, Any], xcoms: Mapping[str, Any], try_number: int
) -> Children:
    """
    Read which child runs a task instance triggered: its durable record first, else its XComs.

    :param operator: the task instance's operator class name.
    :param records: its ``task_state_store`` values, by key.
    :param xcoms: its XComs, by key.
    :param try_number: its try number now: the try that pushed its XComs (each try clears them).
    """
    if operator == FAN_OUT_OPERATOR:
        record = records.get(FAN_OUT_KEY)
        if isinstance(record, dict) and isinstance(record.get("run_ids"), list) and record.get("dag_id"):
            run_ids = [str(run_id) for run_id in record["run_ids"]]
            tries = record.get("try_numbers")
            tries = tries if isinstance(tries, list) and len(tries) == len(run_ids) else [None] * len(run_ids)
            items = tuple(Item(i, run_id, tries[i]) for i, run_id in enumerate(run_ids))
            return Children(kind="fan_out", dag_id=str(record["dag_id"]), items=items)
        run_ids_xcom, dag_id = xcoms.get(XCOM_RUN_IDS), xcoms.get(XCOM_DAG_ID)
        if isinstance(run_ids_xcom, list) and dag_id:
            items = tuple(Item(i, str(run_id), try_number) for i, run_id in enumerate(run_ids_xcom))
            return Children(kind="fan_out", dag_id=str(dag_id), items=items)
        return Children(kind="never_triggered", message="This task has not triggered any Dag run yet.")
    if operator == SINGLE_OPERATOR:
        record = records.get(SINGLE_KEY)
        dag_id = record.get("dag_id") if isinstance(record, dict) else None
        saved = parse_saved_run(record, dag_id=str(dag_id))[0] if dag_id else None
        if saved is not None:
            return Children(
                kind="single", dag_id=saved.dag_id, items=(Item(0, saved.run_id, saved.try_number),)
            )
        run_id, dag_id = xcoms.get(XCOM_RUN_ID), xcoms.get(XCOM_DAG_ID)
        if run_id and dag_id:
            return Children(kind="single", dag_id=str(dag_id), items=(Item(0, str(run_id), try_number),))
        if run_id:
            # The stock operator's task runner pushes the run id alone; its Dag is in the operator.
            return Children(
                kind="other",
                message=f"This task triggered run {run_id!r} as the stock operator does, without saying of "
                "which Dag: its Triggered DAG link leads there.",
            )
        return Children(kind="never_triggered", message="This task has not triggered any Dag run yet.")
    return Children(
        kind="other",
        message=f"Child runs are shown for {SINGLE_OPERATOR} and {FAN_OUT_OPERATOR} tasks; "
        f"this task is a {operator or 'task of another kind'}.",
    )


def counts(items: Sequence[Item], states: Mapping[str, int]) -> dict[str, int]:
    """
    The counts at the top of the tab: runs by state, and the items whose run does not exist yet.

    :param states: how many of the items' runs are in each state (runs that exist only).
    """
    shown = {state: states.get(state, 0) for state in COUNTED_STATES}
    existing = sum(states.values())
    other = existing - sum(shown.values())
    if other:
        shown["other"] = other
    shown["not_started"] = len(items) - existing
    return shown


def row(item: Item, run: ChildRun | None, *, result: Any = None) -> dict[str, Any]:
    """One row of the tab: the item, its run (``None``: not started) and, when known, its result."""
    duration = (
        (run.end_date - run.start_date).total_seconds()
        if run is not None and run.start_date is not None and run.end_date is not None
        else None
    )
    return {
        "index": item.index,
        "run_id": item.run_id,
        "try_number": item.try_number,
        "state": "not_started" if run is None else (run.state or "none"),
        "start_date": None if run is None or run.start_date is None else run.start_date.isoformat(),
        "end_date": None if run is None or run.end_date is None else run.end_date.isoformat(),
        "duration": duration,
        "conf": None if run is None else run.conf,
        "conf_short": None if run is None else shorten(run.conf),
        "result": result,
        "result_short": None if result is None else shorten(result),
    }


def result_of(item: Item, returned: Any) -> Any:
    """
    The item's result in the task's return value, when it has one beyond its run id.

    The fan-out returns one entry per item (its result with ``result_task_ids``, else its run id); the
    single operator returns its child's result, or nothing.
    """
    if isinstance(returned, list):
        entry = returned[item.index] if item.index < len(returned) else None
    else:
        entry = returned
    return None if entry is None or entry == item.run_id else entry


def shorten(value: Any, *, limit: int = SHORT) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters with an ellipsis."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
