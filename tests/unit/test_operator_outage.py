"""The synchronous wait through an outage of the API server: it asks again instead of failing the try."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import structlog
from airflow.sdk.exceptions import AirflowRuntimeError
from airflow.sdk.execution_time.comms import GetTaskStates, TriggerDagRun

from standard_ext.wait.outage import OUTAGE_SECONDS, OUTAGE_STEP_SECONDS
from tests.fake_errors import api_error

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

# Each check asks for the task states (the state itself only once they have all finished).
CHECKS = {GetTaskStates}


def calm_wait_seconds(
    supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock, seconds: float
) -> float:
    """How long the same wait takes with no outage: on a Dag of its own, so with the same (empty) history."""
    supervisor.add_dag("calm", run_seconds=seconds)
    began = clock.elapsed()
    make_parent(wait_for_completion=True, trigger_dag_id="calm").run()
    return clock.elapsed() - began


def test_checks_that_get_no_answer_are_asked_again_until_the_server_is_back(
    supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
) -> None:
    calm = calm_wait_seconds(supervisor, make_parent, clock, 60)
    supervisor.add_dag("child", run_seconds=60)
    parent = make_parent(wait_for_completion=True)
    # Down from the first check on, for 20 s, as a killed api-server is until its replacement answers.
    supervisor.down(seconds=20, kinds=CHECKS)
    began, waits_before = clock.elapsed(), len(clock.waits)

    with structlog.testing.capture_logs() as logs:
        parent.run()

    assert len(supervisor.sent_of(TriggerDagRun)) == 2  # the calm one's and this one's
    failed = [e for e in logs if e["event"] == "Could not check the Dag run; checking again"]
    assert failed
    assert all("All connection attempts failed" in e["error"] for e in failed)
    assert [e["event"] for e in logs].count("Checking the Dag run again") == 1
    # While the checks failed, the next came at most OUTAGE_STEP_SECONDS later: the outage's end is seen.
    assert max(clock.waits[waits_before : waits_before + len(failed)]) <= OUTAGE_STEP_SECONDS
    # And the run's end is seen when the same wait with no outage sees it.
    assert clock.elapsed() - began == calm


def test_a_server_error_under_dag_test_is_ridden_out_the_same_way(
    supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
) -> None:
    supervisor.in_process = True
    calm = calm_wait_seconds(supervisor, make_parent, clock, 30)
    supervisor.add_dag("child", run_seconds=30)
    parent = make_parent(wait_for_completion=True)
    supervisor.down(seconds=10, kinds=CHECKS, error=api_error(503, "unavailable", "database restarting"))
    began = clock.elapsed()

    parent.run()

    assert len(supervisor.sent_of(TriggerDagRun)) == 2
    assert clock.elapsed() - began == calm


def test_a_refusal_is_not_an_outage_and_fails_the_try_at_once(
    supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
) -> None:
    supervisor.add_dag("child", run_seconds=60)
    parent = make_parent(wait_for_completion=True)
    supervisor.down(seconds=20, kinds=CHECKS, error=api_error(403, "forbidden", "token scope"))

    with pytest.raises(AirflowRuntimeError, match="403"):
        parent.run()

    # The first check, a second after the trigger, is refused: nothing waits past it.
    assert len(supervisor.sent_of(GetTaskStates)) == 1
    assert clock.waits == [1]


def test_an_outage_longer_than_the_limit_fails_the_try_with_the_servers_error(
    supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
) -> None:
    supervisor.add_dag("child", run_seconds=3600)
    parent = make_parent(wait_for_completion=True)
    supervisor.down(seconds=2 * OUTAGE_SECONDS, kinds=CHECKS)

    with pytest.raises(AirflowRuntimeError, match="All connection attempts failed"):
        parent.run()

    assert OUTAGE_SECONDS <= clock.elapsed() < OUTAGE_SECONDS + OUTAGE_STEP_SECONDS + 1
