"""``auto_clear_failed_tasks`` on ``TriggerDagRunsOperator``: a retry redrives failed items in place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from standard_ext.operators.modes import resume as resume_mode
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from standard_ext.resume.clear import PROBE_RUN_ID
from tests.fake_api import CLEAR, CLEAR_CHECK, TOKEN
from tests.unit.conftest import connect
from tests.unit.fanout_parent import CHILD, FanOutParent, WorkerKilled, confs, run_deferred
from tests.unit.test_trigger_dagruns_durable import fail_first_run_of

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)


BASE: dict[str, Any] = {
    "trigger_dag_id": CHILD,
    "confs": confs(8),
    "wait_for_completion": True,
    "auto_clear_failed_tasks": True,
    "poke_interval": 10,
}


def make(supervisor: FakeSupervisor, api: FakeApi, clock: Clock, **kwargs: Any) -> FanOutParent:
    connect(supervisor, api)
    return FanOutParent(supervisor, {**BASE, **kwargs}, clock.traveller.shift)


def cleared_run_ids(api: FakeApi) -> list[str]:
    return [request.body["dag_run_id"] for request in api.requests if request.route == CLEAR]


def failed_once(parent: FanOutParent, *, match: str = "items #2") -> list[str]:
    """Run the first try to its failure; return the run ids it saved."""
    with pytest.raises(AirflowException, match=match):
        parent.run()
    return list(parent.store.values[RECORD_KEY]["run_ids"])


class TestRedriveInPlace:
    def test_two_items_failing_once_end_with_eight_runs_in_all(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2, 5}), returns={"score": 1})
        parent = make(supervisor, api, clock, result_task_ids=["score"])
        run_ids = failed_once(parent)
        parent.retry()

        with structlog.testing.capture_logs() as logs:
            result = parent.run()

        assert len(supervisor.runs_of(CHILD)) == 8
        assert len(supervisor.sent_of(TriggerDagRun)) == 8  # all from the first try
        assert sorted(cleared_run_ids(api)) == sorted([run_ids[2], run_ids[5]])
        assert [run.clears for run in supervisor.runs_of(CHILD)] == [0, 0, 1, 0, 0, 1, 0, 0]
        assert result == [{"score": 1}] * 8
        record = parent.store.values[RECORD_KEY]
        assert record["run_ids"] == run_ids
        assert record["clears"] == {run_ids[2]: 1, run_ids[5]: 1}
        carried = next(line for line in logs if line["event"].startswith("Carrying on"))
        assert (carried["keep"], carried["clear"], carried["redrive"]) == (6, 2, 0)
        # Each failed run was asked first, with a dry run, what a clear would clear.
        asked = [r.body["dag_run_id"] for r in api.requests if r.route == CLEAR_CHECK]
        assert sorted(run_id for run_id in asked if run_id != PROBE_RUN_ID) == sorted(
            [run_ids[2], run_ids[5]]
        )

    def test_the_clears_are_recorded_before_any_is_sent(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2, 5}))
        parent = make(supervisor, api, clock)
        run_ids = failed_once(parent)
        recorded: list[dict[str, int]] = []
        clear = resume_mode.clear_failed

        def recording(**kwargs: Any) -> list[str]:
            recorded.append(dict(parent.store.values[RECORD_KEY].get("clears", {})))
            return clear(**kwargs)

        monkeypatch.setattr(resume_mode, "clear_failed", recording)
        parent.retry()
        parent.run()

        assert recorded == [{run_ids[2]: 1, run_ids[5]: 1}] * 2

    def test_without_the_flag_each_failed_item_gets_a_new_run(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2, 5}))
        parent = make(supervisor, api, clock, auto_clear_failed_tasks=False)
        run_ids = failed_once(parent)
        parent.retry()

        parent.run()

        assert len(supervisor.runs_of(CHILD)) == 10
        assert api.requests == []
        new_ids = parent.store.values[RECORD_KEY]["run_ids"]
        assert [i for i, (old, new) in enumerate(zip(run_ids, new_ids, strict=True)) if old != new] == [2, 5]

    def test_an_item_with_nothing_to_clear_is_redriven_under_a_new_id(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2, 5}))
        parent = make(supervisor, api, clock)
        run_ids = failed_once(parent)
        # Item 5's run was marked failed by hand: no task failed, so nothing resumes it.
        supervisor.runs[(CHILD, run_ids[5])].failed_tasks = ()
        parent.retry()

        parent.run()

        new_ids = parent.store.values[RECORD_KEY]["run_ids"]
        assert new_ids[2] == run_ids[2]
        assert new_ids[5] != run_ids[5]
        assert len(supervisor.runs_of(CHILD)) == 9
        assert supervisor.runs[(CHILD, new_ids[5])].state() == "success"

    def test_tolerated_failures_and_max_active_apply_as_before(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        # Item 2 fails twice: the retry's clear fails it again, which one tolerated failure allows.
        seen: dict[int, int] = {}

        def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
            item = int((conf or {})["item"])
            seen[item] = seen.get(item, 0) + 1
            return 3, "failed" if item in (2, 5) and seen[item] == 1 else "success"

        supervisor.add_dag(CHILD, run_for=run_for)
        parent = make(supervisor, api, clock, tolerated_failures=1, max_active=2)
        run_ids = failed_once(parent)
        supervisor.runs[(CHILD, run_ids[2])].then = ["failed"]
        parent.retry()

        result = parent.run()

        assert result[2] is None
        assert result[5] == run_ids[5]
        assert max(supervisor.active_at_trigger) <= 1

    def test_clears_wait_for_the_window_as_new_runs_do(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({1, 2, 3}))
        parent = make(supervisor, api, clock, confs=confs(4))
        failed_once(parent, match="items #1")
        active_at_clear: list[int] = []
        clear = resume_mode.clear_failed

        def counting(**kwargs: Any) -> list[str]:
            active_at_clear.append(sum(run.state() == "running" for run in supervisor.runs_of(CHILD)))
            return clear(**kwargs)

        monkeypatch.setattr(resume_mode, "clear_failed", counting)
        parent.kwargs["max_active"] = 1
        parent.retry()

        parent.run()

        # One at a time: each clear comes once the window is empty again.
        assert active_at_clear == [0, 0, 0]
        assert [run.clears for run in supervisor.runs_of(CHILD)] == [0, 1, 1, 1]


class TestDeferred:
    def test_a_resume_signs_in_again_and_clears_the_next_item_as_the_window_frees(
        self, supervisor: FakeSupervisor, api: FakeApi, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({0, 1}))
        connect(supervisor, api)
        values = {**BASE, "confs": confs(3), "deferrable": True}
        parent = FanOutParent(supervisor, values, virtual.traveller.shift)
        with pytest.raises(AirflowException, match="items #0"):
            run_deferred(parent)
        run_ids = list(parent.store.values[RECORD_KEY]["run_ids"])
        parent.kwargs["max_active"] = 1
        parent.retry()
        api.requests.clear()

        deferred = run_deferred(parent)

        assert deferred.result == run_ids
        assert cleared_run_ids(api) == [run_ids[0], run_ids[1]]
        # The first clear from the retry's execute(), the second from a resume, which signed in again.
        assert api.routes().count(TOKEN) == 2
        assert [run.clears for run in supervisor.runs_of(CHILD)] == [1, 1, 0]


class TestCrashPoints:
    def test_killed_between_two_clears_each_run_is_cleared_once(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2, 5}, seconds=30))
        parent = make(supervisor, api, clock)
        run_ids = failed_once(parent)
        clear = resume_mode.clear_failed
        calls = {"n": 0}

        def dies_before_the_second(**kwargs: Any) -> list[str]:
            calls["n"] += 1
            if calls["n"] == 2:
                raise WorkerKilled("between the clears")
            return clear(**kwargs)

        parent.retry()
        with monkeypatch.context() as patch:
            patch.setattr(resume_mode, "clear_failed", dies_before_the_second)
            with pytest.raises(WorkerKilled):
                parent.run()
        assert [supervisor.runs[(CHILD, run_ids[i])].clears for i in (2, 5)] == [1, 0]

        parent.retry()
        parent.run()

        assert [supervisor.runs[(CHILD, run_ids[i])].clears for i in (2, 5)] == [1, 1]
        assert len(supervisor.runs_of(CHILD)) == 8
        assert all(run.state() == "success" for run in supervisor.runs_of(CHILD))

    def test_a_lost_answer_is_sent_again_and_the_item_waited_on(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2}, seconds=30))
        parent = make(supervisor, api, clock)
        run_ids = failed_once(parent)
        api.lose_clear_answers = 1
        parent.retry()

        parent.run()

        assert cleared_run_ids(api) == [run_ids[2], run_ids[2]]
        assert supervisor.runs[(CHILD, run_ids[2])].clears == 1
        assert len(supervisor.runs_of(CHILD)) == 8


class TestAPersonsClear:
    def test_failed_items_resume_and_the_rest_run_anew(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2}))
        parent = make(supervisor, api, clock, confs=confs(3))
        run_ids = failed_once(parent)

        parent.clear()
        parent.run()

        new_ids = parent.store.values[RECORD_KEY]["run_ids"]
        assert new_ids[2] == run_ids[2]
        assert new_ids[0] != run_ids[0]
        assert new_ids[1] != run_ids[1]
        assert supervisor.runs[(CHILD, run_ids[2])].clears == 1
        assert len(supervisor.runs_of(CHILD)) == 5


class TestSignIn:
    def test_signs_in_and_checks_the_clear_before_anything_is_sent(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        parent = make(supervisor, api, clock)

        parent.run()

        assert api.routes() == [TOKEN, CLEAR_CHECK]

    def test_a_user_who_may_not_clear_fails_the_task_before_anything_is_saved(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD)
        parent = make(supervisor, api, clock)
        api.failures[CLEAR_CHECK] = (403, "Forbidden")

        with pytest.raises(AirflowFailException, match="may not clear the task instances of Dag 'child'"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        assert parent.store.values == {}

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"durable": False}, "needs durable=True"),
            ({"wait_for_completion": False}, "needs wait_for_completion=True"),
        ],
    )
    def test_refused_when_built(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            TriggerDagRunsOperator(
                task_id="fan", trigger_dag_id=CHILD, confs=[{}], auto_clear_failed_tasks=True, **kwargs
            )
