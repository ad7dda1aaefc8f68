"""A deferred ``execution_timeout`` with ``cancel_on_kill``: the trigger's own deadline, then the resume cancels."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import TaskDeferralTimeout, TaskDeferred
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.fanout.state import FanOut, ItemState
from standard_ext.operators.modes.timeout import BACKSTOP_SECONDS
from standard_ext.triggers.dag_run import DagRunTrigger
from standard_ext.triggers.dag_runs import DagRunsTrigger
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, SIGN_IN
from tests.unit.cancel_helpers import one, patched
from tests.unit.conftest import connect
from tests.unit.fanout_kill_helpers import CANCELLED, child_dag, make, triggered
from tests.unit.fanout_parent import CHILD, confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

pytestmark = pytest.mark.timeout(30)

TIMEOUT = timedelta(seconds=20)


def deferred(run: Any) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        run()
    return info.value


class TestTheDeferral:
    def test_with_cancel_on_kill_the_trigger_keeps_the_deadline_and_airflows_timeout_is_a_backstop(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=600)
        connect(supervisor, api)
        parent = make_parent(
            deferrable=True, wait_for_completion=True, cancel_on_kill=True, execution_timeout=TIMEOUT
        )

        deferral = deferred(parent.run)

        trigger = deferral.trigger
        assert isinstance(trigger, DagRunTrigger)
        assert trigger.timeout_at == time.time() + TIMEOUT.total_seconds()
        assert deferral.timeout == TIMEOUT + timedelta(seconds=BACKSTOP_SECONDS)
        # A trigger another triggerer takes over keeps the same deadline.
        assert (
            DagRunTrigger(**json.loads(json.dumps(trigger.serialize()[1]))).timeout_at == trigger.timeout_at
        )

    def test_without_cancel_on_kill_airflow_times_the_deferral_out_as_before(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=600)
        parent = make_parent(deferrable=True, wait_for_completion=True, execution_timeout=TIMEOUT)

        deferral = deferred(parent.run)

        assert isinstance(deferral.trigger, DagRunTrigger)
        assert deferral.trigger.timeout_at is None
        assert deferral.timeout == TIMEOUT

    def test_the_fan_outs_trigger_keeps_the_deadline_too(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        connect(supervisor, api)
        parent = make(supervisor, clock, confs=confs(3), deferrable=True, execution_timeout=TIMEOUT)

        deferral = deferred(parent.run)

        assert isinstance(deferral.trigger, DagRunsTrigger)
        assert deferral.trigger.timeout_at == time.time() + TIMEOUT.total_seconds()
        assert deferral.timeout == TIMEOUT + timedelta(seconds=BACKSTOP_SECONDS)


@pytest.mark.usefixtures("clock")
class TestTheTrigger:
    def test_a_deadline_already_past_fires_the_timeout_at_once(self, supervisor: FakeSupervisor) -> None:
        # As a trigger rebuilt by a triggerer that came back after the deadline finds it.
        supervisor.add_run(CHILD, "r1", seconds=3600)
        trigger = DagRunTrigger(
            dag_id=CHILD, run_id="r1", poke_interval=60, fast_poll_window=5, waiting_since=0, timeout_at=1.0
        )

        events = asyncio.run(_all(trigger))

        assert [e.payload for e in events] == [
            {"dag_id": CHILD, "run_id": "r1", "state": None, "timed_out": True}
        ]

    def test_the_fan_outs_trigger_fires_the_timeout_with_its_runs(self, supervisor: FakeSupervisor) -> None:
        supervisor.add_run(CHILD, "r0", seconds=3600)
        fan_out = FanOut(run_ids=("r0", "r1"), states=(ItemState.ACTIVE, ItemState.PENDING))
        trigger = DagRunsTrigger(
            dag_id=CHILD,
            fan_out=fan_out.to_json(),
            ends=1,
            poke_interval=10,
            fast_poll_window=5,
            waiting_since=0,
            timeout_at=1.0,
        )

        (event,) = asyncio.run(_all(trigger))

        assert event.payload == {"dag_id": CHILD, "fan_out": fan_out.to_json(), "timed_out": True}


async def _all(trigger: Any) -> list[Any]:
    return [event async for event in trigger.run()]


class TestTheResume:
    @pytest.mark.parametrize(
        ("durable", "max_tries", "cancels"), [(True, 0, True), (False, 2, True), (True, 2, False)]
    )
    def test_cancels_as_a_synchronous_timeout_does_then_raises_it(
        self,
        supervisor: FakeSupervisor,
        api: FakeApi,
        make_parent: MakeParent,
        durable: bool,
        max_tries: int,
        cancels: bool,
    ) -> None:
        supervisor.add_dag("child", run_seconds=600)
        connect(supervisor, api)
        parent = make_parent(
            deferrable=True,
            durable=durable,
            wait_for_completion=True,
            cancel_on_kill=True,
            execution_timeout=TIMEOUT,
            retries=max_tries,
        )
        deferral = deferred(parent.run)
        (sent,) = supervisor.sent_of(TriggerDagRun)
        api.runs[("child", sent.run_id)] = "running"
        event = {"dag_id": "child", "run_id": sent.run_id, "state": None, "timed_out": True}

        with (
            structlog.testing.capture_logs() as logs,
            pytest.raises(TaskDeferralTimeout, match="execution_timeout"),
        ):
            parent.operator.resume_execution(deferral.method_name, {"event": event}, parent_context(parent))  # type: ignore[union-attr, arg-type]

        assert patched(api) == ([sent.run_id] if cancels else [])
        # The start-up check, then the resume's; no question about the parent after: the timeout says why.
        cancelling = [DAG_RUN_GET, DAG_RUN_PATCH] if cancels else []
        assert api.routes() == [*SIGN_IN, *SIGN_IN, *cancelling]
        if not cancels:
            assert "durable retry reconnects" in one(logs, "Not cancelling the Dag run")["reason"]

    def test_the_fan_out_cancels_its_active_runs_then_raises(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        child_dag(supervisor)
        connect(supervisor, api)
        parent = make(
            supervisor, clock, confs=confs(3), max_active=2, deferrable=True, execution_timeout=TIMEOUT
        )
        parent.ti.max_tries = 0
        deferral = deferred(parent.run)
        run_ids = triggered(supervisor, api)
        assert isinstance(deferral.trigger, DagRunsTrigger)
        event = {"dag_id": CHILD, "fan_out": deferral.trigger.fan_out.to_json(), "timed_out": True}

        with structlog.testing.capture_logs() as logs, pytest.raises(TaskDeferralTimeout, match="2 Dag runs"):
            parent.resume(deferral, event)

        assert sorted(patched(api)) == sorted(run_ids)
        assert one(logs, CANCELLED)["reason"] == "execution_timeout on the last try"
        # Nothing started after the timeout: the third item stays unstarted.
        assert len(supervisor.sent_of(TriggerDagRun)) == 2


def parent_context(parent: Any) -> dict[str, Any]:
    return {
        "ti": parent.ti,
        "task_instance": parent.ti,
        "task_state_store": parent.store,
        "dag_run": parent.ti.dag_run,
    }
