"""What the ``cancel_on_kill`` tests share: the parent as the API shows it, the kills, and the logs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowTaskTimeout

from standard_ext.wait import schedule as poll_schedule
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH
from tests.unit.conftest import API_PASSWORD

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.triggers.base import BaseTrigger

    from tests.fake_api import FakeApi

# The deferred parent task instance a trigger test's triggerer hands its trigger.
PARENT = ("parent", "manual__parent", "trigger", -1)


def api_shows(api: FakeApi, ti: Any, state: str | None, *, try_number: int | None = None) -> None:
    """What the public API says of the parent task instance ``ti`` now."""
    api.task_instances[(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)] = {
        "state": state,
        "try_number": ti.try_number if try_number is None else try_number,
    }


def as_deferred(trigger: BaseTrigger) -> None:
    """Hand ``trigger`` the deferred task instance (:data:`PARENT`, try 1), as the triggerer does."""
    dag_id, run_id, task_id, map_index = PARENT
    trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=1
    )


def killed(trigger: BaseTrigger) -> list[Any]:
    """Run the trigger's ``on_kill`` as the triggerer does after a user action; return what it logged."""
    with structlog.testing.capture_logs() as logs:
        asyncio.run(trigger.on_kill())
    return logs


def timed_out(run: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Call ``run`` (a try) until ``execution_timeout`` interrupts its wait."""

    def alarm(seconds: float, *, stop: object = None) -> None:
        raise AirflowTaskTimeout("Timeout")

    monkeypatch.setattr(poll_schedule, "wait", alarm)
    with pytest.raises(AirflowTaskTimeout):
        run()


def secrets_in(logs: list[Any], api: FakeApi) -> list[str]:
    """The tokens the API gave and the password, those that appear anywhere in ``logs``."""
    text = repr(logs)
    return [secret for secret in [*api.issued, API_PASSWORD] if secret in text]


def patched(api: FakeApi) -> list[str]:
    """The runs the API was asked to set ``failed``, in the order asked."""
    return [request.path[5] for request in api.requests if request.route == DAG_RUN_PATCH]


def asked_about(api: FakeApi) -> set[str]:
    """The runs the API was asked about at all (read or patched)."""
    return {request.path[5] for request in api.requests if request.route in (DAG_RUN_GET, DAG_RUN_PATCH)}


def one(logs: list[Any], event: str) -> Any:
    """The one log entry of ``event``."""
    (entry,) = [entry for entry in logs if entry["event"] == event]
    return entry
