"""
Session-wide setup: a throwaway ``AIRFLOW_HOME`` set before anything imports Airflow, and shared fixtures.

Airflow reads its configuration once, when ``airflow`` is first imported, and creates ``AIRFLOW_HOME``
(``~/airflow`` by default) with a config file and a log folder in it. This module is the first conftest
pytest imports, so it points Airflow at a temporary home before any test module or conftest imports it:
no test touches ``~/airflow`` or a database configured for another Airflow. Airflow is therefore imported
only inside fixtures here, never at the top of this file.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fakes import FakeSupervisor

# The Dags the in-process integration tests run; dag.test() syncs this whole folder to the database.
INTEGRATION_DAGS_FOLDER = Path(__file__).resolve().parent / "integration" / "dags"


def _isolated_airflow_home() -> Path:
    """Create a temporary AIRFLOW_HOME and point this process's Airflow configuration at it."""
    if "airflow" in sys.modules:
        raise RuntimeError("Airflow was imported before tests/conftest.py could set AIRFLOW_HOME")
    home = Path(tempfile.mkdtemp(prefix="airflow-pytest-"))
    # Settings inherited from the shell could point this session at another Airflow's database or config.
    for name in [name for name in os.environ if name.startswith("AIRFLOW__")]:
        del os.environ[name]
    os.environ.pop("AIRFLOW_CONFIG", None)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(INTEGRATION_DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The test child Dag must take runs as soon as it is synced; a paused one is declared so.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }
    )
    return home


AIRFLOW_HOME = _isolated_airflow_home()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs Dags in-process with dag.test() on a temporary SQLite database"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> FakeSupervisor:
    from airflow.sdk.execution_time import task_runner

    from tests.fakes import FakeSupervisor

    fake = FakeSupervisor()
    # Accessors import SUPERVISOR_COMMS from task_runner when called, so patching the module global
    # reaches them.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake
