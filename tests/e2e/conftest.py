"""Fixtures for the end-to-end tests: one real Airflow for the whole session, one tagged scenario per test."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import PROJECT_ROOT, EmbeddedAirflow, exit_on_sigterm
from tests.e2e.reporting import scenario_report
from tests.e2e.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

E2E_DIR = Path(__file__).resolve().parent
E2E_LOGS = PROJECT_ROOT / "e2e-logs"
_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this folder's.
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


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


@pytest.fixture(scope="session")
def airflow(request: pytest.FixtureRequest, logs_dir: Path) -> Iterator[EmbeddedAirflow]:
    """One Airflow for every scenario; stopped at session end, its logs kept if any test failed."""
    exit_on_sigterm()
    instance = EmbeddedAirflow(keep_logs_on_failed_start_in=logs_dir / "airflow")
    instance.start()
    try:
        yield instance
    finally:
        if request.session.testsfailed:
            instance.keep_logs_in = logs_dir / "airflow"
            print(f"\nAirflow logs kept in {instance.keep_logs_in}")
        instance.stop()


@pytest.fixture
def scenario(request: pytest.FixtureRequest, airflow: EmbeddedAirflow, logs_dir: Path) -> Iterator[Scenario]:
    """A fresh tag for this test's runs; on failure, its runs' task logs are printed and saved."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")[:32]
    scenario = Scenario(airflow.client, name)
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
