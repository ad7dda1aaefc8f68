"""
An outage across a deferred fan-out's resume, on a real Airflow: the api-server's, and the REST API's alone.

The parents (``stops_deferred_fan_out``, ``stops_rest_outage_fan_out`` in ``tests/e2e/dags/e2e_stops.py``)
fan 12 items out, 4 active at a time, so they defer and resume several times; with ``cancel_on_kill``, each
resume first signs in to the REST API as ``trigger-bot`` (the least-privilege user,
``tests/e2e/test_stops.py`` says why its role is ``USER``). Each outage covers a resume: 30 s from the
SIGKILL to a new server's start, which then takes some seconds to answer. The parent must succeed with
exactly one child run per item.

The api-server's outage runs on the ``FAULTS`` Airflow (Airflow's defaults, shared with
``tests/e2e/test_faults.py``, which replaces its api-server too), not on the default one: that one gives a
running try up after 20 s without heartbeats (``QUICK_REACTION``), and its api-server's log is the one
the bench's smoke test reads. The REST API's outage runs on the default Airflow, whose own api-server
stays up.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from tests.e2e import components
from tests.e2e.faults import outage
from tests.e2e.flows import TRIGGERED_EVENT, lines_with
from tests.e2e.leaks import leaked
from tests.e2e.rest_api import RestOnlyApiServer
from tests.e2e.settings import FAULTS
from tests.e2e.stops import (
    CHILD,
    CONN_ID,
    FAN_OUT_TASK,
    REST_ONLY_CONN_ID,
    bot_connection,
    fail_unfinished,
    wait_for_a_resume,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.e2e.client import Json
    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

DEFERRED_FAN_OUT, REST_OUTAGE_FAN_OUT = "stops_deferred_fan_out", "stops_rest_outage_fan_out"
ITEMS, MAX_ACTIVE = 12, 4
OUTAGE = 30.0


@pytest.fixture
def least_privilege(airflow: EmbeddedAirflow) -> dict[str, str]:
    """``airflow_api_least_privilege``: this Airflow's API server as ``trigger-bot``; what no log may show."""
    return bot_connection(airflow, CONN_ID, airflow.base_url)


@pytest.fixture
def leaves_nothing_running(scenario: Scenario) -> Iterator[None]:
    """After the test, pass or fail, mark failed every run of the scenario still going."""
    yield
    fail_unfinished(scenario)


@pytest.fixture
def rest_only(airflow: EmbeddedAirflow) -> Iterator[tuple[RestOnlyApiServer, dict[str, str]]]:
    """
    An api-server serving the REST API only, and ``airflow_api_rest_only`` to it as ``trigger-bot``
    (with what no log may show of it); the server is stopped after the test, pass or fail.
    """
    server = RestOnlyApiServer(airflow)
    try:
        server.start()
        yield server, bot_connection(airflow, REST_ONLY_CONN_ID, server.url)
    finally:
        server.stop()


def outage_left(killed: components.Killed) -> float:
    """What is left of the ``OUTAGE`` counted from the kill (which waits up to 10 s for the processes to go)."""
    return max(OUTAGE - (time.monotonic() - killed.at), 0.0)


def fan_out_outcome(
    scenario: Scenario,
    dag_id: str,
    run_id: str,
    started: float,
    record_property: Callable[[str, object], None],
) -> tuple[Json, list[Json], list[str]]:
    """Wait for the fan-out's run to end; note and record its figures; return its run, children, tries' logs."""
    run = scenario.wait_run_finished(dag_id, run_id, timeout=420)
    children = scenario.runs_of(CHILD)
    tries = scenario.client.task_tries(dag_id, run_id, FAN_OUT_TASK)
    logs = [scenario.log(dag_id, run_id, FAN_OUT_TASK, t["try_number"]) for t in tries]
    text = "\n".join(logs)
    seconds = time.monotonic() - started
    scenario.note(
        f"parent {run['state']} after {seconds:.0f} s, tries {[t['state'] for t in tries]}, "
        f"{len(lines_with(text, 'Deferring until enough'))} deferrals, {len(children)} child runs"
    )
    for number, log in enumerate(logs[:-1], start=1):
        tail = "\n    ".join(log.splitlines()[-4:])
        scenario.note(f"try {number} ended; its log ends:\n    {tail}")
    record_property(f"{dag_id}_parent_seconds", round(seconds, 1))
    record_property(f"{dag_id}_tries", len(tries))
    return run, children, logs


def assert_one_child_per_item(children: list[Json]) -> None:
    per_item = Counter(child["conf"]["item"] for child in children)
    assert per_item == Counter(range(ITEMS)), f"child runs per item: {dict(per_item)}"


@pytest.mark.airflow_setup(FAULTS)
@pytest.mark.timeout(720, method="signal")
@pytest.mark.usefixtures("leaves_nothing_running")
def test_an_api_server_outage_across_a_deferred_fan_outs_resume(
    airflow: EmbeddedAirflow,
    scenario: Scenario,
    least_privilege: dict[str, str],
    record_property: Callable[[str, object], None],
) -> None:
    """
    The api-server is down for 30 s from just after a deferred fan-out (12 items, 4 at a time,
    ``cancel_on_kill``, durable, 3 retries) resumed; it succeeds with exactly one child run per item.

    The resumed try cannot ride this outage, whatever the operator does: the task runner's own first
    request, ``SetRenderedFields`` in ``_prepare`` (``airflow/sdk/execution_time/task_runner.py``), goes
    to the execution API on that same server, and fails once the supervisor's client has retried it for
    some seconds, before the operator's code (its sign-in included) runs. A resume queued during the
    outage fares no better: its supervisor cannot even set it running. So the parent has retries, as a
    production pipeline would, and what is asserted is what the durable fan-out owes: a retry carries on
    with the saved runs (the triggerer asked the execution API in-process, so the other waits went on)
    and no item runs twice. The sign-in's own retries are ``test_a_rest_api_outage_...``'s subject.
    """
    started = time.monotonic()
    run_id = scenario.trigger(DEFERRED_FAN_OUT)
    wait_for_a_resume(scenario, DEFERRED_FAN_OUT, run_id, timeout=240)
    killed = components.kill(airflow, "api-server", with_children=True)
    try:
        outage(scenario, outage_left(killed), "the api-server (SIGKILLed as the try resumed)")
    finally:
        components.start(airflow, "api-server")
        scenario.note("a new api-server runs")

    run, children, logs = fan_out_outcome(scenario, DEFERRED_FAN_OUT, run_id, started, record_property)

    assert run["state"] == "success"
    assert_one_child_per_item(children)
    assert leaked("\n".join(logs), least_privilege) == []


@pytest.mark.timeout(600, method="signal")
@pytest.mark.usefixtures("leaves_nothing_running")
def test_a_rest_api_outage_across_a_deferred_fan_outs_resume(
    scenario: Scenario,
    rest_only: tuple[RestOnlyApiServer, dict[str, str]],
    record_property: Callable[[str, object], None],
) -> None:
    """
    The REST API the connection signs in to is down for 30 s from a deferred fan-out's first deferral (12
    items, 4 at a time, ``cancel_on_kill``), and its first resume starts within the outage; that resume
    goes on once the API is back (it starts the next items), and the fan-out succeeds with exactly one
    child run per item.

    Only the public REST API goes down (``RestOnlyApiServer``, ``--apps core``): the execution API stays
    up on the Airflow's own api-server, so the resume runs, reads the connection, and meets the outage
    at its sign-in, which must wait for the server instead of failing the task. The parent has retries
    for Airflow's sake (its stale defer-exit race: the runs end while the resume waits, so the next
    deferral's trigger fires at once), not for the sign-in's: what shows that the resume rode the
    outage is that the first try itself started items past the first window.
    """
    server, secrets = rest_only
    started = time.monotonic()
    run_id = scenario.trigger(REST_OUTAGE_FAN_OUT)
    scenario.wait_task(
        REST_OUTAGE_FAN_OUT, run_id, FAN_OUT_TASK, lambda ti: ti["state"] == "deferred", "deferred", 240
    )
    killed = server.kill()
    scenario.note("the REST-only api-server SIGKILLed as the fan-out deferred")
    try:
        wait_for_a_resume(scenario, REST_OUTAGE_FAN_OUT, run_id, outage_left(killed), deferred=True)
        outage(scenario, outage_left(killed), "the REST API (a resume started within the outage)")
    finally:
        server.start()
        scenario.note("the REST-only api-server runs again")

    run, children, logs = fan_out_outcome(scenario, REST_OUTAGE_FAN_OUT, run_id, started, record_property)
    # Items 0 to 3 start before the first deferral; any later one the first try started, it started in
    # the resume the outage met, or after it.
    first_try_items = sorted(int(item) for item in re.findall(rf"{TRIGGERED_EVENT} .*?\bitem=(\d+)", logs[0]))
    scenario.note(
        f"try 1 started items {first_try_items}; "
        f"{len(lines_with(logs[0], 'sign in'))} of its log lines are about signing in"
    )

    assert run["state"] == "success"
    assert_one_child_per_item(children)
    assert max(first_try_items) >= MAX_ACTIVE, "the resume the outage met started nothing: it gave up"
    assert leaked("\n".join(logs), secrets) == []
