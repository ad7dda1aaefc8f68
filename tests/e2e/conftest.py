"""Fixtures for the end-to-end tests: one real Airflow for the whole session, one tagged scenario per test."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import (
    BENCH_DAGS_FOLDER,
    DAGS_FOLDER,
    E2E_DAGS_FOLDER,
    PROJECT_ROOT,
    EmbeddedAirflow,
    exit_on_sigterm,
)
from tests.e2e.leaks import known_secrets
from tests.e2e.reporting import scenario_report
from tests.e2e.scenario import Scenario
from tests.e2e.settings import DEFAULT, Setup

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

E2E_DIR = Path(__file__).resolve().parent
E2E_LOGS = PROJECT_ROOT / "e2e-logs"
_FAILED = pytest.StashKey[bool]()


def setup_of(item: pytest.Item) -> Setup:
    marker = item.get_closest_marker("airflow_setup")
    return DEFAULT if marker is None else marker.args[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this folder's.
    e2e = [item for item in items if E2E_DIR in item.path.parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
        if setup_of(item).distributed:
            # make test deselects these (-m "not distributed"); make test-distributed runs only them.
            item.add_marker(pytest.mark.distributed)
    # Quick tests first, then the end-to-end ones grouped by setup (default first; the sort is stable),
    # so each Airflow starts once and only one runs at a time.
    others = [item for item in items if E2E_DIR not in item.path.parents]
    e2e.sort(key=lambda item: (setup_of(item) != DEFAULT, setup_of(item).name))
    items[:] = others + e2e


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def logs_dir() -> Path:
    """Where this session keeps logs of failures (created only when something fails)."""
    return E2E_LOGS / datetime.now().strftime("%Y%m%d-%H%M%S")


class Airflows:
    """
    The one Airflow running at a time: started for the setup a test asks for, shared by every test of
    that setup (the tests are grouped by setup), stopped when a test needs another one or the session
    ends. Its logs are kept if a test failed while it ran.
    """

    def __init__(self, session: pytest.Session, logs_dir: Path) -> None:
        self.session = session
        self.logs_dir = logs_dir
        self.current: EmbeddedAirflow | None = None
        self._failed_before = 0

    def get(self, setup: Setup) -> EmbeddedAirflow:
        if self.current is not None and self.current.setup == setup:
            return self.current
        self.stop()
        instance = EmbeddedAirflow(
            # The bench's Dags too: its smoke test (test_bench_smoke.py) runs on this Airflow.
            dags_folders=(DAGS_FOLDER, E2E_DAGS_FOLDER, BENCH_DAGS_FOLDER),
            setup=setup,
            keep_logs_on_failed_start_in=self.logs_dir / f"airflow-{setup.name}",
        )
        instance.start()
        self.current, self._failed_before = instance, self.session.testsfailed
        return instance

    def stop(self) -> None:
        if (instance := self.current) is None:
            return
        self.current = None
        if self.session.testsfailed > self._failed_before:
            instance.keep_logs_in = self.logs_dir / f"airflow-{instance.setup.name}"
            print(f"\nAirflow logs kept in {instance.keep_logs_in}")
        instance.stop()


@pytest.fixture(scope="session")
def airflows(request: pytest.FixtureRequest, logs_dir: Path) -> Iterator[Airflows]:
    exit_on_sigterm()
    pool = Airflows(request.session, logs_dir)
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def airflow(request: pytest.FixtureRequest, airflows: Airflows) -> EmbeddedAirflow:
    """The Airflow for this test's setup (``@pytest.mark.airflow_setup``; default: Airflow's defaults)."""
    return airflows.get(setup_of(request.node))


@pytest.fixture
def scenario(request: pytest.FixtureRequest, airflow: EmbeddedAirflow, logs_dir: Path) -> Iterator[Scenario]:
    """A fresh tag for this test's runs; on failure, its runs' task logs are printed and saved."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")[:32]
    scenario = Scenario(airflow.client, name, log_files=airflow.task_log_files)
    yield scenario
    if request.node.stash.get(_FAILED, False):
        report = scenario_report(scenario)
        if airflow.import_errors:
            report += "\n\n===== import errors when Airflow started\n"
            report += "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in airflow.import_errors)
        path = logs_dir / name / "report.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{report}\n\n===== standalone log tail\n{airflow.log_tail(300)}\n")
        print(f"\n{report[-20000:]}\n\n===== standalone log tail\n{airflow.log_tail()}\n\nsaved in {path}")


@pytest.fixture
def api_connection(airflow: EmbeddedAirflow) -> dict[str, str]:
    """
    The connection ``cancel_on_kill`` and ``auto_clear_failed_tasks`` go through: this Airflow's API server, as its admin.

    Returns what no log may show of it (``tests.e2e.leaks.known_secrets``): its password and tokens.
    """
    airflow.client.create_connection(
        "airflow_api_default",
        conn_type="http",
        host=airflow.base_url,
        login="admin",
        password=airflow.admin_password,
    )
    return known_secrets(airflow.base_url, "admin", airflow.admin_password)
