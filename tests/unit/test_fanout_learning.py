"""A fan-out's checks fitted to its width, and the child's length learned from its own ended runs."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRun, GetDagRunState, GetDRCount, TriggerDagRun

from standard_ext.fanout.state import FanOut, ItemState
from standard_ext.fanout.timing import FAN_OUT_STEP_SECONDS, fan_out_poke_interval, runs_to_learn_from
from standard_ext.wait.history import LEARN_FROM_RUNS, ended_runs_seconds
from tests.fake_dags import now
from tests.fake_errors import api_error
from tests.unit.fanout_parent import CHILD, FanOutParent, confs, run_deferred

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock
    from tests.unit.virtual_time import VirtualTime

pytestmark = pytest.mark.timeout(60)

# What the fan-out logs once it learned the child's length, and at the start of each wait.
LEARNED = "Learned how long the child Dag runs from the fan-out's ended runs"
CHECKING = "Checking the fan-out's Dag runs"
# A child Dag nobody ran before and children without a logical date: the Dag has no history to read.
NO_HISTORY: dict[str, Any] = {"logical_date": None}


def make(supervisor: FakeSupervisor, shift: Callable[[float], None], **kwargs: Any) -> FanOutParent:
    values: dict[str, Any] = {"trigger_dag_id": CHILD, "wait_for_completion": True, **NO_HISTORY, **kwargs}
    return FanOutParent(supervisor, values, shift)


def lengths(seconds: Sequence[float], *, failing: Sequence[int] = ()) -> Callable[..., tuple[float, str]]:
    """The child Dag's runs by item: item ``i`` takes ``seconds[i]``, and fails if ``i`` is in ``failing``."""

    def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
        item = int((conf or {})["item"])
        return seconds[item], "failed" if item in failing else "success"

    return run_for


def triggered(supervisor: FakeSupervisor) -> list[str]:
    """The run id of each item, in item order."""
    return [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]


def asked(supervisor: FakeSupervisor) -> list[str]:
    """The runs whose length the fan-out read, in order."""
    return [msg.run_id for msg in supervisor.sent_of(GetDagRun)]


class TestFittedPokeInterval:
    @pytest.mark.parametrize(
        ("active_runs", "expected"),
        [(1, 60.0), (4, 15.0), (12, 5.0), (20, 3.0), (60, FAN_OUT_STEP_SECONDS), (0, 60.0)],
    )
    def test_poke_interval_shared_by_the_active_runs_down_to_the_floor(
        self, active_runs: int, expected: float
    ) -> None:
        assert fan_out_poke_interval(poke_interval=60, active_runs=active_runs) == expected

    @pytest.mark.parametrize("active_runs", [1, 20, 60])
    def test_a_poke_interval_below_the_floor_stays_as_the_user_set_it(self, active_runs: int) -> None:
        assert fan_out_poke_interval(poke_interval=2, active_runs=active_runs) == 2

    def test_never_more_often_than_stock_asks_in_all(self) -> None:
        # Stock mapped asks once per child per poke_interval: N requests per poke_interval in all.
        for active_runs in range(1, 200):
            interval = fan_out_poke_interval(poke_interval=60, active_runs=active_runs)
            assert 60 / interval <= max(active_runs, 60 / FAN_OUT_STEP_SECONDS)


class TestRunsToLearnFrom:
    def fan_out(self, *states: ItemState) -> FanOut:
        return FanOut(run_ids=tuple(f"r{i}" for i in range(len(states))), states=states)

    def test_only_succeeded_runs_not_asked_before_latest_item_first(self) -> None:
        s, f, a = ItemState.SUCCEEDED, ItemState.FAILED, ItemState.ACTIVE
        fan_out = self.fan_out(s, f, s, a, s, s)

        assert runs_to_learn_from(fan_out, asked={"r5"}) == ["r4", "r2", "r0"]

    def test_at_most_learn_from_runs(self) -> None:
        fan_out = self.fan_out(*[ItemState.SUCCEEDED] * 10)

        assert runs_to_learn_from(fan_out, asked=set()) == ["r9", "r8", "r7"][:LEARN_FROM_RUNS]

    def test_the_runs_that_just_ended_come_first(self) -> None:
        s, a = ItemState.SUCCEEDED, ItemState.ACTIVE
        before = self.fan_out(a, s, a, s, s)
        after = self.fan_out(s, s, s, s, s)

        assert runs_to_learn_from(after, asked=set(), before=before) == ["r2", "r0", "r4"]

    def test_nothing_when_nothing_succeeded(self) -> None:
        fan_out = self.fan_out(ItemState.FAILED, ItemState.ACTIVE, ItemState.PENDING)

        assert runs_to_learn_from(fan_out, asked=set()) == []


@pytest.mark.usefixtures("clock")
class TestEndedRunsSeconds:
    def test_the_median_of_the_runs_that_succeeded(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        for run_id, seconds in [("a", 10), ("b", 60), ("c", 20)]:
            supervisor.add_run(CHILD, run_id, seconds=seconds)
        supervisor.add_run(CHILD, "failed", seconds=1, outcome="failed")
        supervisor.add_run(CHILD, "running", seconds=3600)
        clock.traveller.shift(61)

        assert ended_runs_seconds(dag_id=CHILD, run_ids=["a", "b", "c"]) == 20
        assert ended_runs_seconds(dag_id=CHILD, run_ids=["failed", "running"]) is None
        assert asked(supervisor) == ["a", "b", "c", "failed", "running"]

    def test_one_request_each_for_the_first_few_only(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        run_ids = [f"r{i}" for i in range(LEARN_FROM_RUNS + 2)]
        for run_id in run_ids:
            supervisor.add_run(CHILD, run_id, seconds=5)
        clock.traveller.shift(6)

        assert ended_runs_seconds(dag_id=CHILD, run_ids=run_ids) == 5
        assert asked(supervisor) == run_ids[:LEARN_FROM_RUNS]

    def test_an_error_is_logged_and_ends_the_asking(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_run(CHILD, "known", seconds=5)
        clock.traveller.shift(6)

        with structlog.testing.capture_logs() as logs:
            assert ended_runs_seconds(dag_id=CHILD, run_ids=["gone", "known"]) is None

        (warning,) = [line for line in logs if line["log_level"] == "warning"]
        assert warning["run_id"] == "gone"
        assert "404" in warning["error"]
        assert asked(supervisor) == ["gone"]


def noticed_at(supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch) -> dict[str, datetime]:
    """When the fan-out first saw each run in a final state: the check that saw it end."""
    seen: dict[str, datetime] = {}
    send = supervisor.send

    def stamping(msg: BaseModel) -> BaseModel | None:
        answer = send(msg)
        if isinstance(msg, GetDagRunState) and getattr(answer, "state", "running") != "running":
            seen.setdefault(msg.run_id, now())
        # The confirming count: every run it asks about succeeded (fanout_poll.ended_runs).
        if (
            isinstance(msg, GetDRCount)
            and msg.states == ["success"]
            and getattr(answer, "count", None) == len(msg.run_ids or [])
        ):
            for run_id in msg.run_ids or []:
                seen.setdefault(run_id, now())
        return answer

    monkeypatch.setattr(supervisor, "send", stamping)
    return seen


class TestNoticedPromptlyWithoutHistory:
    # 60 children on 32 slots, of 20 to 21 s: they end in waves, as runs of one Dag on one conf do.
    ITEMS, SLOTS = 60, 32
    SECONDS = [20 + 0.5 * (i % 3) for i in range(ITEMS)]

    def test_each_end_is_noticed_within_five_seconds_checking_less_often_than_stock_asks(
        self, supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag(CHILD, run_for=lengths(self.SECONDS))
        seen = noticed_at(supervisor, monkeypatch)
        checks: set[datetime] = set()
        count = supervisor._on_GetDRCount

        def counting(msg: GetDRCount) -> Any:
            checks.add(now())
            return count(msg)

        monkeypatch.setattr(supervisor, "_on_GetDRCount", counting)

        make(supervisor, clock.traveller.shift, confs=confs(self.ITEMS), max_active=self.SLOTS).run()

        late = sorted(
            (seen[run.run_id] - run.created_at - timedelta(seconds=run.seconds)).total_seconds()
            for run in supervisor.runs_of(CHILD)
        )
        assert len(late) == self.ITEMS
        # Backing off to the user's 60 s, the first wave was seen 15 s late.
        assert late[round(0.95 * self.ITEMS) - 1] <= 5
        # Stock mapped: each child's task asks once per poke_interval (60 s) until it sees the end. A
        # check of the fan-out is one count for all its runs (the runs it finds ended then cost a
        # probe of the oldest and a count of their successes, as fanout_poll says).
        stock = sum(seconds / 60 + 1 for seconds in self.SECONDS)
        assert len(checks) < stock / 2
        # And in all, the counts, the oldest-first probes and the confirming counts ask less than stock.
        state_requests = [k for k in supervisor.kinds_sent() if k in {"GetDRCount", "GetDagRunState"}]
        assert len(state_requests) < stock
        # Without history it learned the length from the first ends: a few reads and no more.
        assert len(supervisor.sent_of(GetDagRun)) == LEARN_FROM_RUNS

    def test_the_interval_is_logged_once_per_wait(
        self, supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        supervisor.add_dag(CHILD, run_for=lengths([10, 20, 30, 40]))

        parent = make(supervisor, clock.traveller.shift, confs=confs(4))

        with structlog.testing.capture_logs() as logs:
            parent.run()

        waits = [line for line in logs if line["event"] == CHECKING]
        assert [(line["active"], line["poke_interval"]) for line in waits] == [
            (4, 15.0),
            (3, 20.0),
            (2, 30.0),
            (1, 60.0),
        ]
        # The operator's own poke_interval is left as the user set it.
        assert parent.operator is not None
        assert parent.operator.poke_interval == 60


class TestLearning:
    def test_after_the_first_end_one_read_and_no_more(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_for=lengths([10, 12, 14, 30, 40]))

        with structlog.testing.capture_logs() as logs:
            make(supervisor, clock.traveller.shift, confs=confs(5)).run()

        # Item 0 ended alone: its run is read, and its 10 s set every later wait.
        assert supervisor.sent_of(GetDagRun) == [GetDagRun(dag_id=CHILD, run_id=triggered(supervisor)[0])]
        (learned,) = [line for line in logs if line["event"] == LEARNED]
        assert learned["expected_seconds"] == 10
        waits = [line["expected_seconds"] for line in logs if line["event"] == CHECKING]
        assert waits[0] is None
        assert set(waits[1:]) == {10}

    def test_of_many_ends_at_once_only_the_latest_few_are_read(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=lengths([10] * 6 + [40]))

        make(supervisor, clock.traveller.shift, confs=confs(7)).run()

        run_ids = triggered(supervisor)
        assert asked(supervisor) == [run_ids[5], run_ids[4], run_ids[3]][:LEARN_FROM_RUNS]

    def test_never_when_the_dag_has_history(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        # An earlier success with a logical date: the execution API finds it.
        supervisor.add_run(CHILD, "earlier", seconds=10)
        clock.traveller.shift(60)
        supervisor.dags[CHILD].run_for = lengths([10, 12, 14, 30])

        with structlog.testing.capture_logs() as logs:
            make(supervisor, clock.traveller.shift, confs=confs(4)).run()

        assert supervisor.sent_of(GetDagRun) == []
        assert {line["expected_seconds"] for line in logs if line["event"] == CHECKING} == {10}

    def test_failed_items_are_not_read(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_for=lengths([5, 10, 30], failing=[0]))

        make(supervisor, clock.traveller.shift, confs=confs(3), tolerated_failures=1).run()

        assert asked(supervisor) == [triggered(supervisor)[1]]

    def test_an_error_is_logged_and_the_next_end_is_read_instead(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=lengths([10, 20, 40]))
        supervisor.fail_on(GetDagRun, nth=1, error=api_error(500, "internal", "database is locked"))

        with structlog.testing.capture_logs() as logs:
            result = make(supervisor, clock.traveller.shift, confs=confs(3)).run()

        run_ids = triggered(supervisor)
        assert result == run_ids
        assert asked(supervisor) == [run_ids[0], run_ids[1]]
        (warning,) = [line for line in logs if line["log_level"] == "warning"]
        assert warning["event"] == "Could not read how long a Dag run took; polling without it"
        assert "database is locked" in warning["error"]
        (learned,) = [line for line in logs if line["event"] == LEARNED]
        assert learned["expected_seconds"] == 20


class TestDeferred:
    SECONDS = [10, 11, 30, 40, 10, 10, 10, 10]

    def test_the_trigger_of_a_resume_carries_the_learned_length_and_the_fitted_interval(
        self, supervisor: FakeSupervisor, virtual: VirtualTime
    ) -> None:
        supervisor.add_dag(CHILD, run_for=lengths(self.SECONDS))
        parent = make(supervisor, virtual.traveller.shift, confs=confs(8), max_active=4, deferrable=True)

        done = run_deferred(parent)

        first, second = (trigger.serialize()[1] for trigger in done.triggers[:2])
        # Four active runs share the user's 60 s: a check every 15 s, and no length known yet.
        assert (first["poke_interval"], first["expected_seconds"]) == (15.0, None)
        # The resume read the items that had succeeded (latest first), before it deferred again.
        at_resume = done.triggers[1].fan_out
        run_ids = triggered(supervisor)
        succeeded = [at_resume.run_ids[i] for i in reversed(at_resume.indexes(ItemState.SUCCEEDED))]
        read = succeeded[:LEARN_FROM_RUNS]
        assert asked(supervisor)[: len(read)] == read
        assert read
        assert second["expected_seconds"] == statistics.median(self.SECONDS[run_ids.index(r)] for r in read)
        assert second["poke_interval"] == 60 / at_resume.count(ItemState.ACTIVE)
        # Each resume is a process of its own: it reads afresh, a few runs at most.
        assert len(asked(supervisor)) <= LEARN_FROM_RUNS * done.resumes
