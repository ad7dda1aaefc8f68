"""A fan-out stopped mid-try: no item starts after the stop; a trigger in flight has its run cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from standard_ext.wait.stop_guard import TaskStopped
from tests.unit.cancel_helpers import one, patched
from tests.unit.fanout_kill_helpers import CANCELLED, ONE_QUICK, child_dag, make
from tests.unit.fanout_parent import CHILD, FanOutParent, WorkerKilled, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)


def stopped_in(parent: FanOutParent, message: str, *, nth: int, then_killed_at: int) -> None:
    """
    Run the parent; the server stops it while it sends its ``nth`` message of this kind, as Airflow does.

    The SIGTERM handler (``on_kill``) runs in the middle of that request, whose answer then comes; the
    task goes on until the SIGKILL, at its ``then_killed_at``-th count of active runs, unless it ends
    itself first: it raises ``TaskStopped`` where it would have started an item.
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
        with pytest.raises(TaskStopped, match="not going on to start the fan-out's items left"):
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

        stopped_in(parent, "GetDRCount", nth=1, then_killed_at=12)

        # The first run ended at 2 s and freed a slot: the stopped task left it free.
        assert len(supervisor.sent_of(TriggerDagRun)) == 2
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
