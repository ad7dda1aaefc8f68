"""The database reads behind the "Child runs" route: a fixed few per request, one of them per page of rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.models.dagrun import DagRun
from airflow.models.task_state_store import TaskStateStoreModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import func, select

from standard_ext.ui.rows import (
    FAN_OUT_KEY,
    SINGLE_KEY,
    XCOM_DAG_ID,
    XCOM_RESULT,
    XCOM_RUN_ID,
    XCOM_RUN_IDS,
    ChildRun,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TaskKey:
    """A task instance: its Dag, run, task and map index (``-1``: not mapped)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int

    def where(self, model: Any) -> tuple[Any, ...]:
        """The conditions that single this task instance's rows out of ``model``'s table."""
        return (
            model.dag_id == self.dag_id,
            model.run_id == self.run_id,
            model.task_id == self.task_id,
            model.map_index == self.map_index,
        )


#: Run ids per ``IN`` list: below every database's bound-parameter limit (SQLite's is 32,766).
CHUNK = 500


def parent_task_instance(session: Session, key: TaskKey) -> tuple[str | None, str | None, int] | None:
    """The task instance's operator class name, state and try number; ``None`` when there is no such one."""
    found = session.execute(
        select(TaskInstance.operator, TaskInstance.state, TaskInstance.try_number).where(
            *key.where(TaskInstance)
        )
    ).first()
    if found is None:
        return None
    return found.operator, state_name(found.state), int(found.try_number or 0)


def records(session: Session, key: TaskKey) -> dict[str, Any]:
    """The task instance's durable records (``task_state_store``), by key."""
    rows = session.execute(
        select(TaskStateStoreModel.key, TaskStateStoreModel.value).where(
            *key.where(TaskStateStoreModel), TaskStateStoreModel.key.in_([SINGLE_KEY, FAN_OUT_KEY])
        )
    ).all()
    return {row.key: json.loads(row.value) for row in rows}


def xcoms(session: Session, key: TaskKey) -> dict[str, Any]:
    """The task instance's XComs that name its child runs, and its return value."""
    rows = session.execute(
        select(XComModel.key, XComModel.value).where(
            *key.where(XComModel), XComModel.key.in_([XCOM_DAG_ID, XCOM_RUN_ID, XCOM_RUN_IDS, XCOM_RESULT])
        )
    ).all()
    return {row.key: XComModel.deserialize_value(row) for row in rows}


def state_counts(session: Session, *, dag_id: str, run_ids: Sequence[str]) -> dict[str, int]:
    """How many of the runs exist in each state (one grouped count per :data:`CHUNK` run ids)."""
    totals: dict[str, int] = {}
    for start in range(0, len(run_ids), CHUNK):
        rows = session.execute(
            select(DagRun.state, func.count())
            .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids[start : start + CHUNK]))
            .group_by(DagRun.state)
        ).all()
        for state, count in rows:
            key = state_name(state) or "none"
            totals[key] = totals.get(key, 0) + int(count)
    return totals


def child_runs(session: Session, *, dag_id: str, run_ids: Sequence[str]) -> dict[str, ChildRun]:
    """The runs of one page of items (one query: a page is at most :data:`CHUNK` rows), by run id."""
    rows = session.execute(
        select(DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.end_date, DagRun.conf).where(
            DagRun.dag_id == dag_id, DagRun.run_id.in_(list(run_ids))
        )
    ).all()
    return {
        row.run_id: ChildRun(
            run_id=row.run_id,
            state=state_name(row.state),
            start_date=row.start_date,
            end_date=row.end_date,
            conf=row.conf,
        )
        for row in rows
    }


def state_name(state: Any) -> str | None:
    """A state column's value as its plain name (``DagRunState.SUCCESS`` as ``"success"``)."""
    return None if state is None else str(getattr(state, "value", state))
