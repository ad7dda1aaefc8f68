from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.exceptions import AirflowTaskTimeout
from airflow.sdk.execution_time.comms import GetTaskStates

from standard_ext.durable.decision import SavedRun
from standard_ext.wait.stopped import StopNote
from tests.fake_errors import api_error
from tests.fake_task import FakeTaskInstance, FakeTaskStateStore
from tests.unit.conftest import KEY, kill_mid_wait

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

RECORD = SavedRun(dag_id="child", run_id="r1", max_tries=2, clear_number=0)


def note_for(supervisor: FakeSupervisor, own_state: str, *, map_index: int = -1) -> StopNote:
    ti = FakeTaskInstance(map_index=map_index)
    key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
    supervisor.add_dag(ti.dag_id, task_timeline={key: [(0.0, own_state)]})
    supervisor.add_run(ti.dag_id, ti.run_id, seconds=3600)
    return StopNote(ti=ti, store=FakeTaskStateStore(), key=KEY, record=RECORD)


class TestNote:
    @pytest.mark.parametrize("own_state", ["failed", "success"])
    def test_a_try_the_server_stopped_marks_the_record(
        self, supervisor: FakeSupervisor, own_state: str
    ) -> None:
        note = note_for(supervisor, own_state)

        assert note.note() is True

        assert note.store.values[KEY] == {**RECORD.to_json(), "ended": "stopped"}

    def test_a_try_cleared_while_it_ran_writes_nothing(self, supervisor: FakeSupervisor) -> None:
        # The clear gave the task instance a new id: the store would answer 404 for this try's.
        note = note_for(supervisor, "restarting")

        with structlog.testing.capture_logs() as logs:
            assert note.note() is False

        assert note.store.values == {}
        assert [e["event"] for e in logs] == [
            "Cleared while this try waited; Airflow raises max_tries at its end, so the next try "
            "triggers a new Dag run"
        ]

    @pytest.mark.parametrize("own_state", ["running", "up_for_retry"])
    def test_a_try_the_server_still_runs_marks_nothing(
        self, supervisor: FakeSupervisor, own_state: str
    ) -> None:
        note = note_for(supervisor, own_state)

        assert note.note() is False

        assert note.store.values == {}

    def test_a_mapped_task_asks_its_own_map_index(self, supervisor: FakeSupervisor) -> None:
        note = note_for(supervisor, "failed", map_index=3)

        assert note.note() is True

    def test_a_question_that_fails_marks_nothing_and_says_so(self, supervisor: FakeSupervisor) -> None:
        # The API server away: the heartbeats failed too, which is why the SIGTERM came.
        note = note_for(supervisor, "failed")
        supervisor.fail_on(GetTaskStates, nth=1, error=api_error(503, "unavailable", "restarting"))

        with structlog.testing.capture_logs() as logs:
            assert note.note() is False

        assert note.store.values == {}
        assert [e["event"] for e in logs] == ["Could not note that this try was stopped; a retry reconnects"]

    def test_it_looks_only_once(self, supervisor: FakeSupervisor) -> None:
        note = note_for(supervisor, "restarting")
        note.requested.set()
        assert note.pending

        note.note()

        assert not note.pending


class TestOnKillInTheWait:
    def test_on_kill_itself_sends_nothing(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        # It runs in the SIGTERM handler: a request from there could deadlock on the channel's lock.
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True)
        kill_mid_wait(parent, poll=2)
        assert parent.operator is not None
        assert parent.operator.stop_note is not None
        sent = len(supervisor.sent)

        parent.operator.on_kill()

        assert len(supervisor.sent) == sent
        assert parent.operator.stop_note.pending

    def test_an_execution_timeout_notes_nothing(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        clock: Clock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The runner's timeout calls on_kill, then raises in the wait: the try failed, a retry follows.
        from standard_ext.wait import schedule as poll_schedule

        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True)

        def alarm(seconds: float, *, stop: object = None) -> None:
            assert parent.operator is not None
            parent.operator.on_kill()
            raise AirflowTaskTimeout("Timeout")

        monkeypatch.setattr(poll_schedule, "wait", alarm)
        sent = len(supervisor.sent)
        with pytest.raises(AirflowTaskTimeout):
            parent.run()

        assert "ended" not in parent.store.values[KEY]
        assert not [
            m for m in supervisor.sent[sent:] if isinstance(m, GetTaskStates) and m.dag_id == "parent"
        ]
