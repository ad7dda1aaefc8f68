"""A stopped try starts nothing: after ``on_kill`` neither operator triggers a run or saves a new run id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from standard_ext.wait.stop_guard import TaskStopped
from tests.unit.conftest import KEY
from tests.unit.fanout_kill_helpers import ONE_QUICK, child_dag, make
from tests.unit.fanout_parent import CHILD, confs

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent, Parent
    from tests.unit.fanout_parent import FanOutParent

pytestmark = pytest.mark.timeout(30)


def run_stopped(
    parent: Parent | FanOutParent, supervisor: FakeSupervisor, message: str, *, nth: int = 1
) -> None:
    """Run ``parent``; ``on_kill`` runs during its ``nth`` message of this kind; the try must end stopped."""
    handler = getattr(supervisor, f"_on_{message}")
    calls = {"n": 0}

    def answering(msg: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth:
            assert parent.operator is not None
            parent.operator.on_kill()
        return handler(msg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, f"_on_{message}", answering)
        with pytest.raises(TaskStopped, match=r"was stopped \(on_kill was called\); not going on to"):
            parent.run()


class TestSingleOperator:
    def test_a_stop_during_the_write_ahead_sends_no_trigger(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(trigger_run_id="request-1", wait_for_completion=True)
        # The fixed run id is looked up first (GetDagRunState): the SIGTERM comes then.
        run_stopped(parent, supervisor, "GetDagRunState")

        assert supervisor.sent_of(TriggerDagRun) == []
        # Nothing was saved either: the next try plans afresh.
        assert KEY not in parent.store.values

    def test_a_stop_between_the_write_ahead_and_the_trigger_sends_no_trigger(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True)
        store_set = parent.store.set

        def saved_then_stopped(key: str, value: Any, **kwargs: Any) -> None:
            store_set(key, value, **kwargs)
            assert parent.operator is not None
            parent.operator.on_kill()

        monkeypatch.setattr(parent.store, "set", saved_then_stopped)
        with pytest.raises(TaskStopped, match="not going on to trigger"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        # The saved id is still there: the next try finds it never created and triggers that same id.
        assert parent.store.values[KEY]["run_id"]

    def test_without_durable_a_stop_before_the_trigger_sends_none(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(trigger_run_id="request-1", durable=False, wait_for_completion=True)
        run_stopped(parent, supervisor, "GetDagRunState")

        assert supervisor.sent_of(TriggerDagRun) == []

    def test_an_on_kill_after_the_trigger_leaves_the_wait_as_it_was(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        # The guard only refuses what starts: a wait already under way goes on to its end (or the SIGKILL).
        supervisor.add_dag("child", run_seconds=3)
        parent = make_parent(wait_for_completion=True, poke_interval=1)
        handler = supervisor._on_TriggerDagRun

        def triggered_then_stopped(msg: Any) -> Any:
            answer = handler(msg)
            assert parent.operator is not None
            parent.operator.on_kill()
            return answer

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(supervisor, "_on_TriggerDagRun", triggered_then_stopped)
            parent.run()

        assert len(supervisor.sent_of(TriggerDagRun)) == 1


class TestFanOut:
    @pytest.mark.parametrize("cancel_on_kill", [False, True])
    def test_a_slot_that_frees_up_after_the_stop_starts_no_item(
        self, supervisor: FakeSupervisor, clock: Clock, cancel_on_kill: bool, request: pytest.FixtureRequest
    ) -> None:
        if cancel_on_kill:
            request.getfixturevalue("connected")
        child_dag(supervisor, ONE_QUICK)
        parent = make(supervisor, clock, confs=confs(4), max_active=2, cancel_on_kill=cancel_on_kill)
        # Stopped at the first check of the two active runs; the first ends at 2 s and frees a slot.
        run_stopped(parent, supervisor, "GetDRCount")

        assert len(supervisor.sent_of(TriggerDagRun)) == 2

    def test_a_stop_during_a_trigger_starts_no_later_item(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(5), cancel_on_kill=False)
        run_stopped(parent, supervisor, "TriggerDagRun", nth=2)

        # The second trigger was on its way when the signal came; the three after it never left.
        assert [msg.conf["item"] for msg in supervisor.sent_of(TriggerDagRun)] == [0, 1]

    def test_a_stop_during_planning_saves_no_run_ids(
        self, supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child_dag(supervisor)
        parent = make(supervisor, clock, confs=confs(3), cancel_on_kill=False)
        parent.new_operator()
        operator = parent.operator
        assert operator is not None
        operator.on_kill()
        monkeypatch.setattr(parent, "new_operator", lambda: operator)

        with pytest.raises(TaskStopped, match="save the fan-out's run ids"):
            parent.run()

        assert RECORD_KEY not in parent.store.values
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_a_stop_before_a_redrive_saves_no_new_run_ids(
        self, supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child_dag(supervisor, {0: (1.0, "failed"), 1: (1.0, "success")})
        parent = make(supervisor, clock, confs=confs(2), cancel_on_kill=False)
        with pytest.raises(AirflowException, match="failed") as info:
            parent.run()
        assert not isinstance(info.value, (AirflowFailException, TaskStopped))
        saved = dict(parent.store.values[RECORD_KEY])
        parent.retry()
        handler = supervisor._on_GetDRCount

        def counted_then_stopped(msg: Any) -> Any:
            assert parent.operator is not None
            parent.operator.on_kill()
            return handler(msg)

        # The retry counts the saved runs' states, then would save a new id for the failed item.
        monkeypatch.setattr(supervisor, "_on_GetDRCount", counted_then_stopped)
        with pytest.raises(TaskStopped, match="save the redriven items' run ids"):
            parent.run()

        assert parent.store.values[RECORD_KEY] == saved
        assert len(supervisor.sent_of(TriggerDagRun)) == 2
        assert CHILD in {msg.dag_id for msg in supervisor.sent_of(TriggerDagRun)}
