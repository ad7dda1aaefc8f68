"""When to check the child run's state: every second at first, then backing off to ``poke_interval``.

The synchronous wait walks :func:`poll_delays`; a trigger, which may be rebuilt by another triggerer
mid-wait, asks :class:`Schedule` for the next check after now. Both are the same schedule.
"""

from __future__ import annotations

import bisect
import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

# The shortest wait between two checks; a child that ends within the fast window is seen this late at most.
FAST_STEP_SECONDS = 1.0


def poll_delays(*, poke_interval: float, fast_poll_window: float) -> Iterator[float]:
    """
    Yield the wait before each next state check; the first check is made before the first wait.

    For ``fast_poll_window`` seconds the wait is one second (or ``poke_interval`` if that is shorter),
    so a short child is noticed about a second after it ends. Then the wait doubles until it reaches
    ``poke_interval``, so a long child costs a few checks more than a fixed ``poke_interval`` would:
    with the defaults (60 s, 5 s) an hour-long child takes 70 checks where a fixed interval takes 60.

    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long to check every second, in seconds.
    """
    step = min(FAST_STEP_SECONDS, poke_interval)
    waited = 0.0
    while waited < fast_poll_window:
        yield step
        waited += step
    delay = step
    while True:
        delay = min(delay * 2, poke_interval)
        yield delay


def wait(seconds: float) -> None:
    """Sleep between two checks."""
    # One place to stand in for the clock: unit tests replace it with time-machine's shift.
    time.sleep(seconds)


def next_check_time(
    *, waiting_since: float, now: float, poke_interval: float, fast_poll_window: float
) -> float:
    """
    Return when the next check of a wait that began at ``waiting_since`` is due: the first after ``now``.

    The checks are those :func:`standard_ext.polling.poll_delays` spaces out: one at ``waiting_since``,
    then one after each delay. Being a function of the clock alone, a trigger rebuilt by another
    triggerer resumes the same schedule instead of starting the fast window over.

    :param waiting_since: when the wait began, as a UNIX timestamp.
    :param now: the current time, as a UNIX timestamp.
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long after ``waiting_since`` to check every second, in seconds.
    """
    ramp = _ramp(poke_interval, fast_poll_window)
    offset = _offset_after(now - waiting_since, ramp, poke_interval)
    # Adding the offset back to a large timestamp can round onto ``now`` itself; step on until it is
    # really later, or the poller would check the same instant forever.
    while waiting_since + offset <= now:
        offset = _offset_after(offset, ramp, poke_interval)
    return waiting_since + offset


@functools.lru_cache(maxsize=64)
def _ramp(poke_interval: float, fast_poll_window: float) -> tuple[float, ...]:
    """Offsets of the checks until the delay reaches ``poke_interval``; later checks are that far apart."""
    # Derived from poll_delays itself, so the synchronous wait and the triggers cannot drift apart. The
    # ramp is short (the fast window, then a few doublings) and listed once per schedule.
    offsets = [0.0]
    for delay in poll_delays(poke_interval=poke_interval, fast_poll_window=fast_poll_window):
        if delay >= poke_interval:
            return tuple(offsets)
        offsets.append(offsets[-1] + delay)
    raise AssertionError("unreachable: poll_delays never ends")  # pragma: no cover


def _offset_after(elapsed: float, ramp: tuple[float, ...], poke_interval: float) -> float:
    """The first check offset strictly greater than ``elapsed``."""
    index = bisect.bisect_right(ramp, elapsed)
    if index < len(ramp):
        return ramp[index]
    # Past the ramp the checks are poke_interval apart: computed, not walked, so a wait of days costs
    # the same as a wait of seconds.
    steps = math.floor((elapsed - ramp[-1]) / poke_interval) + 1
    offset = ramp[-1] + steps * poke_interval
    while offset <= elapsed:  # the division rounded a whole step down
        steps += 1
        offset = ramp[-1] + steps * poke_interval
    return offset


@dataclass(frozen=True)
class Schedule:
    """
    When one waiter wants its run checked; validated, so a bad value fails the trigger, not the poller.

    :param waiting_since: when the wait began, as a UNIX timestamp.
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long after ``waiting_since`` to check every second, in seconds.
    """

    waiting_since: float
    poke_interval: float
    fast_poll_window: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poke_interval) and self.poke_interval > 0):
            raise ValueError(
                f"poke_interval must be a positive number of seconds, got {self.poke_interval!r}"
            )
        if not (math.isfinite(self.fast_poll_window) and self.fast_poll_window >= 0):
            raise ValueError(f"fast_poll_window must be zero or more seconds, got {self.fast_poll_window!r}")
        if not math.isfinite(self.waiting_since):
            raise ValueError(f"waiting_since must be a UNIX timestamp, got {self.waiting_since!r}")

    def next_check_after(self, now: float) -> float:
        """Return the first check of this schedule later than ``now``."""
        return next_check_time(
            waiting_since=self.waiting_since,
            now=now,
            poke_interval=self.poke_interval,
            fast_poll_window=self.fast_poll_window,
        )
