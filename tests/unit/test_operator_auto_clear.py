"""``auto_clear_failed_tasks`` on ``TriggerDagRunOperator``: a failed child run resumes in place, crash-safely."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.operators.modes import resume as resume_mode
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.resume.clear import PROBE_RUN_ID
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.wait import schedule as poll_schedule
from standard_ext.wait.stop_guard import TaskStopped
from tests.fake_api import CLEAR, CLEAR_CHECK, SIGN_IN, TOKEN
from tests.unit.conftest import KEY, WorkerKilled, connect

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent, Parent

pytestmark = pytest.mark.timeout(30)

RESUMING: dict[str, Any] = {"wait_for_completion": True, "auto_clear_failed_tasks": True, "retries": 2}
# What the clear asks: one run's failed and upstream_failed task instances, the run queued again.
CLEAR_BODY = {
    "dag_run_id": None,
    "dry_run": False,
    "only_failed": True,
    "reset_dag_runs": True,
    "include_upstream": False,
    "include_downstream": False,
}


def clears_sent(api: FakeApi) -> list[dict[str, Any]]:
    """The clears the API received, dry runs left out."""
    return [r.body for r in api.requests if r.route == CLEAR]


def failed_once(supervisor: FakeSupervisor, parent: Parent) -> str:
    """Run the parent's first try to its failure (the child run failed); return the child run id."""
    with pytest.raises(AirflowException, match="failed"):
        parent.run()
    (run,) = supervisor.runs_of("child")
    assert run.state() == "failed"
    return run.run_id


@pytest.fixture
def failing_child(supervisor: FakeSupervisor, api: FakeApi) -> None:
    """A child Dag whose run fails in 5 s (a task ``work`` failed); after a clear, it succeeds."""
    supervisor.add_dag("child", run_seconds=5, outcome="failed")
    connect(supervisor, api)


@pytest.mark.usefixtures("failing_child")
class TestARetryResumesTheFailedRun:
    def test_clears_its_failed_tasks_and_waits_on_the_same_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)
        # The first try signed in and asked, with a dry run, whether it may clear.
        assert api.routes() == [TOKEN, CLEAR_CHECK]
        assert api.requests[1].body == {"dag_run_id": PROBE_RUN_ID, "dry_run": True, "only_failed": True}
        api.requests.clear()

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.state()) == (run_id, 1, "success")
        assert len(supervisor.sent_of(TriggerDagRun)) == 1  # the first try's only
        assert clears_sent(api) == [{**CLEAR_BODY, "dag_run_id": run_id}]
        (cleared,) = [e for e in logs if e["event"].startswith("Cleared the failed tasks")]
        assert (cleared["run_id"], cleared["tasks"]) == (run_id, ["work"])
        assert parent.store.values[KEY] == {
            "dag_id": "child",
            "run_id": run_id,
            "max_tries": 2,
            "clear_number": 0,
            "clears": 1,
            # The try that triggered it: the run is the first try's, resumed.
            "try_number": 1,
            "ended": "success",
        }
        assert parent.ti.xcoms["trigger_run_id"] == run_id

    def test_the_clear_is_recorded_before_it_is_sent(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        parent = make_parent(**RESUMING)
        failed_once(supervisor, parent)
        seen: list[Any] = []
        clear = resume_mode.clear_failed

        def recording(**kwargs: Any) -> list[str]:
            seen.append(dict(parent.store.values[KEY]))
            return clear(**kwargs)

        monkeypatch.setattr(resume_mode, "clear_failed", recording)
        parent.retry()
        parent.run()

        assert [record["clears"] for record in seen] == [1]

    def test_a_second_failure_is_cleared_again_on_the_next_retry(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        failed_once(supervisor, parent)
        supervisor.runs_of("child")[0].then = ["failed", "success"]

        parent.retry()
        with pytest.raises(AirflowException, match="failed"):
            parent.run()
        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.clears, run.state()) == (2, "success")
        assert parent.store.values[KEY]["clears"] == 2

    def test_without_the_flag_a_retry_triggers_a_new_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(wait_for_completion=True, retries=2)
        failed_once(supervisor, parent)
        supervisor.dags["child"].outcome = "success"

        parent.retry()
        parent.run()

        first, second = supervisor.runs_of("child")
        assert (first.clears, first.state(), second.state()) == (0, "failed", "success")
        assert api.requests == []

    def test_a_run_with_no_failed_task_to_clear_is_replaced(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        failed_once(supervisor, parent)
        # Marked failed by hand (or timed out): its unfinished tasks were skipped, none failed.
        supervisor.runs_of("child")[0].failed_tasks = ()
        supervisor.dags["child"].outcome = "success"

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        first, second = supervisor.runs_of("child")
        assert (first.clears, first.state(), second.state()) == (0, "failed", "success")
        assert any(e["event"].startswith("The Dag run has no failed task to clear") for e in logs)
        assert parent.store.values[KEY]["run_id"] == second.run_id

    def test_a_fixed_run_id_is_cleared_not_reset(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(trigger_run_id="nightly", **RESUMING)
        failed_once(supervisor, parent)

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.resets, run.state()) == ("nightly", 1, 0, "success")


class TestAFixedRunIdHeldByAFailedRun:
    def test_the_first_try_resumes_it_instead_of_the_stock_answer(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        held = supervisor.add_run("child", "nightly", outcome="failed")
        parent = make_parent(trigger_run_id="nightly", **RESUMING)

        parent.run()

        assert (held.clears, held.resets, held.state()) == (1, 0, "success")
        assert supervisor.sent_of(TriggerDagRun) == []
        assert parent.store.values[KEY]["run_id"] == "nightly"
        assert parent.store.values[KEY]["clears"] == 1

    def test_with_nothing_to_clear_the_stock_answer_holds(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        held = supervisor.add_run("child", "nightly", outcome="failed")
        held.failed_tasks = ()
        parent = make_parent(trigger_run_id="nightly", **RESUMING)

        with pytest.raises(AirflowException, match="already"):
            parent.run()

        # Not this task's run: neither reset nor replaced.
        assert (held.clears, held.resets) == (0, 0)
        assert supervisor.sent_of(TriggerDagRun) == []

    def test_a_run_that_succeeded_gets_the_stock_answer(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        supervisor.add_run("child", "nightly", outcome="success")
        parent = make_parent(trigger_run_id="nightly", **RESUMING)

        with pytest.raises(AirflowException, match="already"):
            parent.run()

        assert clears_sent(api) == []


@pytest.mark.usefixtures("failing_child")
class TestAPersonsClear:
    def test_of_a_parent_whose_child_failed_resumes_the_child(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)

        parent.clear()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.state()) == (run_id, 1, "success")
        # The record takes the cleared try's max_tries: a later automatic retry is not a clear.
        assert parent.store.values[KEY]["max_tries"] == parent.ti.max_tries

    def test_of_a_parent_whose_child_succeeded_triggers_a_new_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.dags["child"].outcome = "success"
        parent = make_parent(**RESUMING)
        parent.run()

        parent.clear()
        parent.run()

        assert [run.state() for run in supervisor.runs_of("child")] == ["success", "success"]
        assert clears_sent(api) == []


@pytest.mark.usefixtures("failing_child")
class TestCrashPoints:
    def test_killed_after_the_record_before_the_clear_the_retry_clears_once(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)
        parent.retry()
        with monkeypatch.context() as patch:
            patch.setattr(resume_mode, "clear_failed", _dies)
            parent.run_until_killed()
        assert parent.store.values[KEY]["clears"] == 1
        assert supervisor.runs_of("child")[0].state() == "failed"

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.state()) == (run_id, 1, "success")
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_killed_after_the_clear_the_retry_waits_without_clearing_again(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        supervisor.dags["child"].run_seconds = 30
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)
        parent.retry()
        clear = resume_mode.clear_failed

        def clears_then_dies(**kwargs: Any) -> list[str]:
            clear(**kwargs)
            raise WorkerKilled("after the clear")

        with monkeypatch.context() as patch:
            patch.setattr(resume_mode, "clear_failed", clears_then_dies)
            parent.run_until_killed()
        api.requests.clear()

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.state()) == (run_id, 1, "success")
        assert clears_sent(api) == []
        assert any(e["event"].startswith("Reconnecting") for e in logs)

    def test_a_lost_answer_is_sent_again_and_finds_the_clear_took(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.dags["child"].run_seconds = 30
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)
        api.lose_clear_answers = 1
        api.requests.clear()

        parent.retry()
        with structlog.testing.capture_logs() as logs:
            parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.run_id, run.clears, run.state()) == (run_id, 1, "success")
        assert len(clears_sent(api)) == 2
        assert any(e["event"].startswith("Nothing left to clear: an earlier clear took") for e in logs)
        assert len(supervisor.sent_of(TriggerDagRun)) == 1


@pytest.mark.usefixtures("failing_child")
class TestTheApi:
    def test_a_blip_is_ridden_out(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        failed_once(supervisor, parent)
        api.failures[CLEAR], api.failures_left[CLEAR] = (503, "restarting"), 2

        parent.retry()
        parent.run()

        (run,) = supervisor.runs_of("child")
        assert (run.clears, run.state()) == (1, "success")

    def test_a_refused_clear_fails_the_try_naming_the_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        parent = make_parent(**RESUMING)
        run_id = failed_once(supervisor, parent)
        api.failures[CLEAR] = (403, "Forbidden")
        parent.retry()

        with pytest.raises(AirflowException) as info:
            parent.run()

        assert not isinstance(info.value, AirflowFailException)  # its retries apply
        assert f"Dag run {run_id!r} of Dag 'child'" in str(info.value)
        assert "HTTP 403" in str(info.value)
        assert parent.store.values[KEY]["run_id"] == run_id
        assert len(supervisor.sent_of(TriggerDagRun)) == 1

    def test_no_clear_is_sent_after_a_stop(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        parent = make_parent(**RESUMING)
        failed_once(supervisor, parent)
        api.failures[CLEAR] = (503, "restarting")
        parent.retry()

        def stopped_while_waiting(seconds: float) -> None:
            # on_kill comes while the blip's wait runs (a person marks the task failed).
            assert parent.operator is not None
            parent.operator.on_kill()

        monkeypatch.setattr(poll_schedule, "wait", stopped_while_waiting)
        with pytest.raises(TaskStopped):
            parent.run()

        assert len(clears_sent(api)) == 1


class TestSignedInBeforeAnythingIsSent:
    def test_a_user_who_may_not_clear_fails_the_task_naming_the_permission(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)
        api.failures[CLEAR_CHECK] = (403, "Forbidden")
        parent = make_parent(**RESUMING)

        with pytest.raises(AirflowFailException) as info:
            parent.run()

        message = str(info.value)
        assert "auto_clear_failed_tasks" in message
        assert "clear the task instances of Dag 'child'" in message
        assert "role USER" in message
        assert "can edit on DAG Runs, on Task Instances and on the Dag" in message
        assert supervisor.sent_of(TriggerDagRun) == []
        assert parent.store.values == {}

    def test_a_missing_connection_fails_the_task_naming_it(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(**RESUMING)

        with pytest.raises(
            AirflowFailException, match="auto_clear_failed_tasks needs the Airflow connection"
        ):
            parent.run()

        assert supervisor.kinds_sent() == ["GetConnection"]

    def test_with_cancel_on_kill_one_sign_in_serves_both(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        connect(supervisor, api)

        make_parent(cancel_on_kill=True, **RESUMING).run()

        assert api.routes() == [*SIGN_IN, CLEAR_CHECK]
        assert len(api.issued) == 1


class TestParameters:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"durable": False}, "auto_clear_failed_tasks needs durable=True"),
            ({"wait_for_completion": False}, "auto_clear_failed_tasks needs wait_for_completion=True"),
            ({"airflow_api_conn_id": " "}, "airflow_api_conn_id must name the Airflow connection"),
            ({"auto_clear_failed_tasks": "false"}, "auto_clear_failed_tasks must be True or False"),
        ],
    )
    def test_refused_when_built(self, kwargs: dict[str, Any], message: str) -> None:
        values: dict[str, Any] = {"wait_for_completion": True, "auto_clear_failed_tasks": True, **kwargs}
        with pytest.raises(ValueError, match=message) as info:
            TriggerDagRunOperator(task_id="run_child", trigger_dag_id="child", **values)
        assert "'run_child'" in str(info.value)


def _dies(**kwargs: Any) -> list[str]:
    raise WorkerKilled("before the clear is sent")


@pytest.mark.usefixtures("failing_child")
class TestDeferrable:
    def test_the_task_clears_then_defers_on_the_same_run(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, clock: Clock
    ) -> None:
        parent = make_parent(deferrable=True, **RESUMING)
        with pytest.raises(TaskDeferred):
            parent.run()
        (run,) = supervisor.runs_of("child")
        # The trigger saw the run fail, and the resume failed the try.
        clock.traveller.shift(60)
        assert run.state() == "failed"

        parent.retry()
        with pytest.raises(TaskDeferred) as deferred:
            parent.run()

        assert isinstance(deferred.value.trigger, DagRunTrigger)
        assert deferred.value.trigger.run_id == run.run_id
        assert (run.clears, len(supervisor.sent_of(TriggerDagRun))) == (1, 1)
