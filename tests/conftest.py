"""
Session-wide setup: a throwaway ``AIRFLOW_HOME`` set before anything imports Airflow, and shared fixtures.

Airflow reads its configuration once, when ``airflow`` is first imported, and creates ``AIRFLOW_HOME``
(``~/airflow`` by default) with a config file and a log folder in it. This module is the first conftest
pytest imports, so it points Airflow at a temporary home before any test module or conftest imports it:
no test touches ``~/airflow`` or a database configured for another Airflow. Airflow is therefore imported
only inside fixtures here, never at the top of this file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.airflow_home import isolated_airflow_home

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor

# The Dags the in-process integration tests run; dag.test() syncs this whole folder to the database.
INTEGRATION_DAGS_FOLDER = Path(__file__).resolve().parent / "integration" / "dags"


AIRFLOW_HOME = isolated_airflow_home(
    prefix="airflow-pytest-",
    who="tests/conftest.py",
    settings={
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(INTEGRATION_DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The test child Dag must take runs as soon as it is synced; a paused one is declared so.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    },
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs Dags in-process with dag.test() on a temporary SQLite database"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> FakeSupervisor:
    from airflow.sdk.execution_time import task_runner

    from tests.fake_supervisor import FakeSupervisor

    fake = FakeSupervisor()
    # Accessors import SUPERVISOR_COMMS from task_runner when called, so patching the module global
    # reaches them.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake
