"""
Stopping a parent on a real Airflow: a stopped synchronous fan-out starts nothing after its SIGTERM, and a
deferred ``execution_timeout`` cancels the child. The outages across a deferred fan-out's resume are in
``tests/e2e/test_stops_outages.py``; the Dags of both are in ``tests/e2e/dags/e2e_stops.py``.

**Least privilege.** The parents with ``cancel_on_kill`` sign in as ``trigger-bot``, not as admin, through
connections the tests create (``tests.e2e.stops.bot_connection``). Every e2e Airflow lists that user in
``[core] simple_auth_manager_users`` (``admin:admin,trigger-bot:user``, ``tests/e2e/settings.py``); admin
is unchanged, so no other test notices. ``SimpleAuthManager.init()``
(``airflow/api_fastapi/auth/managers/simple/simple_auth_manager.py``), which the api-server calls as it
starts, generates a password for each user that has none into
``<AIRFLOW_HOME>/simple_auth_manager_passwords.json.generated`` (``[core]
simple_auth_manager_passwords_file``), the file admin's comes from (``EmbeddedAirflow.password_of``).
``USER`` is the least role the cancel can work with:

- ``SimpleAuthManager.is_authorized_dag`` calls ``_is_authorized(allow_get_role=VIEWER,
  allow_role=USER)``: a ``GET`` of anything of a Dag needs ``VIEWER``, any other method ``USER``.
- The cancel (``standard_ext.cancel.api``) reads the parent task instance (``get_task_instance`` in
  ``airflow/api_fastapi/core_api/routes/public/task_instances.py``:
  ``requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE)``) and the child run
  (``get_dag_run`` in ``.../routes/public/dag_run.py``: ``method="GET"``, ``RUN``): ``VIEWER`` would do.
  It then sets the run failed (``patch_dag_run``, same file: ``requires_access_dag(method="PUT",
  access_entity=DagAccessEntity.RUN)``), which ``VIEWER`` is refused (403) and ``USER`` may.
- ``USER`` is below ``OP``: it cannot read connections, variables or pools (``is_authorized_connection``:
  ``allow_role=OP``), which ``test_the_least_privilege_user_may_read_dags_but_not_connections`` checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.flows import DEFER_EVENT, lines_with, logged_at
from tests.e2e.leaks import issued_token, leaked
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED
from tests.e2e.settings import BOT_USER
from tests.e2e.stops import (
    CHILD,
    CONN_ID,
    FAN_OUT_TASK,
    SINGLE_TASK,
    bot_connection,
    created_at,
    fail_unfinished,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.e2e.client import Json
    from tests.e2e.harness import EmbeddedAirflow
    from tests.e2e.scenario import Scenario

# What the supervisor logs just before it sends SIGTERM to a try the server no longer runs.
SIGTERM_EVENT = "Server indicated the task shouldn't be running anymore"
# What the supervisor logs once the try's process has exited (SIGTERM, then SIGKILL 5 s later at most).
KILLED_EVENT = "Task killed!"
# What a start after on_kill raises instead (standard_ext.wait.stop_guard.TaskStopped).
REFUSED_EVENT = "was stopped (on_kill was called); not going on to"

SYNC_FAN_OUT, SYNC_ITEMS, DONE_BEFORE_STOP = "stops_sync_fan_out", 24, 4
# A trigger the task sent before the SIGTERM reached it, which the supervisor serves while it waits for
# the task to exit: the fan-out sends one at a time, so one such run at most, created within this long.
IN_FLIGHT_SECONDS = 2.0

TIMEOUT_DAG, EXECUTION_TIMEOUT, CANCELLED_WITHIN = "stops_deferred_timeout", 20.0, 45.0


@pytest.fixture
def least_privilege(airflow: EmbeddedAirflow) -> dict[str, str]:
    """``airflow_api_least_privilege``: this Airflow's API server as ``trigger-bot``; what no log may show."""
    return bot_connection(airflow, CONN_ID, airflow.base_url)


@pytest.fixture
def leaves_nothing_running(scenario: Scenario) -> Iterator[None]:
    """After the test, pass or fail, mark failed every run of the scenario still going (its children too)."""
    yield
    fail_unfinished(scenario)


def children_done(scenario: Scenario, count: int) -> list[Json] | None:
    succeeded = [run for run in scenario.runs_of(CHILD) if run["state"] == "success"]
    return succeeded if len(succeeded) >= count else None


@pytest.mark.timeout(420, method="signal")
@pytest.mark.usefixtures("leaves_nothing_running")
def test_a_stopped_sync_fan_out_starts_nothing_after_its_sigterm(
    scenario: Scenario, record_property: Callable[[str, object], None]
) -> None:
    """
    Marked failed mid-way, the synchronous fan-out (24 items, 4 at a time, no ``cancel_on_kill``) starts
    no item after its SIGTERM.

    How it is timed: the SIGTERM is the supervisor's line ``Server indicated the task shouldn't be
    running anymore``, which it logs just before it sends the signal, and whose timestamp (microseconds)
    the task log keeps. It is there whatever the operator does, so it times the stop with the guard and
    without it alike; the operator's own ``TaskStopped`` line (``... not going on to ...``) is only there
    when a start was refused, and is printed, not relied on. A child run's creation is its ``queued_at``
    (see :func:`created_at`), set by the api-server as it handles the trigger. Both clocks are this
    machine's, read to the microsecond, so "after" needs no allowance for skew, only for causality: a
    trigger the task had sent just before the signal is served by the supervisor while it waits for the
    task to exit, and creates its run just after the line. The fan-out sends one trigger at a time, so
    one run at most may be created after the SIGTERM, within ``IN_FLIGHT_SECONDS`` of it. The test waits
    for the supervisor's ``Task killed!`` (the process is gone) before it counts the runs.
    """
    run_id = scenario.trigger(SYNC_FAN_OUT)
    wait_for(
        lambda: children_done(scenario, DONE_BEFORE_STOP), 240, f"{DONE_BEFORE_STOP} {CHILD} runs succeeded"
    )

    scenario.client.set_task_instance_state(SYNC_FAN_OUT, run_id, FAN_OUT_TASK, "failed")
    scenario.note(f"{SYNC_FAN_OUT}.{FAN_OUT_TASK} marked failed")
    scenario.wait_logged(SYNC_FAN_OUT, run_id, FAN_OUT_TASK, 1, KILLED_EVENT, timeout=60)

    log = scenario.log(SYNC_FAN_OUT, run_id, FAN_OUT_TASK, 1)
    sigterm_at = logged_at(lines_with(log, SIGTERM_EVENT)[0])
    children = scenario.runs_of(CHILD)
    after = sorted((created_at(run) - sigterm_at).total_seconds() for run in children)
    late = [seconds for seconds in after if seconds > 0]
    scenario.note(
        f"{len(children)} child runs; the last created {after[-1]:+.3f} s from the SIGTERM; "
        f"created after it: {[round(s, 3) for s in late]}"
    )
    for run in children:
        if created_at(run) > sigterm_at:
            # Its trigger's lines say whether it was in flight at the signal (sent before the line).
            lines = "\n    ".join(lines_with(log, run["dag_run_id"]))
            scenario.note(f"{run['dag_run_id']} created after the SIGTERM; the task logged:\n    {lines}")
    for line in lines_with(log, REFUSED_EVENT)[:1]:
        refused = (logged_at(line) - sigterm_at).total_seconds()
        scenario.note(f"the operator refused a start {refused:.3f} s after the SIGTERM")
        record_property("sync_fan_out_refused_after_sigterm_seconds", round(refused, 3))
    record_property("sync_fan_out_last_child_from_sigterm_seconds", round(after[-1], 3))
    record_property("sync_fan_out_children", len(children))

    assert len(late) <= 1, f"child runs created after the SIGTERM (seconds after it): {late}"
    assert all(s <= IN_FLIGHT_SECONDS for s in late), f"a child run created {late} s after the SIGTERM"
    assert len(children) < SYNC_ITEMS
    ti = scenario.client.task_instance(SYNC_FAN_OUT, run_id, FAN_OUT_TASK)
    assert ti["state"] == "failed"


@pytest.mark.timeout(420, method="signal")
@pytest.mark.usefixtures("leaves_nothing_running")
def test_a_deferred_execution_timeout_cancels_the_child(
    scenario: Scenario,
    least_privilege: dict[str, str],
    record_property: Callable[[str, object], None],
) -> None:
    """
    A deferred durable parent with ``cancel_on_kill``, no retries and a 20 s ``execution_timeout`` fails,
    and its 120 s child run is failed within 45 s of the timeout.

    The timeout is counted from the try's start (Airflow's ``execution_timeout`` is the try's), read
    while the task is deferred, before any resume; the time from the deferral (the operator's
    ``Deferring until the Dag run ends``) is printed too. The child's cancel is its run's ``end_date``.
    """
    run_id = scenario.trigger(TIMEOUT_DAG)
    ti = scenario.wait_task(
        TIMEOUT_DAG, run_id, SINGLE_TASK, lambda ti: ti["state"] == "deferred", "deferred", timeout=180
    )
    deadline = datetime.fromisoformat(ti["start_date"]) + timedelta(seconds=EXECUTION_TIMEOUT)
    (child,) = wait_for(lambda: scenario.runs_of(CHILD), 60, f"the {CHILD} run")
    scenario.note(f"deferred; the execution_timeout is up at {deadline.time()}")

    left = (deadline - datetime.now(tz=deadline.tzinfo)).total_seconds() + CANCELLED_WITHIN
    ended = wait_for(
        lambda: _if_finished(scenario.client.dag_run(CHILD, child["dag_run_id"])),
        max(left, 1.0),
        f"the {CHILD} run to end within {CANCELLED_WITHIN:.0f} s of the parent's execution_timeout",
        interval=0.5,
    )
    seconds = (datetime.fromisoformat(ended["end_date"]) - deadline).total_seconds()
    scenario.note(f"the child run ended {ended['state']} {seconds:.1f} s after the execution_timeout")
    record_property("timeout_child_ended_after_seconds", round(seconds, 1))

    parent = scenario.wait_run_finished(TIMEOUT_DAG, run_id, timeout=120)
    log = scenario.log(TIMEOUT_DAG, run_id, SINGLE_TASK, 1)
    for line in lines_with(log, DEFER_EVENT)[:1]:
        # The same end, counted from the deferral's own deadline (deferred + execution_timeout).
        deferral_deadline = logged_at(line) + timedelta(seconds=EXECUTION_TIMEOUT)
        from_deferral = (datetime.fromisoformat(ended["end_date"]) - deferral_deadline).total_seconds()
        scenario.note(f"... {from_deferral:.1f} s after the deferral + execution_timeout")
        record_property("timeout_child_ended_after_deferral_deadline_seconds", round(from_deferral, 1))
    # Who set it failed: the audit log names the user of each PATCH.
    patched_by = {
        entry["owner"]
        for entry in scenario.client.event_logs(dag_id=CHILD, run_id=child["dag_run_id"])
        if entry["event"] == "patch_dag_run"
    }
    scenario.note(f"the child run was set failed by {sorted(patched_by)}")
    assert ended["state"] == "failed"
    assert seconds <= CANCELLED_WITHIN
    assert patched_by == {BOT_USER}
    assert scenario.client.task_instance(TIMEOUT_DAG, run_id, SINGLE_TASK)["state"] == "failed"
    assert parent["state"] == "failed"
    assert leaked(log, least_privilege) == []


def _if_finished(run: Json) -> Json | None:
    return run if run["state"] in FINISHED else None


@pytest.mark.timeout(300, method="signal")
def test_the_least_privilege_user_may_read_dags_but_not_connections(airflow: EmbeddedAirflow) -> None:
    token = issued_token(airflow.base_url, BOT_USER, airflow.password_of(BOT_USER))
    headers = {"Authorization": f"Bearer {token}"}

    dags = httpx.get(f"{airflow.base_url}/api/v2/dags", headers=headers, params={"limit": 1}, timeout=30)
    connections = httpx.get(f"{airflow.base_url}/api/v2/connections", headers=headers, timeout=30)

    assert dags.status_code == 200
    assert connections.status_code == 403
