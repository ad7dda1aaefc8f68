"""A request the execution API never answers: it times out, and holds up no other child Dag's poll."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDRCount

from standard_ext.triggers import poll_requests, shared_poll
from standard_ext.triggers.shared_poll import MIN_TICK_SECONDS, RunOutcome
from tests.unit.virtual_time import let_the_loop_run, waiting

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)

# Real seconds: the timeout runs on the event loop's monotonic clock, which time-machine leaves alone.
TIMEOUT = 0.2
# How long the other Dag's wait may take in real time; it takes milliseconds unless it waits on the hang.
PROMPTLY = 1.0


@pytest.fixture
def hanging(supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The first count of Dag ``a`` gets no answer until the returned event is set; the rest are answered."""
    release = threading.Event()
    answer = supervisor._on_GetDRCount
    hung: list[GetDRCount] = []

    def hangs_once_for_a(msg: GetDRCount) -> BaseModel:
        if msg.dag_id == "a" and not hung:
            hung.append(msg)
            release.wait()
        return answer(msg)

    monkeypatch.setattr(supervisor, "_on_GetDRCount", hangs_once_for_a)
    monkeypatch.setattr(poll_requests, "REQUEST_TIMEOUT_SECONDS", TIMEOUT)
    try:
        yield release
    finally:
        release.set()


@pytest.fixture
def several_pollers(virtual: VirtualTime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual time for more than one poller: each sleep ends at its own moment, not after all the others."""

    async def catch_up(seconds: float) -> None:
        wake_at = virtual.elapsed() + seconds
        await let_the_loop_run()
        # Another poller sleeping as long may have moved the clock there already.
        virtual.traveller.shift(max(0.0, wake_at - virtual.elapsed()))

    monkeypatch.setattr(shared_poll, "pause", catch_up)


@pytest.mark.usefixtures("several_pollers")
def test_a_hung_request_times_out_without_holding_up_another_dags_poll(
    supervisor: FakeSupervisor,
    virtual: VirtualTime,
    stamped: list[tuple[float, BaseModel]],
    hanging: threading.Event,
) -> None:
    supervisor.add_run("a", "run", seconds=1.5)
    supervisor.add_run("b", "run", seconds=1.5)

    async def scenario() -> None:
        a = asyncio.create_task(waiting("run", dag_id="a"))
        b = asyncio.create_task(waiting("run", dag_id="b"))
        try:
            # Checked at 1 s, found ended at 2 s, while a's count of 1 s still hangs.
            assert await asyncio.wait_for(asyncio.shield(b), PROMPTLY) == RunOutcome(state="success")
            assert virtual.elapsed() == 2.0
            assert not a.done()
            assert not hanging.is_set()
            # a's count gave up after TIMEOUT (real) seconds; asked again at the next tick, it is answered.
            assert await asyncio.wait_for(asyncio.shield(a), PROMPTLY) == RunOutcome(state="success")
            assert virtual.elapsed() == 1.0 + MIN_TICK_SECONDS
        finally:
            # The hung thread must end before asyncio.run() shuts the loop's executor down (it joins it).
            hanging.set()
            for task in (a, b):
                task.cancel()
            await asyncio.gather(a, b, return_exceptions=True)

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())

    asked = sorted((t, msg.dag_id) for t, msg in stamped if isinstance(msg, GetDRCount))
    assert asked == [(1.0, "a"), (1.0, "b"), (2.0, "a"), (2.0, "b")]
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["event"] == "Could not read the child Dag's runs; asking again at the next tick"
    assert (warning["dag_id"], warning["runs"], warning["http_status"]) == ("a", 1, None)
    assert f"{TIMEOUT} s" in warning["error"]
