"""The operator's ``on_kill`` with ``cancel_on_kill``: after a SIGTERM, and after ``execution_timeout``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import TriggerDagRun

from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, SIGN_IN, TASK_INSTANCE
from tests.unit import cancel_helpers
from tests.unit.cancel_helpers import api_shows, secrets_in
from tests.unit.conftest import KEY, connect, kill_mid_wait, kill_run

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent, Parent

pytestmark = pytest.mark.timeout(30)

WAITING: dict[str, Any] = {"wait_for_completion": True, "cancel_on_kill": True}
NOT_CANCELLING_ATTACHED = "Not cancelling the Dag run: this task did not create it"


def killed_mid_wait(parent: Parent, api: FakeApi) -> str:
    """Run the parent until its worker dies waiting; return the child run, which the API shows running."""
    kill_mid_wait(parent, poll=2)
    run_id = parent.ti.xcoms["trigger_run_id"]
    api.runs[("child", run_id)] = "running"
    return str(run_id)


def parent_is(api: FakeApi, parent: Parent, state: str | None, *, try_number: int | None = None) -> None:
    api_shows(api, parent.ti, state, try_number=try_number)


def on_kill(parent: Parent) -> list[Any]:
    """Call the operator's on_kill, as the SIGTERM handler does; return what it logged."""
    assert parent.operator is not None
    with structlog.testing.capture_logs() as logs:
        parent.operator.on_kill()
    return logs


def events(logs: list[Any]) -> list[str]:
    return [entry["event"] for entry in logs]


@pytest.fixture
def connected(supervisor: FakeSupervisor, api: FakeApi) -> None:
    supervisor.add_dag("child", run_seconds=3600)
    connect(supervisor, api)


@pytest.mark.usefixtures("connected")
class TestOnKillAfterSigterm:
    @pytest.mark.parametrize("state", ["failed", "success", "restarting", "skipped"])
    @pytest.mark.parametrize("durable", [True, False])
    def test_a_try_the_server_stopped_cancels_the_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, state: str, durable: bool
    ) -> None:
        parent = make_parent(durable=durable, **WAITING)
        run_id = killed_mid_wait(parent, api)
        parent_is(api, parent, state)
        sent = len(supervisor.sent)

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "failed"
        assert api.routes()[-3:] == [TASK_INSTANCE, DAG_RUN_GET, DAG_RUN_PATCH]
        # Plain HTTP only: a message to the supervisor could deadlock in the SIGTERM handler.
        assert len(supervisor.sent) == sent
        (cancelled,) = [e for e in logs if e["event"] == "Cancelled the child Dag run"]
        assert (cancelled["dag_id"], cancelled["run_id"]) == ("child", run_id)
        assert state in cancelled["reason"]

    @pytest.mark.parametrize("state", ["running", "up_for_retry"])
    def test_a_durable_try_a_retry_reconnects_from_keeps_the_run(
        self, api: FakeApi, make_parent: MakeParent, state: str
    ) -> None:
        parent = make_parent(durable=True, **WAITING)
        run_id = killed_mid_wait(parent, api)
        parent_is(api, parent, state)

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "running"
        assert DAG_RUN_PATCH not in api.routes()
        (kept,) = [e for e in logs if e["event"] == "Not cancelling the Dag run"]
        assert "durable retry reconnects" in kept["reason"]

    @pytest.mark.parametrize(("durable", "cancelled"), [(True, False), (False, True)])
    def test_a_later_try_that_has_started_keeps_only_a_durable_run(
        self, api: FakeApi, make_parent: MakeParent, durable: bool, cancelled: bool
    ) -> None:
        # The scheduler gave this try up and the retry runs already: a durable one reconnected to the run.
        parent = make_parent(durable=durable, **WAITING)
        run_id = killed_mid_wait(parent, api)
        parent_is(api, parent, "running", try_number=parent.ti.try_number + 1)

        on_kill(parent)

        assert (api.runs[("child", run_id)] == "failed") is cancelled

    def test_a_try_still_running_without_durable_cancels_what_its_retry_would_orphan(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(durable=False, **WAITING)
        run_id = killed_mid_wait(parent, api)
        parent_is(api, parent, "running")

        on_kill(parent)

        assert api.runs[("child", run_id)] == "failed"

    def test_a_failed_request_cancels_nothing_and_says_why(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        # The API server away: the heartbeats failed too, which is why the SIGTERM came.
        parent = make_parent(**WAITING)
        run_id = killed_mid_wait(parent, api)
        api.failures[TASK_INSTANCE] = (503, "Service Unavailable")

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "running"
        (warning,) = [e for e in logs if e["log_level"] == "warning"]
        assert warning["event"] == "Not cancelling the Dag run: a request to the Airflow API failed"
        assert "HTTP 503" in warning["error"]

    def test_a_run_that_already_ended_is_left_as_it_ended(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**WAITING)
        run_id = killed_mid_wait(parent, api)
        api.runs[("child", run_id)] = "success"
        parent_is(api, parent, "failed")

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "success"
        assert DAG_RUN_PATCH not in api.routes()
        assert "Not cancelling the Dag run: it already ended" in events(logs)

    def test_a_run_attached_to_is_never_cancelled(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        # Another parent may share it.
        supervisor.add_run("child", "request-42", seconds=3600)
        api.runs[("child", "request-42")] = "running"
        parent = make_parent(trigger_run_id="request-42", attach_when_already_exists=True, **WAITING)
        kill_run(parent, "GetTaskStates", nth=2)
        parent_is(api, parent, "failed")

        logs = on_kill(parent)

        assert api.routes() == SIGN_IN
        assert supervisor.sent_of(TriggerDagRun) == []
        (kept,) = [e for e in logs if e["event"] == NOT_CANCELLING_ATTACHED]
        assert (kept["dag_id"], kept["run_id"]) == ("child", "request-42")

    def test_a_run_reset_with_reset_dag_run_is_someone_elses_and_never_cancelled(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        # The run existed before this task: reset_dag_run clears it and runs it again, but it is not ours.
        supervisor.add_run("child", "nightly", seconds=3600)
        api.runs[("child", "nightly")] = "running"
        parent = make_parent(trigger_run_id="nightly", reset_dag_run=True, **WAITING)
        kill_run(parent, "GetTaskStates", nth=2)
        parent_is(api, parent, "failed")

        logs = on_kill(parent)

        assert len(supervisor.sent_of(TriggerDagRun)) == 1
        assert api.runs[("child", "nightly")] == "running"
        (kept,) = [e for e in logs if e["event"] == NOT_CANCELLING_ATTACHED]
        assert kept["run_id"] == "nightly"

    def test_a_run_created_with_reset_dag_run_is_this_tasks_and_cancelled(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=3600)
        parent = make_parent(trigger_run_id="nightly", reset_dag_run=True, **WAITING)
        kill_run(parent, "GetTaskStates", nth=2)
        api.runs[("child", "nightly")] = "running"
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert api.runs[("child", "nightly")] == "failed"

    def test_a_run_a_durable_retry_reconnected_to_is_cancelled_like_its_own(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**WAITING)
        run_id = killed_mid_wait(parent, api)
        parent.retry()
        kill_run(parent, "GetTaskStates", nth=2)
        assert parent.store.values[KEY]["run_id"] == run_id  # reconnected, nothing triggered
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert api.runs[("child", run_id)] == "failed"

    def test_with_attach_allowed_a_reconnected_run_is_spared(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        # The record does not say whether the earlier try triggered the run or attached to it.
        parent = make_parent(attach_when_already_exists=True, **WAITING)
        run_id = killed_mid_wait(parent, api)
        parent.retry()
        kill_run(parent, "GetTaskStates", nth=2)
        parent_is(api, parent, "failed")

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "running"
        assert NOT_CANCELLING_ATTACHED in events(logs)

    def test_neither_the_token_nor_the_password_is_logged(
        self, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**WAITING)
        with structlog.testing.capture_logs() as logs:
            killed_mid_wait(parent, api)
            parent_is(api, parent, "failed")
            logs += on_kill(parent)

        assert api.issued
        assert "Cancelled the child Dag run" in repr(logs)
        assert secrets_in(logs, api) == []

    def test_it_is_looked_into_once(self, api: FakeApi, make_parent: MakeParent) -> None:
        # A second SIGTERM while the first is handled would run it again inside it.
        parent = make_parent(**WAITING)
        killed_mid_wait(parent, api)
        parent_is(api, parent, "running")
        on_kill(parent)
        seen = len(api.requests)

        on_kill(parent)

        assert len(api.requests) == seen

    def test_a_durable_stop_is_still_noted(self, api: FakeApi, make_parent: MakeParent) -> None:
        parent = make_parent(**WAITING)
        killed_mid_wait(parent, api)
        parent_is(api, parent, "failed")

        on_kill(parent)

        assert parent.operator is not None
        assert parent.operator.stop_note is not None
        assert parent.operator.stop_note.pending


def timed_out(parent: Parent, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the parent until ``execution_timeout`` interrupts its wait; return the child run it triggered."""
    cancel_helpers.timed_out(parent.run, monkeypatch)
    return str(parent.ti.xcoms["trigger_run_id"])


@pytest.mark.usefixtures("connected")
class TestOnKillAfterTimeout:
    def test_the_last_try_cancels_without_asking_about_the_parent(
        self, api: FakeApi, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        parent = make_parent(retries=0, **WAITING)
        run_id = timed_out(parent, monkeypatch)
        api.runs[("child", run_id)] = "running"

        logs = on_kill(parent)

        assert api.runs[("child", run_id)] == "failed"
        assert TASK_INSTANCE not in api.routes()[len(SIGN_IN) :]
        (cancelled,) = [e for e in logs if e["event"] == "Cancelled the child Dag run"]
        assert cancelled["reason"] == "execution_timeout on the last try"

    def test_a_durable_try_with_retries_left_keeps_the_run(
        self, api: FakeApi, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        parent = make_parent(retries=2, durable=True, **WAITING)
        run_id = timed_out(parent, monkeypatch)
        api.runs[("child", run_id)] = "running"

        logs = on_kill(parent)

        assert api.routes() == SIGN_IN
        (kept,) = [e for e in logs if e["event"] == "Not cancelling the Dag run"]
        assert "durable retry reconnects" in kept["reason"]

    def test_a_try_whose_retry_triggers_anew_cancels(
        self, api: FakeApi, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        parent = make_parent(retries=2, durable=False, **WAITING)
        run_id = timed_out(parent, monkeypatch)
        api.runs[("child", run_id)] = "running"

        on_kill(parent)

        assert api.runs[("child", run_id)] == "failed"
