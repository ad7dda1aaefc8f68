"""The synchronous ``on_kill``'s bounds: wall-clock time whatever the server does, and no message to the supervisor."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import MaskSecret

from standard_ext.operators.modes import cancel as cancel_mode
from tests.fake_api import TOKEN
from tests.unit.cancel_helpers import api_shows
from tests.unit.conftest import connect, kill_mid_wait

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent, Parent

pytestmark = pytest.mark.timeout(30)

WAITING: dict[str, Any] = {"wait_for_completion": True, "cancel_on_kill": True, "durable": False}


def waiting_parent(supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent) -> tuple[Parent, str]:
    supervisor.add_dag("child", run_seconds=3600)
    connect(supervisor, api)
    parent = make_parent(**WAITING)
    kill_mid_wait(parent, poll=2)
    run_id = str(parent.ti.xcoms["trigger_run_id"])
    api.runs[("child", run_id)] = "running"
    api_shows(api, parent.ti, "failed")
    return parent, run_id


def test_a_server_that_never_answers_is_given_up_within_the_budget(
    supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, run_id = waiting_parent(supervisor, api, make_parent)
    # A small budget keeps the test short; what matters is that the wall clock bounds it.
    monkeypatch.setattr(cancel_mode, "KILL_SECONDS", 1.0)
    api.hang = threading.Event()

    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        assert parent.operator is not None
        parent.operator.on_kill()
    took = time.monotonic() - started

    # Generous: a loaded machine may be slow to start the thread, never to stop waiting for it.
    assert took < 1.0 + 2.0
    assert api.runs[("child", run_id)] == "running"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] in (
        ["Not cancelling the Dag run: the Airflow API did not answer in time"],
        ["Not cancelling the Dag run: a request to the Airflow API failed"],
    )


def test_a_token_renewed_in_the_handler_sends_nothing_to_the_supervisor(
    supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
) -> None:
    parent, run_id = waiting_parent(supervisor, api, make_parent)
    # The token from execute() expired while the task waited: on_kill signs in again.
    api.expire_tokens()
    masked_before = len(supervisor.sent_of(MaskSecret))
    sent_before = len(supervisor.sent)

    assert parent.operator is not None
    parent.operator.on_kill()

    assert api.routes().count(TOKEN) == 2
    assert api.runs[("child", run_id)] == "failed"
    # The handler may have interrupted a message to the supervisor, whose channel lock it would wait on.
    assert len(supervisor.sent_of(MaskSecret)) == masked_before
    assert len(supervisor.sent) == sent_before
