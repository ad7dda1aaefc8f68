"""The fan-out's ``on_kill`` after ``execution_timeout``, and the time budget it keeps before the SIGKILL."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.cancel import runs as cancel_runs
from standard_ext.operators.modes import cancel as cancel_mode
from tests.fake_api import DAG_RUN_PATCH, SIGN_IN, TASK_INSTANCE
from tests.unit.cancel_helpers import one, patched, timed_out
from tests.unit.fanout_kill_helpers import CANCELLED, child_dag, make, on_kill, parent_is, triggered
from tests.unit.fanout_parent import FanOutParent, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)

# What on_kill logs when its budget ran out before every run was cancelled (or confirmed).
NOT_CANCELLED = "Could not cancel some of the fan-out's Dag runs (or confirm it) in time"


@pytest.mark.usefixtures("connected")
class TestOnKillAfterTimeout:
    def test_the_last_try_cancels_without_asking_about_the_parent(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3))
        parent.ti.max_tries = 0
        timed_out(parent.run, monkeypatch)
        run_ids = triggered(supervisor, api)

        logs = on_kill(parent)

        assert sorted(patched(api)) == sorted(run_ids)
        assert TASK_INSTANCE not in api.routes()[len(SIGN_IN) :]
        assert one(logs, CANCELLED)["reason"] == "execution_timeout on the last try"

    def test_a_durable_try_with_retries_left_keeps_the_runs(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3))
        timed_out(parent.run, monkeypatch)
        triggered(supervisor, api)

        logs = on_kill(parent)

        assert api.routes() == SIGN_IN
        assert "durable retry reconnects" in one(logs, "Not cancelling the fan-out's Dag runs")["reason"]


@pytest.mark.usefixtures("connected")
class TestBudget:
    @pytest.fixture(autouse=True)
    def short_budget(self, monkeypatch: pytest.MonkeyPatch) -> float:
        # A budget scaled down (the real one is 3.5 s), with a request cap under it: a second, not four.
        monkeypatch.setattr(cancel_mode, "KILL_SECONDS", 1.0)
        monkeypatch.setattr(cancel_mode, "KILL_REQUEST_SECONDS", 0.3)
        return 1.0

    def killed_with_runs(self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock) -> FanOutParent:
        # Rounds of ten: the third is cut short by the budget, the fourth gets no turn.
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(35))
        parent.kill_at("GetDRCount", nth=2)
        triggered(supervisor, api)
        parent_is(api, parent, "failed")
        return parent

    def test_a_server_that_hangs_on_the_patches_is_given_up_in_time_naming_every_run(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, short_budget: float
    ) -> None:
        parent = self.killed_with_runs(supervisor, api, clock)
        api.hang, api.hang_routes = threading.Event(), frozenset({DAG_RUN_PATCH})

        started = time.monotonic()
        logs = on_kill(parent)
        took = time.monotonic() - started

        assert took < short_budget + 1.5
        warning = one(logs, NOT_CANCELLED)
        assert warning["log_level"] == "warning"
        run_ids = [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]
        assert set(warning["not_cancelled"]) == set(run_ids)
        # Some timed out mid-request, the rest never got their turn.
        reasons = set(warning["not_cancelled"].values())
        assert any("ReadTimeout" in reason or "TimeoutError" in reason for reason in reasons)
        assert any("out of time" in reason for reason in reasons)

    def test_a_server_that_hangs_altogether_cancels_nothing_in_time(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, short_budget: float
    ) -> None:
        parent = self.killed_with_runs(supervisor, api, clock)
        api.hang = threading.Event()

        started = time.monotonic()
        logs = on_kill(parent)

        assert time.monotonic() - started < short_budget + 1.5
        one(logs, "Not cancelling the fan-out's Dag runs: a request to the Airflow API failed")

    def test_work_that_outlasts_the_budget_is_left_behind(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        clock: Clock,
        short_budget: float,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Something no request timeout bounds (a name lookup that hangs): the handler stops waiting.
        parent = self.killed_with_runs(supervisor, api, clock)

        async def stuck(*args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(3)

        monkeypatch.setattr(cancel_runs, "decide_then_cancel_all", stuck)

        started = time.monotonic()
        logs = on_kill(parent)

        assert time.monotonic() - started < short_budget + 1.5
        one(logs, "Not cancelling the fan-out's Dag runs: out of time before deciding")


def test_the_real_budget_leaves_time_before_the_sigkill() -> None:
    # The supervisor sends SIGKILL 5 s after SIGTERM; the wait still notes the stop after on_kill.
    assert cancel_mode.KILL_SECONDS + cancel_runs.THREAD_GRACE < 5.0
    assert cancel_mode.KILL_REQUEST_SECONDS <= cancel_mode.KILL_SECONDS
