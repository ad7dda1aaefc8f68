"""The fan-out's ``on_kill`` after a SIGTERM: which active runs it triggered are cancelled, which are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from tests.fake_api import SIGN_IN, TASK_INSTANCE
from tests.unit.cancel_helpers import asked_about, one, patched, secrets_in
from tests.unit.fanout_kill_helpers import (
    CANCELLED,
    ONE_QUICK,
    child_dag,
    make,
    on_kill,
    parent_is,
    triggered,
)
from tests.unit.fanout_parent import CHILD, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

pytestmark = pytest.mark.timeout(30)


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

        assert api.routes() == [*SIGN_IN, TASK_INSTANCE]
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
