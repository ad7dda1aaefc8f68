"""
An ``on_kill`` that comes after the try ended on its own cancels nothing; a trigger's cancel outlives its own.

Airflow sends SIGTERM to a task process that lingers after it reported its end (the supervisor's
``task_success_overtime``), and the task runner's handler still calls ``on_kill``: the API then shows the
task ``success`` or ``failed``, which alone would read as "marked by a person".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException

from standard_ext.triggers.on_kill import shielded
from tests.fake_api import DAG_RUN_PATCH
from tests.unit.cancel_helpers import api_shows
from tests.unit.conftest import connect
from tests.unit.fanout_kill_helpers import child_dag, make, triggered
from tests.unit.fanout_parent import confs

if TYPE_CHECKING:
    from tests.fake_api import FakeApi
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

pytestmark = pytest.mark.timeout(30)


class TestTheTasksOwnEnd:
    def test_a_task_that_triggered_without_waiting_leaves_its_child_after_it_succeeded(
        self, supervisor: FakeSupervisor, api: FakeApi, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=3600)
        connect(supervisor, api)
        parent = make_parent(trigger_run_id="r1", cancel_on_kill=True)
        parent.run()
        api.runs[("child", "r1")] = "running"
        api_shows(api, parent.ti, "success")

        assert parent.operator is not None
        parent.operator.on_kill()

        assert api.runs[("child", "r1")] == "running"
        assert DAG_RUN_PATCH not in api.routes()

    def test_a_fan_out_that_failed_on_its_own_leaves_the_runs_it_did_not_cancel(
        self, supervisor: FakeSupervisor, api: FakeApi, clock: Clock
    ) -> None:
        # fail_fast fails the task with its other runs going: "What it does not do: stop the child runs
        # when it fails".
        child_dag(supervisor, {0: (1.0, "failed")})
        connect(supervisor, api)
        parent = make(supervisor, clock, confs=confs(3), fail_fast=True)
        with pytest.raises(AirflowException, match="failed"):
            parent.run()
        triggered(supervisor, api)
        api_shows(api, parent.ti, "failed")

        assert parent.operator is not None
        with structlog.testing.capture_logs() as logs:
            parent.operator.on_kill()

        assert DAG_RUN_PATCH not in api.routes()
        assert logs == []


class TestShielded:
    def test_the_work_goes_on_when_the_on_kill_awaiting_it_is_cancelled(self) -> None:
        async def scenario() -> list[str]:
            release, done = asyncio.Event(), []

            async def work() -> None:
                await release.wait()
                done.append("cancelled the run")

            on_kill = asyncio.ensure_future(shielded(work()))
            await asyncio.sleep(0)
            # The triggerer sends its cancel again at each sync: twice here.
            on_kill.cancel()
            with pytest.raises(asyncio.CancelledError):
                await on_kill
            release.set()
            for _ in range(3):
                await asyncio.sleep(0)
            return done

        assert asyncio.run(scenario()) == ["cancelled the run"]

    def test_without_the_shield_the_work_would_be_lost(self) -> None:
        # What the shield is for: the same scenario, awaiting the work directly.
        async def scenario() -> list[Any]:
            release, done = asyncio.Event(), []

            async def work() -> None:
                await release.wait()
                done.append("cancelled the run")

            on_kill = asyncio.ensure_future(work())
            await asyncio.sleep(0)
            on_kill.cancel()
            with pytest.raises(asyncio.CancelledError):
                await on_kill
            release.set()
            await asyncio.sleep(0)
            return done

        assert asyncio.run(scenario()) == []
