"""A durable operator's retry: reconnect, finish or resubmit; crash windows, lost responses, stale records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRunState, TriggerDagRun

from tests.unit.conftest import KEY, LINK_KEY, kill_mid_wait, kill_run

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent


class TestDurableDecisions:
    def test_active_child_reconnects_and_keeps_waiting(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=3)
        supervisor.sent.clear()

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert supervisor.sent_of(TriggerDagRun) == []
        assert {m.run_id for m in supervisor.sent_of(GetDagRunState)} == {run.run_id}
        (reconnect,) = [e for e in logs if e["event"].startswith("Reconnecting")]
        assert (reconnect["run_id"], reconnect["decision"], reconnect["try_number"]) == (
            run.run_id,
            "reconnect",
            2,
        )
        assert parent.ti.xcoms["trigger_run_id"] == run.run_id
        assert parent.ti.xcoms[LINK_KEY].endswith(f"/dags/child/runs/{run.run_id}")

    def test_child_that_already_succeeded_finishes_without_triggering(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        clock: Clock,
    ) -> None:
        supervisor.add_dag("child", run_seconds=5)
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=2)
        clock.traveller.shift(60)  # the retry comes after the child ended
        supervisor.sent.clear()

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        assert supervisor.kinds_sent() == ["GetDagRunState"]
        assert [e["decision"] for e in logs if "already finished" in e["event"]] == ["already_finished"]
        assert parent.ti.xcoms["trigger_run_id"] == supervisor.runs_of("child")[0].run_id

    def test_child_that_failed_is_resubmitted_once_under_a_new_run_id(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        clock: Clock,
    ) -> None:
        supervisor.add_dag("child", run_seconds=5, outcome="failed")
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=2)
        clock.traveller.shift(60)
        supervisor.dags["child"].outcome = "success"

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        first, second = supervisor.runs_of("child")
        assert (first.state(), second.state()) == ("failed", "success")
        assert parent.store.values[KEY]["run_id"] == second.run_id
        assert [e["decision"] for e in logs if "ended badly" in e["event"]] == ["resubmit"]

    def test_failed_child_under_a_fixed_run_id_is_reset_not_refused(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        clock: Clock,
    ) -> None:
        supervisor.add_dag("child", run_seconds=5, outcome="failed")
        parent = make_parent(wait_for_completion=True, durable=True, trigger_run_id="nightly")
        kill_mid_wait(parent, poll=3)
        clock.traveller.shift(60)
        supervisor.dags["child"].outcome = "success"

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.resets, run.state()) == ("nightly", 1, "success")
        assert supervisor.sent_of(TriggerDagRun)[-1].reset_dag_run is True


class TestCrashWindows:
    def test_killed_after_the_save_before_the_trigger_retry_triggers_the_saved_id(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_run(parent, "TriggerDagRun")
        saved_run_id = parent.store.values[KEY]["run_id"]
        assert supervisor.runs == {}

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert run.run_id == saved_run_id

    def test_saved_before_the_trigger_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True)
        seen: list[Any] = []
        handler = supervisor._on_TriggerDagRun

        def check_store_first(msg: TriggerDagRun) -> Any:
            seen.append(parent.store.get(KEY))
            return handler(msg)

        monkeypatch.setattr(supervisor, "_on_TriggerDagRun", check_store_first)

        parent.run()

        (msg,) = supervisor.sent_of(TriggerDagRun)
        assert seen == [
            {"dag_id": "child", "run_id": msg.run_id, "max_tries": 2, "clear_number": 0, "try_number": 1}
        ]

    def test_killed_after_the_trigger_before_the_first_poll_retry_reconnects(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=20)
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=1)

        parent.retry()
        parent.run()

        assert len(supervisor.runs_of("child")) == 1
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_without_durable_the_retry_triggers_a_duplicate(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=20)
        parent = make_parent(wait_for_completion=True, durable=False)
        kill_mid_wait(parent, poll=2)

        parent.retry()
        parent.run()

        assert len(supervisor.runs_of("child")) == 2


class TestLostResponse:
    @pytest.mark.parametrize("durable", [True, False])
    def test_conflict_on_the_id_we_planned_is_ours(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, durable: bool
    ) -> None:
        supervisor.add_dag("child")
        supervisor.lose_trigger_responses = 1
        parent = make_parent(wait_for_completion=True, durable=durable)

        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert parent.ti.xcoms["trigger_run_id"] == run.run_id
        assert [e["run_id"] for e in logs if "it is ours" in e["event"]] == [run.run_id]

    def test_conflict_on_a_fixed_run_id_that_was_free_before_is_ours(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.lose_trigger_responses = 1
        parent = make_parent(wait_for_completion=True, durable=True, trigger_run_id="fixed")

        parent.run()

        assert [r.run_id for r in supervisor.runs_of("child")] == ["fixed"]
        assert supervisor.kinds_sent()[:2] == ["GetDagRunState", "TriggerDagRun"]

    def test_retry_of_the_saved_id_that_answers_conflict_reconnects(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_run(parent, "TriggerDagRun")
        supervisor.lose_trigger_responses = 1

        parent.retry()
        parent.run()

        assert len(supervisor.runs_of("child")) == 1


class TestStaleState:
    @pytest.mark.parametrize(
        "stored",
        [
            pytest.param({"dag_id": "other_child", "run_id": "r9", "max_tries": 2}, id="other-dag"),
            pytest.param("manual__garbage", id="not-a-record"),
            pytest.param({"run_id": 42}, id="malformed"),
        ],
    )
    def test_is_ignored_with_a_warning_and_a_fresh_run_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, stored: Any
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, durable=True)
        parent.store.values[KEY] = stored

        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert parent.store.values[KEY]["run_id"] == run.run_id
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "Ignoring the stored child run record"
        ]
