"""
Fixtures for the in-process layer: Dags run with ``dag.test()`` through Airflow's real task runner and
execution API, on the session's temporary SQLite database (see ``tests/conftest.py``). No server starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from tests.fake_api import FakeApi
from tests.integration import db

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import DAG

INTEGRATION_DIR = Path(__file__).resolve().parent
# A guard against a hang (a parent waiting on a child nobody finishes), far above any test's real time.
TEST_TIMEOUT_SECONDS = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this folder's.
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)
            # The thread method, because the signal one uses SIGALRM, which a task's execution_timeout
            # also uses when the task runs in this very process.
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS, method="thread"))


@pytest.fixture(scope="session", autouse=True)
def _database() -> None:
    db.init_database()


@pytest.fixture(autouse=True)
def _no_runs() -> None:
    # Each test starts with no Dag runs, so counting a Dag's runs counts what this test caused.
    db.delete_all_runs()


@dataclass(frozen=True)
class DagTestResult:
    run_id: str
    #: Everything written to stdout and stderr while the Dag ran: the task logs are there.
    log: str


class RunDag(Protocol):
    def __call__(
        self, dag: DAG, run_conf: dict[str, Any] | None = None, **test_kwargs: Any
    ) -> DagTestResult: ...


@pytest.fixture
def run_dag(capfd: pytest.CaptureFixture[str]) -> RunDag:
    """Run a Dag with ``dag.test()`` (``run_conf`` as its run's conf, ``test_kwargs`` passed on, say
    ``logical_date=None``); return the run id and the log."""

    def run(dag: DAG, run_conf: dict[str, Any] | None = None, **test_kwargs: Any) -> DagTestResult:
        capfd.readouterr()
        dag_run = dag.test(run_conf=run_conf, **test_kwargs)
        out, err = capfd.readouterr()
        # Echoed, so that a failing test shows the log in pytest's captured output.
        print(out + err)
        return DagTestResult(run_id=dag_run.run_id, log=out + err)

    return run


#: The user the scripted REST API (``api``) knows, and the default connection signs in as.
API_LOGIN, API_PASSWORD = "trigger-bot", "s3cret-pw"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    """A scripted public REST API, and the default connection to it, as an environment variable."""
    server = FakeApi(users={API_LOGIN: API_PASSWORD})
    server.start()
    connection = {"conn_type": "http", "host": server.base_url, "login": API_LOGIN, "password": API_PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API_DEFAULT", json.dumps(connection))
    yield server
    server.stop()
