"""``DagRunsTrigger.on_kill`` with ``cancel_on_kill``, and the kwargs that carry it through the database."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from standard_ext.fanout.state import FanOut, ItemState
from standard_ext.triggers import on_kill
from standard_ext.triggers.dag_runs import DagRunsTrigger
from tests.fake_api import DAG_RUN_PATCH, TASK_INSTANCE, TOKEN
from tests.unit.cancel_helpers import PARENT, as_deferred, asked_about, killed, one, patched, secrets_in
from tests.unit.conftest import API_CONN_ID
from tests.unit.fanout_parent import CHILD, all_events, rebuilt
from tests.unit.virtual_time import T0, until_stalled_or_done

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(30)

A, P, S, F = ItemState.ACTIVE, ItemState.PENDING, ItemState.SUCCEEDED, ItemState.FAILED
CANCELLED = "Cancelled the fan-out's child Dag runs"


def make_trigger(states: list[ItemState], **kwargs: Any) -> DagRunsTrigger:
    fan_out = FanOut(run_ids=tuple(f"r{i}" for i in range(len(states))), states=tuple(states))
    values: dict[str, Any] = {
        "dag_id": CHILD,
        "fan_out": fan_out.to_json(),
        "ends": 1,
        "poke_interval": 10,
        "fast_poll_window": 5,
        "waiting_since": T0,
        "cancel_on_kill": True,
        "airflow_api_conn_id": API_CONN_ID,
        **kwargs,
    }
    trigger = DagRunsTrigger(**values)
    as_deferred(trigger)
    return trigger


def running(api: FakeApi, *run_ids: str) -> None:
    for run_id in run_ids:
        api.runs[(CHILD, run_id)] = "running"


def parent_is(api: FakeApi, state: str | None, *, try_number: int = 1) -> None:
    api.task_instances[PARENT] = {"state": state, "try_number": try_number}


@pytest.mark.usefixtures("connected")
class TestOnKill:
    @pytest.mark.parametrize("state", ["failed", "success", "skipped", None])
    def test_a_task_that_left_the_deferral_cancels_every_active_run(
        self, api: FakeApi, state: str | None
    ) -> None:
        running(api, "r0", "r1", "r2", "r3", "r4", "r5")
        parent_is(api, state)

        logs = killed(make_trigger([A, P, A, S, F, A]))

        # The pending item never started; the ended ones are left alone without a question.
        assert asked_about(api) == {"r0", "r2", "r5"}
        assert sorted(patched(api)) == ["r0", "r2", "r5"]
        assert api.routes()[:2] == [TOKEN, TASK_INSTANCE]
        assert one(logs, CANCELLED)["run_ids"] == ["r0", "r2", "r5"]

    def test_a_task_still_deferred_moved_to_another_triggerer_and_keeps_its_runs(self, api: FakeApi) -> None:
        running(api, "r0", "r1")
        parent_is(api, "deferred")

        logs = killed(make_trigger([A, A]))

        assert api.routes() == [TOKEN, TASK_INSTANCE]
        kept = one(logs, "Not cancelling the fan-out's Dag runs")
        assert "another triggerer" in kept["reason"]

    def test_a_run_that_already_ended_is_read_not_patched(self, api: FakeApi) -> None:
        running(api, "r0")
        api.runs[(CHILD, "r1")] = "failed"
        parent_is(api, "failed")

        logs = killed(make_trigger([A, A]))

        assert patched(api) == ["r0"]
        states = one(logs, "Not cancelling the fan-out's Dag runs that already ended")["states"]
        assert states == {"r1": "failed"}

    def test_runs_are_cancelled_one_at_a_time(self, api: FakeApi) -> None:
        run_ids = [f"r{i}" for i in range(10)]
        running(api, *run_ids)
        parent_is(api, "failed")
        # Slow enough that requests sent together would overlap.
        api.latency = 0.02

        logs = killed(make_trigger([A] * 10))

        assert sorted(patched(api)) == sorted(run_ids)
        assert api.most_in_flight == 1
        assert one(logs, CANCELLED)["run_ids"] == run_ids

    def test_a_missing_connection_is_a_warning_naming_it(self, api: FakeApi) -> None:
        logs = killed(make_trigger([A], airflow_api_conn_id="nowhere"))

        assert api.requests == []
        warning = one(logs, "Not cancelling the fan-out's Dag runs: no usable connection to the API server")
        assert warning["conn_id"] == "nowhere"

    def test_neither_the_token_nor_the_password_is_logged(self, api: FakeApi) -> None:
        running(api, "r0")
        parent_is(api, "failed")

        logs = killed(make_trigger([A]))

        assert api.issued
        assert secrets_in(logs, api) == []

    def test_without_cancel_on_kill_it_does_nothing(self, api: FakeApi) -> None:
        assert killed(make_trigger([A], cancel_on_kill=False)) == []
        assert api.requests == []

    def test_without_a_task_instance_it_cannot_tell_and_keeps_the_runs(self, api: FakeApi) -> None:
        trigger = make_trigger([A])
        trigger.task_instance = None  # type: ignore[assignment]

        logs = killed(trigger)

        assert api.requests == []
        assert [entry["event"] for entry in logs] == [
            "Not cancelling the fan-out's Dag runs: the trigger has no task instance to ask about"
        ]

    def test_runs_it_saw_end_while_waiting_are_left_alone(
        self, supervisor: FakeSupervisor, api: FakeApi, virtual: VirtualTime
    ) -> None:
        # The triggerer cancels run() and then awaits on_kill, in the same event loop.
        supervisor.add_run(CHILD, "r0", seconds=2)
        supervisor.add_run(CHILD, "r1", seconds=3600)
        supervisor.add_run(CHILD, "r2", seconds=3600)
        running(api, "r1", "r2")
        parent_is(api, "failed")
        trigger = make_trigger([A, A, A], ends=3)
        virtual.horizon = 10

        async def triggerer() -> None:
            task = asyncio.create_task(all_events(trigger))
            await until_stalled_or_done(virtual, [task])
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await trigger.on_kill()

        with structlog.testing.capture_logs() as logs:
            asyncio.run(triggerer())

        assert asked_about(api) == {"r1", "r2"}
        assert one(logs, CANCELLED)["run_ids"] == ["r1", "r2"]


@pytest.mark.usefixtures("connected")
class TestBudget:
    @pytest.fixture(autouse=True)
    def short_budget(self, monkeypatch: pytest.MonkeyPatch) -> float:
        # As the real 20 s and 5 s, scaled down.
        monkeypatch.setattr(on_kill, "KILL_SECONDS", 1.0)
        monkeypatch.setattr(on_kill, "KILL_REQUEST_SECONDS", 0.4)
        return 1.0

    def test_a_server_that_hangs_on_the_patches_is_given_up_in_time_naming_every_run(
        self, api: FakeApi, short_budget: float
    ) -> None:
        # Three rounds of ten time out (the last cut short by the budget); the fourth gets no turn.
        run_ids = [f"r{i}" for i in range(40)]
        running(api, *run_ids)
        parent_is(api, "failed")
        api.hang, api.hang_routes = threading.Event(), frozenset({DAG_RUN_PATCH})

        started = time.monotonic()
        logs = killed(make_trigger([A] * 40))

        assert time.monotonic() - started < short_budget + 1.5
        warning = one(logs, "Could not cancel some of the fan-out's Dag runs (or confirm it) in time")
        assert set(warning["not_cancelled"]) == set(run_ids)
        assert any("out of time" in reason for reason in warning["not_cancelled"].values())

    def test_the_real_budget_fits_the_triggerers_on_kill_timeout(self) -> None:
        # [triggerer] on_kill_timeout is 30 s by default; past it the triggerer stops waiting.
        assert on_kill.KILL_SECONDS + on_kill.KILL_REQUEST_SECONDS <= 30


class TestSerialization:
    def test_the_triggerer_rebuilds_cancel_on_kill(self) -> None:
        trigger = rebuilt(make_trigger([A, P]))

        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (True, API_CONN_ID)

    def test_off_by_default(self) -> None:
        trigger = rebuilt(make_trigger([A], cancel_on_kill=False, airflow_api_conn_id=None))

        assert trigger.serialize()[1]["cancel_on_kill"] is False
        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (False, None)

    def test_a_trigger_stored_before_cancel_on_kill_existed_still_rebuilds_without_it(self) -> None:
        kwargs: dict[str, Any] = {
            "dag_id": CHILD,
            "fan_out": {"run_ids": ["r0"], "states": ["active"]},
            "ends": 1,
            "failures": None,
            "poke_interval": 10.0,
            "fast_poll_window": 5.0,
            "waiting_since": T0,
            "expected_seconds": None,
        }

        trigger = DagRunsTrigger(**kwargs)

        assert (trigger.cancel_on_kill, trigger.airflow_api_conn_id) == (False, None)
