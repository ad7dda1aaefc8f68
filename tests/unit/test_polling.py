"""The poll schedule's arithmetic: state requests made and detection delay, against a fixed interval."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest

from standard_ext.polling import poll_delays

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
    def test_costs_at_most_about_twenty_percent_more_requests(self) -> None:
        hour = 3600.0
        our_requests, our_delay = ours(hour)
        stock_requests, stock_delay = requests_and_delay(stock_check_times(60), hour)

        # Ours: 6 one-second checks (0..5 s), 5 backing off (7, 11, 19, 35, 67 s), then every 60 s:
        # 67 + 59 * 60 = 3607 s is the first check at or after the hour.
        assert (our_requests, our_delay) == (70, 7.0)
        assert (stock_requests, stock_delay) == (60, 0.0)
        assert our_requests / stock_requests == pytest.approx(1.1667, abs=1e-3)
        assert our_requests <= 1.2 * stock_requests

    @pytest.mark.parametrize("ends_at", [600.0, 1800.0, 3599.0, 7200.0])
    def test_steady_state_delay_never_exceeds_poke_interval(self, ends_at: float) -> None:
        _, delay = ours(ends_at)

        assert delay < 60.0
