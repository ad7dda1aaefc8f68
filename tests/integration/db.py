"""The test database: set it up, arrange Dag runs before a test, read back what a test left."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import delete, select

if TYPE_CHECKING:
    from datetime import datetime, timedelta


def init_database() -> None:
    """Create the schema in the (empty) SQLite file and write the test Dags to it."""
    from airflow.utils import db

    # On an empty database initdb builds the tables from the ORM models, the cheapest correct way
    # (resetdb would drop tables first, upgradedb would replay every migration).
    db.initdb()
    sync_dags_folder()


def sync_dags_folder() -> None:
    """
    Parse the dags folder and write its Dags to the database, as ``dag.test()`` does on every call.

    Done once up front as well, so a test can create runs of the child before its first ``dag.test()``.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()  # type: ignore[no-untyped-call]
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        if bag.import_errors:
            raise RuntimeError(f"The test Dags do not import: {bag.import_errors}")
        sync_bag_to_db(bag, bundle.name, bundle.version)


def delete_all_runs() -> None:
    """Delete every Dag run; their task instances, XComs and task state go with them (ON DELETE CASCADE)."""
    with create_session() as session:
        session.execute(delete(DagRun))


def create_run(
    dag_id: str,
    run_id: str,
    *,
    logical_date: datetime | None = None,
    state: DagRunState = DagRunState.SUCCESS,
    took: timedelta | None = None,
) -> None:
    """
    Create a run of ``dag_id`` with Airflow's own ``trigger_dag`` (as the REST API does), then set ``state``.

    ``took`` gives the ended run a start date that long before its end, as the scheduler's would be.
    """
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    with create_session() as session:
        run = trigger_dag(
            dag_id,
            run_id=run_id,
            logical_date=logical_date,
            triggered_by=DagRunTriggeredByType.TEST,
            session=session,
        )
        if run is None:
            raise RuntimeError(f"trigger_dag created no run of {dag_id}")
        run.set_state(state)
        if took is not None and run.end_date is not None:
            run.start_date = run.end_date - took


@dataclass(frozen=True)
class Run:
    run_id: str
    state: str
    conf: dict[str, Any] | None
    # How many times the run was cleared; a reset (reset_dag_run) raises it by one.
    clear_number: int
    end_date: datetime | None
    logical_date: datetime | None = None


@dataclass(frozen=True)
class TaskOutcome:
    """Where a task instance ended: its state, the number of tries it took, and when."""

    state: str | None
    try_number: int
    end_date: datetime | None


def runs_of(dag_id: str) -> list[Run]:
    """Every run of ``dag_id``, oldest first."""
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id)).all()
        return [
            Run(
                run_id=r.run_id,
                state=str(r.state),
                conf=r.conf,
                clear_number=r.clear_number,
                end_date=r.end_date,
                logical_date=r.logical_date,
            )
            for r in runs
        ]


def task_outcome(dag_id: str, task_id: str) -> TaskOutcome:
    """The state and try number of ``task_id`` in the one run of ``dag_id``."""
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
        ).one()
        return TaskOutcome(
            state=None if ti.state is None else str(ti.state), try_number=ti.try_number, end_date=ti.end_date
        )


def running_try(dag_id: str, task_id: str) -> int | None:
    """The try number of ``task_id`` in ``dag_id``'s run while that task runs; ``None`` otherwise."""
    with create_session() as session:
        return session.scalar(
            select(TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.RUNNING,
            )
        )


def xcom(dag_id: str, task_id: str, key: str) -> Any:
    """The value ``task_id`` pushed under ``key`` in the one run of ``dag_id``; ``None`` if it pushed none."""
    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.task_id == task_id, XComModel.key == key
            )
        ).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def task_state(dag_id: str, task_id: str, key: str) -> Any:
    """What ``task_id`` keeps under ``key`` in its ``task_state_store``, in the one run of ``dag_id``."""
    from airflow.models.task_state_store import TaskStateStoreModel

    with create_session() as session:
        value = session.scalar(
            select(TaskStateStoreModel.value).where(
                TaskStateStoreModel.dag_id == dag_id,
                TaskStateStoreModel.task_id == task_id,
                TaskStateStoreModel.key == key,
            )
        )
        return None if value is None else json.loads(value)
