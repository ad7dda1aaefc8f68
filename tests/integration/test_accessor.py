"""``ti.trigger_dag_run()`` called from a ``@task`` under dag.test(), installed by the plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.sdk import plugins_manager
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from task_sdk_ext import trigger_dag_run
from task_sdk_ext.plugin import ACCESSOR_NAME
from tests.integration import db
from tests.integration.dags.accessor import (
    CONF,
    MISSING_DAG_ID,
    TASK_ID,
    TRIGGER_DAG,
    UNKNOWN_DAG,
    trigger_dag,
    unknown_dag,
)
from tests.integration.names import CHILD

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.conftest import RunDag


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """
    Make this process look like a new worker: plugins not loaded yet, no accessor on the class.

    Plugins load once per process, so an earlier test may have installed the accessor already; without
    this, the test could not tell dag.test() installing it from finding it there. monkeypatch puts the
    class back as it was afterwards, and the cleared caches fill again on the next load.
    """
    if ACCESSOR_NAME in vars(RuntimeTaskInstance):
        monkeypatch.delattr(RuntimeTaskInstance, ACCESSOR_NAME)
    plugins_manager._get_plugins.cache_clear()
    plugins_manager.integrate_macros_plugins.cache_clear()
    yield
    plugins_manager._get_plugins.cache_clear()
    plugins_manager.integrate_macros_plugins.cache_clear()


@pytest.mark.usefixtures("fresh_plugins")
def test_the_plugin_installs_the_accessor_and_it_triggers_the_child(run_dag: RunDag) -> None:
    run_dag(trigger_dag)

    outcome = db.task_outcome(TRIGGER_DAG, TASK_ID)
    assert (outcome.state, outcome.try_number) == ("success", 1)
    run_id = db.xcom(TRIGGER_DAG, TASK_ID, "return_value")
    assert [(run.run_id, run.conf) for run in db.runs_of(CHILD)] == [(run_id, CONF)]
    # Building the task's context loaded the plugin from its entry point, which installed the accessor.
    assert vars(RuntimeTaskInstance)[ACCESSOR_NAME].__func__ is trigger_dag_run


def test_an_unknown_dag_raises_dag_not_found(run_dag: RunDag) -> None:
    run_dag(unknown_dag)

    outcome = db.task_outcome(UNKNOWN_DAG, TASK_ID)
    assert (outcome.state, outcome.try_number) == ("success", 1)
    assert db.xcom(UNKNOWN_DAG, TASK_ID, "return_value") == {
        "type": "task_sdk_ext.exceptions.DagNotFound",
        "dag_id": MISSING_DAG_ID,
        "http_status": 404,
    }
    assert db.runs_of(CHILD) == []
