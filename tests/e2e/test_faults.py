"""
Faults of the coordinator on the default setup (``airflow standalone``, SQLite, LocalExecutor).

Each scenario runs a durable parent on each path, waiting on a 30 s child, through one fault of a component
other than the parent's worker, on an Airflow at its defaults (``FAULTS``): the api-server killed and
replaced 30 s later, the scheduler SIGKILLed and restarted, a second triggerer taking over from the one
holding the waits, and task tokens that expire twice within the wait. Every parent must end in success
with exactly one child run; each scenario prints each parent's lag after its child (the table of
docs/faults.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.e2e import components, logfiles
from tests.e2e.faults import POKE_INTERVAL, component_outage, pollers_at_once, survives
from tests.e2e.polling import wait_for
from tests.e2e.settings import FAULTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

pytestmark = pytest.mark.airflow_setup(FAULTS)

CHILD_SLEEP = 30.0
OUTAGE = 30.0
# Short enough that a wait of twice its length is quick to run, long enough for the api-server's reissue
# rule (a new token once at most max(20 %, 30 s) of its life is left) to leave each token 10 s of use.
SHORT_TOKEN_SECONDS = 40


@pytest.mark.timeout(900, method="signal")
def test_without_a_fault_both_parents_end_within_a_poke_interval(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    outcomes = survives(
        scenario, lambda: None, name="no_fault", record_property=record_property, child_sleep=CHILD_SLEEP
    )

    for outcome in outcomes.values():
        assert len(outcome.tries) == 1
        assert outcome.lag <= POKE_INTERVAL + 2.0, outcome.line()


@pytest.mark.timeout(900, method="signal")
def test_the_api_server_killed_and_replaced_30s_later(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    fault = component_outage(airflow, scenario, "api-server", seconds=OUTAGE)

    survives(scenario, fault, name="api_server", record_property=record_property, child_sleep=CHILD_SLEEP)


@pytest.mark.timeout(900, method="signal")
def test_the_scheduler_sigkilled_and_restarted(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    # Only the scheduler's own process, as the OOM killer would: its LocalExecutor workers, each the
    # supervisor of a running task, live on.
    fault = component_outage(airflow, scenario, "scheduler", seconds=15.0, with_children=False)

    survives(scenario, fault, name="scheduler", record_property=record_property, child_sleep=CHILD_SLEEP)


@pytest.mark.timeout(900, method="signal")
def test_a_second_triggerer_takes_over_from_the_one_holding_the_waits(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    holders: dict[str, object] = {}

    def second_triggerer(run_ids: dict[str, str]) -> None:
        ti = scenario.client.task_instance("fault_deferred", run_ids["deferred"], "trigger_child")
        holders["before"] = ti["triggerer_job"]["id"]
        holders["run_id"] = run_ids["deferred"]
        # Both run from here on, as for high availability; the first holds the wait (it was the only one).
        holders["first"] = components.component_processes(airflow, "triggerer")[0].pid
        holders["second"] = components.start(airflow, "triggerer").pid
        scenario.note("a second triggerer runs")

    def fault() -> None:
        components.kill(airflow, "triggerer", with_children=True, pid=int(str(holders["first"])))
        scenario.note("the triggerer holding the wait SIGKILLed")
        taken_over = wait_for(
            lambda: _holder(scenario, str(holders["run_id"])) not in (None, holders["before"]),
            120.0,
            "the second triggerer to take the deferred wait over",
        )
        scenario.note(f"the wait taken over: {taken_over}")

    # Long enough that the take-over (after [triggerer] triggerer_health_check_threshold, 30 s) comes
    # while the child still works.
    survives(
        scenario,
        fault,
        name="triggerer",
        record_property=record_property,
        child_sleep=60.0,
        ready=second_triggerer,
    )
    # One poller for the child Dag in each triggerer, whichever held the waits.
    survivor_log = logfiles.read(airflow.sessions.log_path("triggerer-2"))
    assert pollers_at_once(survivor_log, "fault_child") == 1, survivor_log[-5000:]
    assert pollers_at_once(logfiles.read(airflow.standalone_log), "fault_child") == 1


def _holder(scenario: Scenario, run_id: str) -> object:
    ti = scenario.client.task_instance("fault_deferred", run_id, "trigger_child")
    if ti["state"] != "deferred":
        # Resumed already: the take-over happened, or the wait ended; either way its triggerer let go.
        return "resumed"
    return (ti.get("triggerer_job") or {}).get("id")


@pytest.mark.timeout(900, method="signal")
def test_a_wait_twice_as_long_as_the_task_token_lives(
    airflow: EmbeddedAirflow, scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    # The api-server issues the task tokens: replace it with one whose tokens live SHORT_TOKEN_SECONDS.
    components.kill(airflow, "api-server", with_children=True)
    replacement = components.start(
        airflow, "api-server", env={"AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": str(SHORT_TOKEN_SECONDS)}
    )

    outcomes = survives(
        scenario,
        lambda: None,
        name="short_token",
        record_property=record_property,
        child_sleep=2 * SHORT_TOKEN_SECONDS + 10,
    )

    for outcome in outcomes.values():
        assert len(outcome.tries) == 1, outcome.line()
    # The api-server's reissue middleware never met a token too old to renew (it logs each such failure).
    log = airflow.sessions.log_of(replacement.pid)
    assert "failed to refresh token" not in log, log[-3000:]
    assert not re.search(r"(?i)signature has expired", log), log[-3000:]
