"""Errors in the shared poller: a server that is down, a missing run, a failed read, a bug; each stays put."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount

from standard_ext.triggers.shared_poll import CHUNK, PollError, RunOutcome
from tests.fake_errors import api_error
from tests.unit.virtual_time import (
    CHILD,
    VirtualTime,
    cancel,
    counted_ids,
    per_check,
    run_ids,
    until_stalled_or_done,
    waiting,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor

# A poller that misses a wake-up waits for ever; fail instead of hanging the suite.
pytestmark = pytest.mark.timeout(30)


@pytest.mark.usefixtures("virtual")
class TestErrors:
    def test_an_unavailable_server_is_asked_again_at_the_next_check(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=1.5)
        supervisor.fail_on(GetDRCount, nth=2, error=api_error(503, "unavailable", "The server is restarting"))

        async def scenario() -> RunOutcome:
            return await waiting("a")

        with structlog.testing.capture_logs() as logs:
            outcome = asyncio.run(scenario())

        assert outcome == RunOutcome(state="success")
        # The count at 2 s failed; the run, ended at 1.5 s, is seen at 3 s.
        assert per_check(stamped, GetDRCount) == {1.0: 1, 2.0: 1, 3.0: 1}
        [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
        assert warning["event"] == "Could not read the child Dag's runs; asking again at the next tick"
        assert (warning["dag_id"], warning["runs"], warning["http_status"]) == (CHILD, 1, 503)

    def test_a_run_that_does_not_exist_ends_only_its_own_wait_with_an_error(
        self, supervisor: FakeSupervisor, virtual: VirtualTime, stamped: list[tuple[float, BaseModel]]
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=3600)
        supervisor.add_run(CHILD, "b", seconds=3600)
        virtual.horizon = 3

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ("a", "ghost", "b")]
            await until_stalled_or_done(virtual, tasks)
            assert [task.done() for task in tasks] == [False, True, False]
            await cancel([tasks[0], tasks[2]])
            return tasks

        tasks = asyncio.run(scenario())

        assert tasks[1].result() == RunOutcome(
            state=None, error="Dag run 'ghost' of Dag 'child' was not found"
        )
        assert [msg.run_id for _, msg in stamped if isinstance(msg, GetDagRunState)] == ["ghost"]
        assert counted_ids(stamped, 2.0) == [["a", "b"]]

    def test_a_failed_state_read_is_retried_at_the_next_check(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
    ) -> None:
        supervisor.add_run(CHILD, "a", seconds=0.5, outcome="failed")
        supervisor.fail_on(GetDagRunState, nth=1, error=api_error(500, "internal", "Database is locked"))

        with structlog.testing.capture_logs() as logs:
            outcome = asyncio.run(waiting("a"))

        assert outcome == RunOutcome(state="failed")
        assert per_check(stamped, GetDagRunState) == {1.0: 1, 2.0: 1}
        assert [entry["http_status"] for entry in logs if entry["log_level"] == "warning"] == [500]

    def test_an_unexpected_error_fails_the_waits_of_its_chunk_only(
        self,
        supervisor: FakeSupervisor,
        virtual: VirtualTime,
        stamped: list[tuple[float, BaseModel]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        ids = run_ids(150)
        for run_id in ids:
            supervisor.add_run(CHILD, run_id, seconds=3600)
        answer = supervisor._on_GetDRCount

        def broken_for_the_first_chunk(msg: GetDRCount) -> BaseModel:
            if "run-0000" in (msg.run_ids or []):
                raise RuntimeError("a bug, not the API")
            return answer(msg)

        monkeypatch.setattr(supervisor, "_on_GetDRCount", broken_for_the_first_chunk)
        virtual.horizon = 3

        async def scenario() -> list[asyncio.Task[RunOutcome]]:
            tasks = [asyncio.create_task(waiting(run_id)) for run_id in ids]
            await until_stalled_or_done(virtual, tasks)
            await cancel(tasks[CHUNK:])
            return tasks

        tasks = asyncio.run(scenario())

        for task in tasks[:CHUNK]:
            error = task.exception()
            assert isinstance(error, PollError)
            assert isinstance(error.__cause__, RuntimeError)
            assert "a bug, not the API" in str(error)
        assert all(task.cancelled() for task in tasks[CHUNK:])
        # The other 50 were still checked at every tick after the failure.
        assert counted_ids(stamped, 2.0) == [ids[CHUNK:]]
        assert counted_ids(stamped, 3.0) == [ids[CHUNK:]]
