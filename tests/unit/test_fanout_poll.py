"""Singling out the fan-out's ended runs (``fanout_poll.ended_runs``): what it asks, as the routes answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount

from standard_ext.fanout.poll import ended_runs
from tests.fake_task import FakeTaskInstance

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock

CHILD = "child"
RUNS = [f"r{i}" for i in range(8)]


def questions(supervisor: FakeSupervisor) -> list[tuple[str, list[str], list[str]]]:
    """Each question asked: its kind, its run ids and (for a count) its states."""
    asked: list[tuple[str, list[str], list[str]]] = []
    for msg in supervisor.sent:
        if isinstance(msg, GetDRCount):
            asked.append(("count", list(msg.run_ids or []), list(msg.states or [])))
        elif isinstance(msg, GetDagRunState):
            asked.append(("state", [msg.run_id], []))
    return asked


def add_runs(supervisor: FakeSupervisor, lengths: dict[str, tuple[float, str]]) -> None:
    for run_id in RUNS:
        seconds, outcome = lengths.get(run_id, (3600.0, "success"))
        supervisor.add_run(CHILD, run_id, seconds=seconds, outcome=outcome)


def test_the_oldest_ending_first_cost_a_probe_and_a_count_of_their_successes(
    supervisor: FakeSupervisor, clock: Clock
) -> None:
    add_runs(supervisor, {"r0": (10, "success"), "r1": (10, "success")})
    clock.traveller.shift(11)

    assert ended_runs(ti=FakeTaskInstance(), dag_id=CHILD, run_ids=RUNS) == {"r0": "success", "r1": "success"}

    active = ["queued", "running"]
    assert questions(supervisor) == [
        ("count", RUNS, active),
        ("count", ["r0", "r1"], active),
        ("count", ["r0", "r1"], ["success"]),
    ]


def test_runs_ending_out_of_order_are_singled_out_by_halving(
    supervisor: FakeSupervisor, clock: Clock
) -> None:
    add_runs(supervisor, {"r5": (10, "success")})
    clock.traveller.shift(11)

    assert ended_runs(ti=FakeTaskInstance(), dag_id=CHILD, run_ids=RUNS) == {"r5": "success"}

    kinds = questions(supervisor)
    # The probe of the oldest (r0) finds it active; halving then finds r5.
    assert kinds[1] == ("count", ["r0"], ["queued", "running"])
    assert kinds[-1] == ("count", ["r5"], ["success"])
    assert not any(kind == "state" for kind, _, _ in kinds)


def test_a_failure_among_them_is_read_run_by_run(supervisor: FakeSupervisor, clock: Clock) -> None:
    add_runs(supervisor, {"r0": (10, "success"), "r1": (10, "failed")})
    clock.traveller.shift(11)

    assert ended_runs(ti=FakeTaskInstance(), dag_id=CHILD, run_ids=RUNS) == {"r0": "success", "r1": "failed"}

    assert [ids for kind, ids, _ in questions(supervisor) if kind == "state"] == [["r0"], ["r1"]]


def test_nothing_ended_costs_one_count(supervisor: FakeSupervisor) -> None:
    add_runs(supervisor, {})

    assert ended_runs(ti=FakeTaskInstance(), dag_id=CHILD, run_ids=RUNS) == {}

    assert questions(supervisor) == [("count", RUNS, ["queued", "running"])]


def test_a_run_gone_from_the_server_ends_its_item_as_gone(supervisor: FakeSupervisor, clock: Clock) -> None:
    add_runs(supervisor, {})
    del supervisor.runs[(CHILD, "r0")]

    # The route answers the count without it (one fewer active), and its state with a 404.
    assert ended_runs(ti=FakeTaskInstance(), dag_id=CHILD, run_ids=RUNS) == {"r0": None}
