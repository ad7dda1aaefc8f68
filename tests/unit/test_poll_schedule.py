"""The poll schedule's arithmetic: requests and detection delay against a fixed interval; the trigger's view of it."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from typing import TYPE_CHECKING

import pytest

from bench.schedule_count import stock_checks
from standard_ext.wait.beat import BEAT_FRACTION
from standard_ext.wait.schedule import (
    OVERDUE_FRACTION,
    Schedule,
    check_offsets,
    next_check_time,
    poll_delays,
    queued_step,
)
from standard_ext.wait.window import FAST_STEP_SECONDS
from tests.unit.virtual_time import T0

if TYPE_CHECKING:
    from collections.abc import Iterator


def check_times(delays: Iterator[float]) -> Iterator[float]:
    """When each state check happens: one right away, then one after each wait."""
    t = 0.0
    yield t
    for delay in delays:
        t += delay
        yield t


def stock_delays(poke_interval: float) -> Iterator[float]:
    # The task runner's loop sleeps poke_interval before every check, the first one included.
    yield poke_interval
    yield from itertools.repeat(poke_interval)


def stock_check_times(poke_interval: float) -> Iterator[float]:
    return itertools.islice(check_times(stock_delays(poke_interval)), 1, None)


def requests_and_delay(times: Iterator[float], child_ends_at: float) -> tuple[int, float]:
    """How many state requests are made until the child's end is seen, and how late it is seen."""
    for n, t in enumerate(times, start=1):
        if t >= child_ends_at:
            return n, t - child_ends_at
    raise AssertionError("unreachable: the schedule is endless")


def ours(
    child_ends_at: float, *, poke_interval: float = 60, fast_poll_window: float = 5
) -> tuple[int, float]:
    delays = poll_delays(poke_interval=poke_interval, fast_poll_window=fast_poll_window)
    return requests_and_delay(check_times(delays), child_ends_at)


class TestSchedule:
    def test_one_second_steps_then_doubling_up_to_poke_interval(self) -> None:
        delays = list(itertools.islice(poll_delays(poke_interval=60, fast_poll_window=5), 14))

        assert delays == [1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]

    def test_poke_interval_below_one_second_is_the_step(self) -> None:
        delays = list(itertools.islice(poll_delays(poke_interval=0.5, fast_poll_window=1), 4))

        assert delays == [0.5, 0.5, 0.5, 0.5]

    def test_zero_window_starts_backing_off_at_once(self) -> None:
        delays = list(itertools.islice(poll_delays(poke_interval=10, fast_poll_window=0), 5))

        assert delays == [2, 4, 8, 10, 10]


class TestFiveSecondChild:
    @pytest.mark.parametrize("ends_at", [0.2, 1.0, 2.5, 4.9, 5.0])
    def test_noticed_within_a_second_with_the_default_poke_interval(self, ends_at: float) -> None:
        _, delay = ours(ends_at)

        assert delay <= 1.0

    def test_arithmetic_against_the_stock_fixed_interval(self) -> None:
        # Ours: checks at 0, 1, 2, 3, 4, 5 s; the sixth sees the end. Stock: one check, at 60 s.
        assert ours(5.0) == (6, 0.0)
        assert requests_and_delay(stock_check_times(60), 5.0) == (1, 55.0)


class TestHourLongChild:
    # Where the wait begins against the wall clock moves the back-off's checks onto the beat: each phase.
    PHASES = [T0 + i * 0.7 for i in range(90)]

    def test_costs_at_most_twenty_percent_more_requests_than_stock_at_any_phase(self) -> None:
        hour = 3600.0
        stock = stock_checks(child_seconds=hour)  # the real stock loop's count: test_bench_schedule_count.py

        for since in self.PHASES:
            schedule = Schedule(since, 60, 5).seen(started=True, after=0.0, waiting_seen=False)
            checks, delay = requests_and_delay(check_offsets(schedule), hour)
            # 10 checks to 35 s (0..5, 7, 11, 19, 35 s), then one each minute on the half-minute beat.
            assert checks == 70
            assert 0.0 <= delay < 60.0
        assert stock == 60
        assert 70 / stock <= 1.2

    @pytest.mark.parametrize("ends_at", [600.0, 1800.0, 3599.0, 7200.0])
    def test_steady_state_delay_never_exceeds_poke_interval(self, ends_at: float) -> None:
        for since in self.PHASES:
            _, delay = requests_and_delay(check_offsets(Schedule(since, 60, 5)), ends_at)

            assert delay < 60.0


class TestSharedBeat:
    """The back-off's checks fall on a wall-clock beat shared by every wait of one poke_interval."""

    @pytest.mark.parametrize(("poke_interval", "fast_poll_window"), [(60, 5), (10, 5), (3, 0), (3600, 30)])
    def test_past_the_ramp_every_check_is_on_the_beat_and_a_poke_interval_apart(
        self, poke_interval: float, fast_poll_window: float
    ) -> None:
        since = T0 + 13.37
        schedule = Schedule(since, poke_interval, fast_poll_window)
        offsets = list(itertools.islice(check_offsets(schedule), 60))
        unaligned = list(
            itertools.islice(
                sync_check_offsets(poke_interval=poke_interval, fast_poll_window=fast_poll_window), 60
            )
        )
        # The ramp's checks stay where they were, but for its last, which moves to the beat.
        ramp = itertools.takewhile(
            lambda d: d < poke_interval,
            poll_delays(poke_interval=poke_interval, fast_poll_window=fast_poll_window),
        )
        kept = len(list(ramp))
        assert offsets[:kept] == unaligned[:kept]
        steady = offsets[kept:]
        assert steady[0] >= unaligned[kept]

        for offset in steady:
            beats = (since + offset) / (poke_interval * BEAT_FRACTION)
            assert beats == pytest.approx(round(beats), abs=1e-6)
        for this, following in itertools.pairwise(steady):
            assert following - this == pytest.approx(poke_interval, abs=1e-6)

    def test_waits_begun_at_different_seconds_check_at_two_moments_a_minute(self) -> None:
        # 200 waits begun at random moments over five minutes: without the beat their checks fill most
        # seconds of the minute; on it, the shared poller has two moments a minute to ask about them all.
        rng = random.Random(7)
        starts = [T0 + rng.uniform(0, 300) for _ in range(200)]
        moments: set[float] = set()
        for since in starts:
            schedule = Schedule(since, 60, 5)
            moments.update(
                round(since + offset, 6)
                for offset in itertools.takewhile(lambda o: o < 2000, check_offsets(schedule))
                if T0 + 1000 <= since + offset < T0 + 1600
            )

        assert len(moments) == 2 * 10

    @pytest.mark.parametrize("ends_at", [20.0, 40.0, 66.0, 70.0, 100.0, 130.0, 600.0, 3600.0])
    def test_the_beat_adds_no_check_and_less_than_half_a_poke_interval_of_delay(self, ends_at: float) -> None:
        unaligned = requests_and_delay(sync_check_offsets(poke_interval=60, fast_poll_window=5), ends_at)
        for i in range(120):
            since = T0 + i * 0.5
            checks, delay = requests_and_delay(check_offsets(Schedule(since, 60, 5)), ends_at)

            assert checks <= unaligned[0]
            assert delay < unaligned[1] + 60 * BEAT_FRACTION
            assert delay < 60.0


def sync_check_offsets(*, poke_interval: float, fast_poll_window: float) -> Iterator[float]:
    """The offsets of the synchronous wait's checks, walked from poll_delays as the operator walks them."""
    t = 0.0
    yield t
    for delay in poll_delays(poke_interval=poke_interval, fast_poll_window=fast_poll_window):
        t += delay
        yield t


class TestNextCheckTime:
    @pytest.mark.parametrize(
        ("poke_interval", "fast_poll_window"),
        [(60, 5), (60, 0), (10, 5), (1, 5), (3, 10), (0.5, 1), (7.5, 2.5), (3600, 30)],
    )
    def test_follows_the_synchronous_waits_checks(
        self, poke_interval: float, fast_poll_window: float
    ) -> None:
        # The synchronous wait walks the schedule by the seconds it waited; a trigger asks by the clock.
        checks = list(
            itertools.islice(
                check_offsets(Schedule(T0, poke_interval=poke_interval, fast_poll_window=fast_poll_window)),
                40,
            )
        )
        kwargs = {"waiting_since": T0, "poke_interval": poke_interval, "fast_poll_window": fast_poll_window}

        for this, following in itertools.pairwise(checks):
            assert next_check_time(now=T0 + this, **kwargs) - T0 == pytest.approx(following, abs=1e-6)
            assert next_check_time(now=T0 + (this + following) / 2, **kwargs) - T0 == pytest.approx(
                following, abs=1e-6
            )

    def test_the_first_check_is_at_the_start_when_the_clock_is_behind_it(self) -> None:
        # A triggerer whose clock lags the worker's that set waiting_since.
        assert next_check_time(waiting_since=T0, now=T0 - 3, poke_interval=60, fast_poll_window=5) == T0

    def test_days_into_a_wait_it_is_computed_not_walked(self) -> None:
        now = 10 * 86400 + 0.5
        walked = next(t for t in check_offsets(Schedule(T0, 60, 5)) if t > now)

        assert (
            next_check_time(waiting_since=T0, now=T0 + now, poke_interval=60, fast_poll_window=5)
            == T0 + walked
        )
        # T0 is on the minute: the ramp's 67 s check moves to the beat at 90 s, then every 60 s.
        assert walked == 90 + 60 * 14399

    @pytest.mark.parametrize("poke_interval", [0.1, 0.3, 0.7, 60])
    def test_each_next_check_is_later_than_the_last(self, poke_interval: float) -> None:
        # Sub-second steps are not exact in binary: since + offset can round onto the current check.
        since = 1_795_262_400.123
        now = since
        for _ in range(2000):
            following = next_check_time(
                waiting_since=since, now=now, poke_interval=poke_interval, fast_poll_window=1
            )
            assert following > now
            now = following

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"poke_interval": 0}, "poke_interval"),
            ({"poke_interval": -1}, "poke_interval"),
            ({"poke_interval": math.inf}, "poke_interval"),
            ({"fast_poll_window": -1}, "fast_poll_window"),
            ({"fast_poll_window": math.nan}, "fast_poll_window"),
            ({"waiting_since": math.nan}, "waiting_since"),
        ],
    )
    def test_a_schedule_that_would_never_move_is_refused(self, kwargs: dict[str, float], name: str) -> None:
        values: dict[str, float] = {"waiting_since": T0, "poke_interval": 60, "fast_poll_window": 5, **kwargs}

        with pytest.raises(ValueError, match=name):
            Schedule(**values)


def with_history(
    child_ends_at: float, *, expected: float | None, poke_interval: float = 60
) -> tuple[int, float]:
    """Checks until the end is seen, and how late, when the child's last success took ``expected`` s."""
    # A run that starts at once, seen started at the first check.
    schedule = Schedule(
        waiting_since=0.0,
        poke_interval=poke_interval,
        fast_poll_window=5,
        expected_seconds=expected,
        started_after=0.0,
    )
    return requests_and_delay(check_offsets(schedule), child_ends_at)


class TestWithoutHistoryTheBudgetForbidsThreeSeconds:
    """
    Why a first run (no earlier success) of a 20 s child is noticed up to 16 s late, not within 3 s.

    Without a prediction the schedule knows only the time waited. Noticing a 20 s child within 3 s needs
    checks at most 3 s apart around 20 s, and, for a longer child to be noticed within a tenth of its
    length, gaps of at most a tenth of the time waited after that. Walked at the cheapest (each gap as
    long as that allows, from a one-second fast window), that costs more than the hour's budget.
    """

    @staticmethod
    def cheapest_checks(*, until: float, poke_interval: float = 60.0) -> int:
        t, checks = 0.0, 1
        while t < until:
            t += min(poke_interval, max(FAST_STEP_SECONDS, 3.0 if t < 23 else t * OVERDUE_FRACTION))
            checks += 1
        return checks

    def test_the_cheapest_such_schedule_costs_more_than_an_hours_budget(self) -> None:
        budget = 1.2 * stock_checks(child_seconds=3600.0)
        # Two requests besides the checks: the history at the start, the run's state at the end.
        assert self.cheapest_checks(until=3600.0) + 2 > budget
        # The schedule as it is stays within it, at any phase (TestHourLongChild).
        assert 70 + 2 <= budget


class TestWindowAroundTheLastSuccess:
    @pytest.mark.parametrize(("expected", "ends_at"), [(20, 19.5), (20, 20.0), (22, 23.3), (22, 29.9)])
    def test_a_twenty_second_child_is_noticed_within_about_a_second(
        self, expected: float, ends_at: float
    ) -> None:
        _, delay = with_history(ends_at, expected=expected)
        _, without = with_history(ends_at, expected=None)

        assert delay <= 1.0 + 1e-9
        assert without > 5  # the back-off alone checks at 19 and 35 s

    @pytest.mark.parametrize("ends_at", [110.0, 121.0, 125.0, 144.1])
    def test_a_two_minute_child_is_noticed_within_a_twentieth_of_its_length(self, ends_at: float) -> None:
        _, delay = with_history(ends_at, expected=121)

        assert delay <= 121 / 20 + 1e-9

    @pytest.mark.parametrize("ends_at", [29.0, 45.0, 60.0, 200.0, 299.0])
    def test_a_child_that_outlives_its_window_is_noticed_within_a_tenth_of_its_length(
        self, ends_at: float
    ) -> None:
        # Last time 20 s, this time longer: past the window (18 s to 28 s) the checks follow its age.
        _, delay = with_history(ends_at, expected=20)

        assert delay <= ends_at / 10 + 1e-9

    def test_a_twenty_second_child_whose_last_success_took_two_seconds_is_noticed_about_a_second_late(
        self,
    ) -> None:
        # The child Dag's length depends on its conf: the window (1.8 s to 7.3 s) says nothing this time.
        # Past it the checks are a tenth of the run's age apart, about 2 s around 20 s: seen about 1 s
        # late in the median, where the back-off (checks at 19 s and 35 s) saw it 7 to 13 s late.
        delays = [with_history(15 + i / 2, expected=2)[1] for i in range(21)]

        assert statistics.median(delays) <= 1.25
        assert max(delays) <= 25 / 10

    def test_the_window_costs_a_few_checks_and_replaces_the_back_offs_own(self) -> None:
        requests, _ = with_history(27.0, expected=20)

        schedule = Schedule(0.0, 60, 5, expected_seconds=20, started_after=0.0)
        offsets = list(itertools.islice(check_offsets(schedule), 25))
        window = [o for o in offsets if 18 <= o < 28]
        assert window == pytest.approx([18, 19, 20, 21, 22, 23, 24, 25, 26, 27])
        assert 28.0 in offsets  # the window's last check, at its close (18 s to 28 s)
        assert 19.0 not in offsets[:6]  # the back-off's 19 s check gives way to the window's
        assert requests == len([o for o in offsets if o <= 27])

    def test_an_hour_long_child_costs_no_more_than_without_history(self) -> None:
        # A twentieth of an hour is longer than poke_interval: the back-off is as dense as a window would be.
        assert Schedule(0.0, 60, 5, expected_seconds=3600).window is None
        # waiting_since=0 is on the beat: the back-off's checks at 90 s, 150 s, ... 3630 s.
        assert with_history(3600.0, expected=3600) == with_history(3600.0, expected=None) == (70, 30.0)

    @pytest.mark.parametrize("expected", [None, 0.0, -5.0, math.inf, math.nan])
    def test_no_usable_length_means_no_window(self, expected: float | None) -> None:
        assert Schedule(0.0, 60, 5, expected_seconds=expected).window is None

    def test_a_trigger_rebuilt_mid_window_resumes_the_same_checks(self) -> None:
        schedule = Schedule(waiting_since=T0, poke_interval=60, fast_poll_window=5, expected_seconds=120)
        offsets = list(itertools.takewhile(lambda o: o < 200, check_offsets(schedule)))

        for this, following in itertools.pairwise(offsets):
            assert schedule.next_check_after(T0 + this) - T0 == pytest.approx(following, abs=1e-6)
            # Rebuilt between two checks: the back-off's and the window's checks are the walk's; while the
            # run is not seen started, the queued step counts from the rebuild (the last check is not known).
            middle = (this + following) / 2
            step = queued_step(expected_seconds=120, poke_interval=60)
            assert step is not None
            assert (
                middle < schedule.next_check_after(T0 + middle) - T0 <= max(following, middle + step) + 1e-6
            )


class TestAnchoredAtTheStart:
    SCHEDULE = Schedule(0.0, 60, 5, expected_seconds=10)

    def test_a_start_seen_after_the_run_waited_anchors_the_schedule(self) -> None:
        anchored = self.SCHEDULE.seen(started=True, after=30.0, waiting_seen=True)

        assert anchored.started_after == 30.0
        # After the check at 30 s that saw it start, the fast window and the predicted window count
        # from the start: every second to 35 s, 37 s, then every second from 39 s to 46.5 s.
        after = [30.0]
        while after[-1] < 47:
            after.append(anchored.next_offset_after(after[-1]))
        assert after[1:] == pytest.approx([31, 32, 33, 34, 35, 37, 39, 40, 41, 42, 43, 44, 45, 46, 47])

    def test_only_the_first_sighting_counts(self) -> None:
        anchored = self.SCHEDULE.seen(started=True, after=30.0, waiting_seen=True)

        assert anchored.seen(started=True, after=50.0, waiting_seen=True) is anchored

    def test_a_run_started_at_the_first_check_counts_from_the_trigger(self) -> None:
        # A retry reconnecting, a rebuilt trigger: when it started is not known.
        assert self.SCHEDULE.seen(started=True, after=30.0, waiting_seen=False).started_after == 0.0

    def test_a_run_not_started_changes_nothing(self) -> None:
        assert self.SCHEDULE.seen(started=False, after=30.0, waiting_seen=True) is self.SCHEDULE

    @pytest.mark.parametrize(
        ("expected", "step"), [(2.0, 1.0), (10.0, 2.5), (100.0, 5.0), (240.0, None), (None, None)]
    )
    def test_until_it_starts_it_is_checked_every_quarter_of_its_length_up_to_five_seconds(
        self, expected: float | None, step: float | None
    ) -> None:
        assert queued_step(expected_seconds=expected, poke_interval=60) == step
