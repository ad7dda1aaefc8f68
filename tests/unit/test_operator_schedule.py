"""The wait's schedule on the fake supervisor: one request per check, dense where the last success ended."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.execution_time.comms import GetDagRunState, GetPreviousDagRun

from standard_ext.wait.window import FINISHING_CHECKS
from tests.fake_errors import api_error
from tests.unit.conftest import kill_mid_wait

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent

WAITING: dict[str, Any] = {"wait_for_completion": True, "logical_date": None}


def previous_success(supervisor: FakeSupervisor, clock: Clock, *, seconds: float) -> None:
    """A run of the child that took ``seconds`` and succeeded, before the wait under test."""
    supervisor.add_run("child", "earlier", seconds=seconds)
    clock.traveller.shift(seconds + 60)


class TestHistory:
    def test_a_twenty_second_child_is_noticed_within_a_second_after_a_run_of_the_same_length(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=22)
        previous_success(supervisor, clock, seconds=22)
        started = clock.elapsed()

        make_parent(**WAITING).run()

        (asked,) = supervisor.sent_of(GetPreviousDagRun)
        assert asked.dag_id == "child"
        assert asked.state == "success"
        # The back-off alone would check at 19 s and then 35 s; the window checks every 1.1 s from 19.8 s.
        assert clock.elapsed() - started - 22 <= 1.1 + 1e-6

    def test_without_an_earlier_success_the_back_off_alone_sets_the_checks(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=22)

        make_parent(**WAITING).run()

        assert clock.waits == [1, 1, 1, 1, 1, 2, 4, 8, 16]
        assert clock.elapsed() == 35

    def test_a_failure_to_ask_is_logged_and_the_wait_goes_on(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=3)
        supervisor.fail_on(GetPreviousDagRun, nth=1, error=api_error(500, "internal", "database is locked"))

        with structlog.testing.capture_logs() as logs:
            make_parent(**WAITING).run()

        (warning,) = [e for e in logs if e["log_level"] == "warning"]
        assert warning["dag_id"] == "child"
        assert "database is locked" in warning["error"]
        assert clock.elapsed() == 3

    def test_a_run_found_by_a_durable_retry_is_waited_on_without_asking(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(durable=True, **WAITING)
        kill_mid_wait(parent)
        asked = len(supervisor.sent_of(GetPreviousDagRun))

        parent.retry()
        parent.run()

        # The run started before this try: its usual length says nothing about when it ends from now.
        assert asked == 1
        assert len(supervisor.sent_of(GetPreviousDagRun)) == 1


class TestOneRequestPerCheck:
    # Where the wait begins against the beat (standard_ext.wait.beat.BEAT_FRACTION) moves its checks, never adds one.
    @pytest.mark.parametrize("phase", [0.0, 17.3, 29.9, 44.5])
    def test_an_hour_long_child_costs_at_most_seventy_two_requests(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock, phase: float
    ) -> None:
        # Stock at its default 60 s interval asks 60 times an hour; 1.2 times that is the budget.
        supervisor.add_dag("child", run_seconds=3600)
        clock.traveller.shift(phase)

        make_parent(**WAITING).run()

        kinds = supervisor.kinds_sent()
        wait = kinds[kinds.index("TriggerDagRun") + 1 :]
        assert wait.count("GetPreviousDagRun") == 1
        assert wait.count("GetDagRunState") == 1  # once, when the task states say the run may have ended
        assert len(wait) <= 72

    def test_tasks_all_finished_but_the_run_not_yet_is_checked_every_second(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        # The task ends at 30 s; the scheduler takes until 36 s to end the run.
        supervisor.add_dag("child", run_seconds=36, task_timeline={"work": [(0, "running"), (30, "success")]})

        make_parent(**WAITING).run()

        # The 35 s check sees the task done and reads the run's state (running): from then on every
        # second, not at the back-off's 67 s.
        assert clock.waits[-2:] == [16, 1]
        assert clock.elapsed() == 36

    def test_a_run_that_stays_running_with_its_tasks_done_goes_back_to_its_schedule(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        # The task ends at 30 s, but nothing ends the run for ten minutes (its Dag was paused, say).
        supervisor.add_dag(
            "child", run_seconds=600, task_timeline={"work": [(0, "running"), (30, "success")]}
        )

        make_parent(**WAITING).run()

        waits = clock.waits
        # Seen done at 35 s: ten one-second checks, then the schedule's again (the beat: a minute apart).
        first = waits.index(1, waits.index(16))
        assert waits[first : first + FINISHING_CHECKS] == [1] * FINISHING_CHECKS
        assert all(wait > 1 for wait in waits[first + FINISHING_CHECKS :])
        assert len(supervisor.sent_of(GetDagRunState)) < FINISHING_CHECKS + 12


class TestTheReadmeTable:
    """The requests and delays the table of docs/polling.md gives, on the fake supervisor."""

    @pytest.mark.parametrize(
        ("seconds", "earlier", "requests", "noticed_after"),
        [
            (5, None, 7, 0.0),
            (22, None, 11, 13.0),
            (22, 22, 13, 0.0),
            (20, 2, 21, 0.9),
            # The test's clock starts on the minute: the back-off's checks fall on the half-minute beat
            # (standard_ext.wait.beat.BEAT_FRACTION), and the hour's end between two of them.
            (3600, None, 71, 30.0),
            (3600, 3600, 71, 30.0),
            (3600, 2, 113, 28.0),
        ],
    )
    def test_requests_and_delay(
        self,
        supervisor: FakeSupervisor,
        make_parent: MakeParent,
        clock: Clock,
        seconds: float,
        earlier: float | None,
        requests: int,
        noticed_after: float,
    ) -> None:
        supervisor.add_dag("child", run_seconds=seconds)
        if earlier is not None:
            previous_success(supervisor, clock, seconds=earlier)
        started = clock.elapsed()

        make_parent(**WAITING).run()

        kinds = supervisor.kinds_sent()
        assert len(kinds[kinds.index("TriggerDagRun") + 1 :]) == requests
        assert clock.elapsed() - started - seconds == pytest.approx(noticed_after, abs=1e-6)


# A child whose one task waits 90 s for a worker slot, then works 10 s: the run ends 100 s after it was
# triggered, 10 s after it started, as long as its last success.
QUEUED_FOR, WORK = 90.0, 10.0
QUEUED_CHILD: dict[str, Any] = {
    "run_seconds": QUEUED_FOR + WORK,
    "task_timeline": {"work": [(0.0, "queued"), (QUEUED_FOR, "running"), (QUEUED_FOR + WORK, "success")]},
}


class TestFollowsTheRun:
    def test_a_child_that_waited_for_a_slot_is_noticed_soon_after_its_end(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", **QUEUED_CHILD)
        previous_success(supervisor, clock, seconds=WORK)
        started = clock.elapsed()

        make_parent(**WAITING).run()

        # Seen started within a quarter of its length (2.5 s); the window then counts from its start.
        # Counted from the trigger, the window (9 s to 16.5 s) had long closed: seen at 127 s, 27 s late.
        assert clock.elapsed() - started - (QUEUED_FOR + WORK) <= WORK / 4 + 1e-6

    def test_while_it_waits_for_a_slot_it_is_checked_every_quarter_of_its_length(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        supervisor.add_dag("child", **QUEUED_CHILD)
        previous_success(supervisor, clock, seconds=WORK)

        make_parent(**WAITING).run()

        queued_waits = clock.waits[: len([w for w in itertools.accumulate(clock.waits) if w <= QUEUED_FOR])]
        assert max(queued_waits) <= WORK / 4 + 1e-9

    def test_a_run_already_started_at_the_first_check_keeps_the_schedule_of_its_trigger(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, clock: Clock
    ) -> None:
        # Its start is not known (a slot was free at once): the schedule counts from the trigger.
        supervisor.add_dag("child", run_seconds=22)

        make_parent(**WAITING).run()

        assert clock.waits == [1, 1, 1, 1, 1, 2, 4, 8, 16]
