"""What the fan-out's ``cancel_on_kill`` tests share: the parent, its child Dag, its runs, its ``on_kill``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from airflow.sdk.execution_time.comms import TriggerDagRun

from tests.unit.cancel_helpers import api_shows
from tests.unit.fanout_parent import CHILD, FanOutParent

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

# What on_kill logs once it has cancelled the runs.
CANCELLED = "Cancelled the fan-out's child Dag runs"
# The first item ends after 2 s, the others outlast the test.
ONE_QUICK = {0: (2.0, "success")}


def make(supervisor: FakeSupervisor, clock: Clock, **kwargs: Any) -> FanOutParent:
    """A fan-out parent that waits for its children and cancels them on kill; ``kwargs`` add or override."""
    values: dict[str, Any] = {
        "trigger_dag_id": CHILD,
        "wait_for_completion": True,
        "cancel_on_kill": True,
        "poke_interval": 10,
        **kwargs,
    }
    return FanOutParent(supervisor, values, clock.traveller.shift)


def child_dag(supervisor: FakeSupervisor, quick: dict[int, tuple[float, str]] | None = None) -> None:
    """The child Dag: item ``i`` takes ``quick[i]`` (seconds, outcome), any other item an hour."""

    def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
        return (quick or {}).get(int((conf or {})["item"]), (3600.0, "success"))

    supervisor.add_dag(CHILD, run_for=run_for)


def triggered(supervisor: FakeSupervisor, api: FakeApi) -> list[str]:
    """The runs the parent triggered, each shown running by the API."""
    run_ids = [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]
    for run_id in run_ids:
        api.runs[(CHILD, run_id)] = "running"
    return run_ids


def parent_is(api: FakeApi, parent: FanOutParent, state: str | None) -> None:
    """What the API says of the parent's task instance now."""
    api_shows(api, parent.ti, state)


def on_kill(parent: FanOutParent) -> list[Any]:
    """Call the operator's on_kill, as the SIGTERM handler does; return what it logged."""
    assert parent.operator is not None
    with structlog.testing.capture_logs() as logs:
        parent.operator.on_kill()
    return logs
