"""A clear versus a retry: a cleared parent triggers a new child run, a retry reconnects to the one it had."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from tests.unit.conftest import KEY, kill_mid_wait, stop_mid_wait

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent


class TestClearVersusRetry:
    def test_clearing_a_finished_parent_triggers_a_new_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, durable=True)
        parent.run()

        parent.clear()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        assert len(supervisor.runs_of("child")) == 2
        assert "The task was cleared; triggering a new Dag run" in [e["event"] for e in logs]

    def test_clearing_a_parent_still_waiting_triggers_a_new_child_and_leaves_the_old_one(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(wait_for_completion=True, durable=True)
        # A clear that raised max_tries (as for a deferred task): the waiting try was gone for good.
        kill_mid_wait(parent, poll=2)

        parent.clear()
        parent.run()

        first, second = supervisor.runs_of("child")
        assert first.resets == 0
        assert parent.store.values[KEY]["run_id"] == second.run_id

    def test_a_retry_is_not_taken_for_a_clear(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=20)
        parent = make_parent(wait_for_completion=True, durable=True)
        kill_mid_wait(parent, poll=2)

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        assert parent.ti.max_tries == parent.store.values[KEY]["max_tries"]
        assert [e["decision"] for e in logs if "decision" in e] == ["reconnect"]
        assert not [e for e in logs if "cleared" in e["event"]]

    def test_clearing_a_finished_parent_after_lowering_its_retries_triggers_a_new_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True, retries=2)
        parent.run()
        # retries lowered from 2 to 1: the clear sets max_tries to try_number + retries = 1 + 1, the very
        # max_tries the record was saved with. The run's clear_number and the success mark tell.
        parent.ti.retries = 1
        parent.clear()
        assert parent.ti.max_tries == parent.store.values[KEY]["max_tries"]

        parent.run()

        assert len(supervisor.runs_of("child")) == 2

    def test_clearing_a_running_parent_triggers_a_new_child(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True)
        # Airflow sets a running task it clears to restarting; its refused heartbeat brings on_kill. The
        # clear gave the task instance a new id, so the stopped try cannot write its store.
        stop_mid_wait(parent, own_state="restarting", poll=2)
        assert "ended" not in parent.store.values[KEY]

        # The executor reports the killed try's end as a success: the scheduler raises max_tries
        # ("was cleared and successfully terminated"), measured in tests/e2e/test_clear_running_parent.py.
        parent.clear()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        first, second = supervisor.runs_of("child")
        assert parent.store.values[KEY]["run_id"] == second.run_id
        (cleared,) = [e for e in logs if e["event"] == "The task was cleared; triggering a new Dag run"]
        assert (cleared["dag_id"], cleared["previous_run_id"]) == ("child", first.run_id)

    def test_marking_a_waiting_parent_failed_then_clearing_it_after_lowering_retries_re_runs(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True, retries=2)
        # A person marks the waiting task failed: the task instance keeps its id, so the note is written.
        stop_mid_wait(parent, own_state="failed", poll=2)
        assert parent.store.values[KEY]["ended"] == "stopped"

        # retries lowered from 2 to 1, then a clear that does not reset the run: max_tries = 1 + 1, as
        # saved, and the run's clear_number unchanged. Only the note tells.
        parent.ti.retries = 1
        parent.ti.max_tries = parent.ti.try_number + parent.ti.retries
        parent.ti.try_number += 1
        parent.run()

        assert len(supervisor.runs_of("child")) == 2

    def test_a_sigterm_while_the_server_still_runs_the_try_reconnects(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        # The worker shutting down sends SIGTERM too; the task instance is still running on the server.
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True)
        stop_mid_wait(parent, own_state="running", poll=2)
        assert "ended" not in parent.store.values[KEY]

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        assert len(supervisor.runs_of("child")) == 1
        assert [e["decision"] for e in logs if "decision" in e] == ["reconnect"]

    def test_another_tasks_clear_while_this_one_awaits_its_retry_reconnects(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=60)
        parent = make_parent(wait_for_completion=True)
        kill_mid_wait(parent, poll=2)
        parent.ti.dag_run.clear_number += 1  # a sibling task of the parent run is cleared

        parent.retry()
        parent.run()

        assert len(supervisor.runs_of("child")) == 1

    def test_a_success_marks_the_record(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True)

        parent.run()

        assert parent.store.values[KEY]["ended"] == "success"
        assert parent.store.values[KEY]["clear_number"] == 0
