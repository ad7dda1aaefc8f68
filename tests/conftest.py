"""Fixtures shared by the unit tests: the fake supervisor wired in as ``SUPERVISOR_COMMS``."""

from __future__ import annotations

import pytest
from airflow.sdk.execution_time import task_runner

from tests.fakes import FakeSupervisor


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> FakeSupervisor:
    fake = FakeSupervisor()
    # Accessors import SUPERVISOR_COMMS from task_runner when called, so patching the module global reaches them.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake
