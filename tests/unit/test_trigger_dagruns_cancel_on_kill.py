"""The fan-out's ``on_kill`` with ``cancel_on_kill``: every active run it triggered, within the budget."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext import cancel_runs
from standard_ext.fanout_record import RECORD_KEY
from standard_ext.operators import cancel_mode
from tests.fake_api import DAG_RUN_PATCH, TASK_INSTANCE, TOKEN
from tests.unit.cancel_helpers import api_shows, asked_about, one, patched, secrets_in, timed_out
from tests.unit.conftest import connect
from tests.unit.fanout_parent import CHILD, FanOutParent, WorkerKilled, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fakes import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)

# The first item ends after 2 s, the others outlast the test.
ONE_QUICK = {0: (2.0, "success")}


def make(supervisor: FakeSupervisor, clock: Clock, **kwargs: Any) -> FanOutParent:
    values: dict[str, Any] = {
        "trigger_dag_id": CHILD,
        "wait_for_completion": True,
        "cancel_on_kill": True,
        "poke_interval": 10,
        **kwargs,
    }
    return FanOutParent(supervisor, values, clock.traveller.shift)


def child_dag(supervisor: FakeSupervisor, quick: dict[int, tuple[float, str]] | None = None) -> None:
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
    api_shows(api, parent.ti, state)


def on_kill(parent: FanOutParent) -> list[Any]:
    """Call the operator's on_kill, as the SIGTERM handler does; return what it logged."""
    assert parent.operator is not None
    with structlog.testing.capture_logs() as logs:
        parent.operator.on_kill()
    return logs


CANCELLED = "Cancelled the fan-out's child Dag runs"
NOT_CANCELLED = "Could not cancel some of the fan-out's Dag runs (or confirm it) in time"


@pytest.fixture
def connected(supervisor: FakeSupervisor, api: FakeApi) -> None:
    connect(supervisor, api)


@pytest.mark.usefixtures("connected")
class TestOnKillAfterSigterm:
    @pytest.mark.parametrize("state", ["failed", "success", "restarting", "skipped"])
    def test_a_stopped_try_cancels_every_active_run_it_triggered(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, state: str
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(5), max_active=3)
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent_is(api, parent, state)
        sent = len(supervisor.sent)

        logs = on_kill(parent)

        assert len(run_ids) == 3
        assert sorted(patched(api)) == sorted(run_ids)
        assert all(api.runs[(CHILD, run_id)] == "failed" for run_id in run_ids)
        # Plain HTTP only: a message to the supervisor could deadlock in the SIGTERM handler.
        assert len(supervisor.sent) == sent
        cancelled = one(logs, CANCELLED)
        assert cancelled["run_ids"] == run_ids
        assert state in cancelled["reason"]

    def test_items_not_started_and_runs_it_saw_end_are_not_asked_about(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor, ONE_QUICK)
        parent = make(supervisor, clock, confs=confs(6), max_active=3)
        # Long enough for the first run to end and the fourth item to take its slot.
        parent.kill_at("GetDRCount", nth=12)
        run_ids = triggered(supervisor, api)
        planned = parent.store.values[RECORD_KEY]["run_ids"]
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert run_ids == planned[:4]
        assert asked_about(api) == set(run_ids[1:])
        assert sorted(patched(api)) == sorted(run_ids[1:])

    def test_a_run_that_already_ended_is_read_and_left_as_it_ended(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3))
        parent.kill_at("GetDRCount", nth=2)
        first, *others = triggered(supervisor, api)
        # Over on the server; the task had not seen it yet.
        api.runs[(CHILD, first)] = "success"
        parent_is(api, parent, "failed")

        logs = on_kill(parent)

        assert api.runs[(CHILD, first)] == "success"
        assert sorted(patched(api)) == sorted(others)
        ended = one(logs, "Not cancelling the fan-out's Dag runs that already ended")
        assert ended["states"] == {first: "success"}

    def test_a_run_of_the_child_dag_this_task_did_not_trigger_is_never_touched(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        api.runs[(CHILD, "someone_elses")] = "running"
        parent = make(supervisor, clock, confs=confs(2))
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert asked_about(api) == set(run_ids)
        assert api.runs[(CHILD, "someone_elses")] == "running"

    @pytest.mark.parametrize("state", ["running", "up_for_retry"])
    def test_a_durable_try_with_retries_left_keeps_the_runs_its_retry_reconnects_to(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, state: str
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3), durable=True)
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent_is(api, parent, state)

        logs = on_kill(parent)

        assert api.routes() == [TOKEN, TASK_INSTANCE]
        assert all(api.runs[(CHILD, run_id)] == "running" for run_id in run_ids)
        kept = one(logs, "Not cancelling the fan-out's Dag runs")
        assert "durable retry reconnects" in kept["reason"]

    def test_a_try_whose_retry_triggers_anew_cancels_what_it_would_orphan(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3), durable=False)
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent_is(api, parent, "running")

        on_kill(parent)

        assert sorted(patched(api)) == sorted(run_ids)

    def test_runs_a_durable_retry_reconnected_to_are_cancelled_like_its_own(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3))
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent.retry()
        parent.kill_at("GetDRCount", nth=4)
        assert [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)] == run_ids  # reconnected
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert sorted(patched(api)) == sorted(run_ids)

    def test_runs_are_cancelled_one_at_a_time(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(10))
        parent.kill_at("GetDRCount", nth=2)
        run_ids = triggered(supervisor, api)
        parent_is(api, parent, "failed")
        api.latency = 0.05

        on_kill(parent)

        assert sorted(patched(api)) == sorted(run_ids)
        assert api.most_in_flight == 1

    def test_a_failed_read_of_the_parent_cancels_nothing_and_says_why(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(2))
        parent.kill_at("GetDRCount", nth=2)
        triggered(supervisor, api)
        api.failures[TASK_INSTANCE] = (503, "Service Unavailable")

        logs = on_kill(parent)

        assert patched(api) == []
        warning = one(logs, "Not cancelling the fan-out's Dag runs: a request to the Airflow API failed")
        assert "HTTP 503" in warning["error"]

    def test_neither_the_token_nor_the_password_is_logged(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(2))
        with structlog.testing.capture_logs() as logs:
            parent.kill_at("GetDRCount", nth=2)
            triggered(supervisor, api)
            parent_is(api, parent, "failed")
            logs += on_kill(parent)

        assert api.issued
        assert CANCELLED in repr(logs)
        assert secrets_in(logs, api) == []

    def test_it_is_looked_into_once(self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(2))
        parent.kill_at("GetDRCount", nth=2)
        triggered(supervisor, api)
        parent_is(api, parent, "running")
        on_kill(parent)
        seen = len(api.requests)

        on_kill(parent)

        assert len(api.requests) == seen


def stopped_in(parent: FanOutParent, message: str, *, nth: int, then_killed_at: int) -> None:
    """
    Run the parent; the server stops it while it sends its ``nth`` message of this kind, as Airflow does.

    The SIGTERM handler (``on_kill``) runs in the middle of that request, whose answer then comes; the
    task goes on until the SIGKILL, at its ``then_killed_at``-th count of active runs.
    """
    supervisor = parent.supervisor
    handler, counts = getattr(supervisor, f"_on_{message}"), supervisor._on_GetDRCount
    calls = {"n": 0, "counts": 0}

    def stopping(msg: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth:
            assert parent.operator is not None
            parent.operator.on_kill()
        return handler(msg)

    def killing(msg: Any) -> Any:
        calls["counts"] += 1
        if calls["counts"] == then_killed_at:
            raise WorkerKilled("SIGKILL after on_kill")
        return stopping(msg) if message == "GetDRCount" else counts(msg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, f"_on_{message}", stopping)
        patch.setattr(supervisor, "_on_GetDRCount", killing)
        with pytest.raises(WorkerKilled):
            parent.run()


@pytest.mark.usefixtures("connected", "stopped_parent")
class TestNothingStartsOnceStopped:
    @pytest.fixture
    def stopped_parent(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # What the stopped try's own state reads as, to the supervisor (its stop note) and to the API;
        # on the test's clock (hence clock), from its START.
        supervisor.add_dag("parent", task_timeline={"trigger": [(0.0, "failed")]})
        supervisor.add_run("parent", "manual__parent", seconds=3600)
        api.task_instances[("parent", "manual__parent", "trigger", -1)] = {"state": "failed", "try_number": 1}
        # Each run the parent triggers, shown running by the API as soon as it exists.
        trigger = supervisor._on_TriggerDagRun

        def showing(msg: Any) -> Any:
            api.runs[(CHILD, msg.run_id)] = "running"
            return trigger(msg)

        monkeypatch.setattr(supervisor, "_on_TriggerDagRun", showing)

    def test_a_slot_that_frees_up_after_the_stop_starts_no_item(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        child_dag(supervisor, ONE_QUICK)
        parent = make(supervisor, clock, confs=confs(4), max_active=2)

        with structlog.testing.capture_logs() as logs:
            stopped_in(parent, "GetDRCount", nth=1, then_killed_at=12)

        # The first run ended at 2 s and freed a slot: the stopped task left it free.
        assert len(supervisor.sent_of(TriggerDagRun)) == 2
        assert "Not starting the fan-out's items left: the task was stopped" in [e["event"] for e in logs]
        # The stop is still noted for the next try.
        assert parent.store.values[RECORD_KEY]["ended"] == "stopped"

    @pytest.mark.parametrize("nth", [1, 2])
    def test_a_run_whose_trigger_was_in_flight_is_cancelled_when_it_returns(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, nth: int
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(4))

        with structlog.testing.capture_logs() as logs:
            # The SIGTERM comes while the nth item's trigger is on its way; no item starts after it.
            stopped_in(parent, "TriggerDagRun", nth=nth, then_killed_at=2)

        *before, in_flight = [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]
        assert len(before) == nth - 1
        assert patched(api) == [*before, in_flight]
        if before:
            assert one(logs, CANCELLED)["run_ids"] == before
        else:
            one(logs, "The task was stopped; none of the fan-out's Dag runs is active")
        assert one(logs, "Cancelled the child Dag run")["run_id"] == in_flight


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
        assert TASK_INSTANCE not in api.routes()
        assert one(logs, CANCELLED)["reason"] == "execution_timeout on the last try"

    def test_a_durable_try_with_retries_left_keeps_the_runs(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3))
        timed_out(parent.run, monkeypatch)
        triggered(supervisor, api)

        logs = on_kill(parent)

        assert api.routes() == [TOKEN]
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

        assert took < short_budget + 0.2
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

        assert time.monotonic() - started < short_budget + 0.2
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

        assert time.monotonic() - started < short_budget + 0.2
        one(logs, "Not cancelling the fan-out's Dag runs: out of time before deciding")


def test_the_real_budget_leaves_time_before_the_sigkill() -> None:
    # The supervisor sends SIGKILL 5 s after SIGTERM; the wait still notes the stop after on_kill.
    assert cancel_mode.KILL_SECONDS + cancel_runs.THREAD_GRACE < 5.0
    assert cancel_mode.KILL_REQUEST_SECONDS <= cancel_mode.KILL_SECONDS
