"""
The flow every coordinator-fault scenario shares: start durable parents on both paths, fault, wait it out.

Each scenario triggers ``fault_sync`` and ``fault_deferred`` (``tests/e2e/dags/e2e_faults.py``), each with a
tag of its own, waits until both children work and the deferrable parent is deferred, runs its fault, and
waits for every run to end. It reports, per parent, the run's state, its tries, the child runs it caused
and how long after its child's end the parent task ended (the *lag*): a fault's cost is its lag over a
fault-free wait's, the ``poke_interval`` (5 s) at most.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.e2e import components
from tests.e2e.flows import (
    ALREADY_FINISHED_EVENT,
    RECONNECT_EVENT,
    TRIGGERED_EVENT,
    lines_with,
    seconds_between,
)
from tests.e2e.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import Json
    from tests.e2e.harness import EmbeddedAirflow

CHILD = "fault_child"
CHILD_TASK = "work"
PARENT_TASK = "trigger_child"
PARENTS = {"sync": "fault_sync", "deferred": "fault_deferred"}
# A fault-free wait ends at most this long after its child: the parents' poke_interval.
POKE_INTERVAL = 5.0


@dataclass(frozen=True)
class ParentOutcome:
    """One parent after the fault: its run, its tries, the child runs it caused, its lag, its tries' logs."""

    path: str
    dag_id: str
    run_id: str
    run: Json
    tries: list[Json]
    children: list[Json]
    # Seconds from the child run's end to the parent task's end.
    lag: float
    # The parent run's length, start to end: the fault's cost is this over a fault-free run's.
    seconds: float
    logs: list[str]

    def line(self) -> str:
        """The scenario's summary of this parent, for the test output and the table of docs/faults.md."""
        return (
            f"{self.path}: parent {self.run['state']}, {len(self.tries)} tr{'y' if len(self.tries) == 1 else 'ies'}, "
            f"{len(self.children)} child run(s), ended {self.lag:.1f} s after its child, "
            f"parent run {self.seconds:.1f} s"
        )


def run_through(
    scenario: Scenario,
    fault: Callable[[], None],
    *,
    child_sleep: float,
    timeout: float = 600.0,
    ready: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, ParentOutcome]:
    """
    Trigger both parents, run ``fault`` once both children work and the deferrable parent is deferred.

    :param scenario: the test's scenario (its tag marks the synchronous parent's runs).
    :param fault: what goes wrong; it returns once the fault is over (a component restarted, say).
    :param child_sleep: how long each child works.
    :param timeout: for each wait.
    :param ready: called with the parents' run ids by path, after both wait and before the fault.
    :returns: each parent's outcome, by path (``sync``, ``deferred``).
    """
    scenarios = {
        "sync": scenario,
        "deferred": Scenario(
            scenario.client,
            f"{scenario.name}-deferred",
            started=scenario.started,
            log_files=scenario.log_files,
        ),
    }
    run_ids = {path: scenarios[path].trigger(dag_id, sleep=child_sleep) for path, dag_id in PARENTS.items()}
    for s in scenarios.values():
        s.wait_child_working(CHILD, CHILD_TASK, 1, timeout)
    scenario.wait_task(
        PARENTS["deferred"],
        run_ids["deferred"],
        PARENT_TASK,
        lambda ti: ti["state"] == "deferred",
        "deferred",
        timeout,
    )
    scenario.wait_task_running(PARENTS["sync"], run_ids["sync"], PARENT_TASK, 1, timeout)
    if ready is not None:
        ready(run_ids)
    fault()
    scenario.note("the fault is over")
    return {path: _outcome(scenarios[path], path, run_ids[path], timeout) for path in PARENTS}


def _outcome(scenario: Scenario, path: str, run_id: str, timeout: float) -> ParentOutcome:
    dag_id = PARENTS[path]
    run = scenario.wait_run_finished(dag_id, run_id, timeout)
    children = scenario.wait_runs_finished(CHILD, 1, timeout)
    tries = scenario.client.task_tries(dag_id, run_id, PARENT_TASK)
    last = scenario.client.task_instance(dag_id, run_id, PARENT_TASK)
    # The last child to end is the one the parent waited for last.
    child_end = max((child["end_date"] for child in children if child["end_date"]), default=None)
    outcome = ParentOutcome(
        path=path,
        dag_id=dag_id,
        run_id=run_id,
        run=run,
        tries=tries,
        children=children,
        lag=seconds_between(child_end, last["end_date"]),
        seconds=seconds_between(run["start_date"], run["end_date"]),
        logs=[scenario.log(dag_id, run_id, PARENT_TASK, t["try_number"]) for t in tries],
    )
    scenario.note(outcome.line())
    for record, log in zip(tries[:-1], outcome.logs, strict=False):
        # Why an earlier try ended is the fault's story: its state and its log's last lines.
        tail = "\n    ".join(log.splitlines()[-6:])
        scenario.note(
            f"{path}: try {record['try_number']} ended {record['state']}; its log ends:\n    {tail}"
        )
    return outcome


def survives(
    scenario: Scenario,
    fault: Callable[[], None],
    *,
    name: str,
    record_property: Callable[[str, object], None],
    child_sleep: float,
    ready: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, ParentOutcome]:
    """
    ``run_through`` the fault, record each parent's figures under ``name``, and assert both survived.

    Each parent succeeded with exactly one child run (``assert_one_child_and_success``).
    """
    outcomes = run_through(scenario, fault, child_sleep=child_sleep, ready=ready)
    record(outcomes, name, record_property)
    for outcome in outcomes.values():
        assert_one_child_and_success(outcome)
    return outcomes


def assert_one_child_and_success(outcome: ParentOutcome) -> None:
    """
    The parent succeeded with exactly one child run, which succeeded; a later try reconnected to it.

    :param outcome: one parent's outcome.
    """
    assert outcome.run["state"] == "success", outcome.line()
    assert len(outcome.children) == 1, [child["dag_run_id"] for child in outcome.children]
    assert outcome.children[0]["state"] == "success"
    first, *later = outcome.logs
    assert lines_with(first, TRIGGERED_EVENT), f"try 1 did not trigger; its log:\n{first}"
    for log in later:
        assert not lines_with(log, TRIGGERED_EVENT), f"a retry triggered again; its log:\n{log}"
        assert lines_with(log, RECONNECT_EVENT) or lines_with(log, ALREADY_FINISHED_EVENT), log


def record(
    outcomes: dict[str, ParentOutcome], fault: str, record_property: Callable[[str, object], None]
) -> None:
    """
    Record each parent's lag and tries in the test report (``--junitxml``), named after ``fault``.

    :param outcomes: what ``run_through`` returned.
    :param fault: the scenario's short name.
    :param record_property: pytest's fixture.
    """
    for path, outcome in outcomes.items():
        record_property(f"{fault}_{path}_lag_seconds", round(outcome.lag, 1))
        record_property(f"{fault}_{path}_parent_run_seconds", round(outcome.seconds, 1))
        record_property(f"{fault}_{path}_tries", len(outcome.tries))


def component_outage(
    airflow: EmbeddedAirflow,
    scenario: Scenario,
    component: str,
    *,
    seconds: float,
    with_children: bool = True,
) -> Callable[[], None]:
    """
    The fault of a component SIGKILLed and a new one started ``seconds`` later, for ``run_through``.

    :param airflow: the embedded Airflow.
    :param scenario: for the timeline.
    :param component: a key of ``components.MARKERS``.
    :param seconds: how long it stays down.
    :param with_children: kill what it forked too (see ``components.kill``).
    """

    def fault() -> None:
        components.kill(airflow, component, with_children=with_children)
        outage(scenario, seconds, f"the {component}")
        components.start(airflow, component)
        scenario.note(f"a new {component} runs")

    return fault


def replacing_what_exits(airflow: EmbeddedAirflow, scenario: Scenario, replaced: list[str]) -> None:
    """
    After a fault, start again every component that exited on it, as a process supervisor does.

    :param replaced: where the names of the ones started again are added.
    """
    replaced.extend(components.replace_exited(airflow))
    scenario.note(f"replaced after exiting: {replaced or 'none'}")


def outage(scenario: Scenario, seconds: float, what: str) -> None:
    """
    Hold a component down for ``seconds``: the length of the outage is the scenario's input, not a guess.

    :param scenario: for the timeline.
    :param seconds: how long.
    :param what: what is down, for the timeline.
    """
    scenario.note(f"{what} down for {seconds:.0f} s")
    # The outage's length is what the scenario sets, not a wait for something to happen.
    time.sleep(seconds)


def pollers_at_once(log: str, dag_id: str) -> int:
    """
    The most shared pollers of ``dag_id`` that ran at once in one triggerer, from its log.

    Each poller logs ``Polling child Dag runs`` as it starts and ``Stopped polling child Dag runs`` as it
    stops (at debug: ``FAULTS`` turns those loggers up).

    :param log: one triggerer's log.
    :param dag_id: the child Dag.
    """
    running = most = 0
    for line in log.splitlines():
        if f"dag_id={dag_id}" not in line:
            continue
        if "Stopped polling child Dag runs" in line:
            running -= 1
        elif "Polling child Dag runs" in line:
            running += 1
            most = max(most, running)
    return most
