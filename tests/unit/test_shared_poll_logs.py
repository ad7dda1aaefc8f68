"""The shared poller's log lines: its own carry its Dag and no trigger's context, a run's reach its trigger."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDRCount

from standard_ext.triggers.shared_poll import RunOutcome
from tests.fake_errors import api_error
from tests.unit.virtual_time import CHILD, cancel, until_stalled_or_done, waiting

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)

# The poller's line in this scenario at the level tests log at (its debug lines are filtered out).
POLLER_LINES = {"Could not read the child Dag's runs; asking again at the next tick"}


async def as_trigger(trigger_id: int, wait: Coroutine[Any, Any, RunOutcome]) -> RunOutcome:
    """Wait as the triggerer runs a trigger: with its id bound in structlog's context variables."""
    # Bound in this task's own context (each task runs in a copy), as the triggerer binds it per trigger.
    structlog.contextvars.bind_contextvars(trigger_id=trigger_id)
    return await wait


@pytest.mark.usefixtures("virtual")
def test_the_pollers_lines_carry_no_triggers_context_and_a_missing_run_is_logged_by_its_own_trigger(
    supervisor: FakeSupervisor, virtual: VirtualTime
) -> None:
    supervisor.add_run(CHILD, "a", seconds=3600)
    # The first count fails: the poller's warning, written while trigger 1 (first to register) waits.
    supervisor.fail_on(GetDRCount, nth=1, error=api_error(503, "unavailable", "The server is restarting"))
    virtual.horizon = 2

    async def scenario() -> RunOutcome:
        ghost = asyncio.create_task(as_trigger(1, waiting("ghost")))
        going_on = asyncio.create_task(as_trigger(2, waiting("a")))
        await until_stalled_or_done(virtual, [ghost, going_on])
        await cancel([going_on])
        return await ghost

    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        outcome = asyncio.run(scenario())

    assert outcome == RunOutcome(state=None, error="Dag run 'ghost' of Dag 'child' was not found")
    poller_lines = [entry for entry in logs if entry["event"] in POLLER_LINES]
    assert {entry["event"] for entry in poller_lines} == POLLER_LINES
    assert all(entry["dag_id"] == CHILD for entry in poller_lines)
    # Not in trigger 1's log, as they were while the poller's task ran in the context it was created in.
    assert [entry for entry in poller_lines if "trigger_id" in entry] == []
    # The run that does not exist concerns trigger 1 alone: its own log says so.
    [missing] = [entry for entry in logs if "was not found" in str(entry.get("error"))]
    assert missing["log_level"] == "warning"
    assert (missing["trigger_id"], missing["dag_id"], missing["run_id"]) == (1, CHILD, "ghost")
