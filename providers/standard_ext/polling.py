"""
When to check the child run: every second at first, backing off to ``poke_interval``, dense near its end.

Both waits ask :class:`Schedule` for the next check: the synchronous loop by the seconds it has waited,
a trigger (which may be rebuilt by another triggerer mid-wait) by the clock. Either way it is one
function of the time since the wait began, so the two paths cannot drift apart.

**Why the schedule knows the child's usual length.** Users feel two figures: how late the parent
notices that the child ended (a 20 s child should be noticed within about 3 s, a long one within a
tenth of its length), and how many requests a wait costs (an hour-long child should cost little more
than the stock operator's 60 at its 60 s interval). A schedule that only knows the elapsed time cannot
give both: noticing the end of a 20 s child within 3 s needs a check every few seconds around 20 s,
and any such schedule also spends those checks on the hour-long child: keeping every gap within a tenth
of the time waited costs over 100 checks in the hour, where 72 are allowed (the arithmetic is in
``tests/unit/test_polling.py``). The child's task states do
not help the common case either: a one-task child (a job, a pod, a query) shows nothing but
``running`` until it ends. What does tell is the child Dag's last successful run: one request when the
wait begins (:mod:`standard_ext.history`). Around the end that run predicts, from 90 % to 115 % of its
length plus :data:`WINDOW_SLACK_SECONDS`, the schedule checks every twentieth of that length (at least
every second); elsewhere it keeps the back-off. A child that runs as long as last time is noticed
within a twentieth of its length; one that does not is noticed as without history; an hour-long child
costs nothing more, because a twentieth of an hour is longer than ``poke_interval``.
"""

from __future__ import annotations

import bisect
import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

# The shortest wait between two checks; a child that ends within the fast window is seen this late at most.
FAST_STEP_SECONDS = 1.0
# Near the predicted end, check every this fraction of the predicted length (but never more often than
# FAST_STEP_SECONDS): the end is then seen within 5 % of the child's length.
WINDOW_STEP_FRACTION = 1 / 20
# The window opens at this fraction of the predicted length and closes at the other plus the slack: a
# run takes a little longer or shorter each time, and starts a moment after it is triggered.
WINDOW_OPENS, WINDOW_CLOSES = 0.9, 1.15
WINDOW_SLACK_SECONDS = 5.0


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


def check_offsets(schedule: Schedule) -> Iterator[float]:
    """
    Yield every check of ``schedule``, in seconds after ``waiting_since``: the first at 0.

    What the benchmark counts the requests of a wait by, without waiting.

    :param schedule: the schedule to walk.
    """
    offset = 0.0
    while True:
        yield offset
        offset = schedule.next_offset_after(offset)


def wait(seconds: float, *, stop: threading.Event | None = None) -> None:
    """
    Sleep between two checks; with ``stop``, wake as soon as it is set.

    :param seconds: how long to sleep.
    :param stop: set from a signal handler (``on_kill``): the wait wakes at once instead of sleeping on
        (``time.sleep`` resumes after a handler, ``Event.wait`` returns).
    """
    # One place to stand in for the clock: unit tests replace it with time-machine's shift.
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


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
    schedule = Schedule(
        waiting_since=waiting_since, poke_interval=poke_interval, fast_poll_window=fast_poll_window
    )
    return schedule.next_check_after(now)


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
class Window:
    """Where the child is expected to end: check every ``step`` seconds from ``opens`` until ``closes``."""

    opens: float
    closes: float
    step: float

    @classmethod
    def around(cls, *, expected_seconds: float | None, poke_interval: float) -> Window | None:
        """
        The dense window around a predicted end, or ``None`` when it would add nothing.

        :param expected_seconds: how long the child's last successful run took; ``None`` if unknown.
        :param poke_interval: the longest wait between two checks, in seconds.
        """
        if expected_seconds is None or not (math.isfinite(expected_seconds) and expected_seconds > 0):
            return None
        step = max(FAST_STEP_SECONDS, expected_seconds * WINDOW_STEP_FRACTION)
        if step >= poke_interval:
            # The back-off is already this dense there: an hour-long child costs no extra checks.
            return None
        return cls(
            opens=WINDOW_OPENS * expected_seconds,
            closes=WINDOW_CLOSES * expected_seconds + WINDOW_SLACK_SECONDS,
            step=step,
        )

    def next_after(self, elapsed: float) -> float | None:
        """The first check of the window later than ``elapsed``, or ``None`` past it."""
        if elapsed < self.opens:
            return self.opens
        offset = self.opens + (math.floor((elapsed - self.opens) / self.step) + 1) * self.step
        while offset <= elapsed:  # the division rounded a whole step down
            offset += self.step
        # The last check falls at or just after ``closes``, so a run that ends anywhere in the window is
        # seen within a step.
        return offset if offset - self.step < self.closes else None

    def covers(self, offset: float) -> bool:
        """Whether ``offset`` falls inside the window, where the back-off's own checks are left out."""
        return self.opens <= offset < self.closes


@dataclass(frozen=True)
class Schedule:
    """
    When one waiter wants its run checked; validated, so a bad value fails the trigger, not the poller.

    :param waiting_since: when the wait began, as a UNIX timestamp.
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long after ``waiting_since`` to check every second, in seconds.
    :param expected_seconds: how long the child Dag's last successful run took (``None``: unknown);
        the checks are dense around that length after ``waiting_since``.
    """

    waiting_since: float
    poke_interval: float
    fast_poll_window: float
    expected_seconds: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poke_interval) and self.poke_interval > 0):
            raise ValueError(
                f"poke_interval must be a positive number of seconds, got {self.poke_interval!r}"
            )
        if not (math.isfinite(self.fast_poll_window) and self.fast_poll_window >= 0):
            raise ValueError(f"fast_poll_window must be zero or more seconds, got {self.fast_poll_window!r}")
        if not math.isfinite(self.waiting_since):
            raise ValueError(f"waiting_since must be a UNIX timestamp, got {self.waiting_since!r}")

    @functools.cached_property
    def window(self) -> Window | None:
        """The dense window around the predicted end, if there is one."""
        return Window.around(expected_seconds=self.expected_seconds, poke_interval=self.poke_interval)

    def next_offset_after(self, elapsed: float) -> float:
        """Return the first check later than ``elapsed``, both in seconds after ``waiting_since``."""
        ramp = _ramp(self.poke_interval, self.fast_poll_window)
        offset = _offset_after(elapsed, ramp, self.poke_interval)
        window = self.window
        if window is None:
            return offset
        # Inside the window its own checks replace the back-off's (a handful at most: the window is
        # shorter than a few poke_intervals).
        while window.covers(offset):
            offset = _offset_after(offset, ramp, self.poke_interval)
        dense = window.next_after(elapsed)
        return offset if dense is None else min(offset, dense)

    def next_check_after(self, now: float) -> float:
        """Return the first check of this schedule later than ``now``, as a UNIX timestamp."""
        offset = self.next_offset_after(now - self.waiting_since)
        # Adding the offset back to a large timestamp can round onto ``now`` itself; step on until it is
        # really later, or the poller would check the same instant forever.
        while self.waiting_since + offset <= now:
            offset = self.next_offset_after(offset)
        return self.waiting_since + offset
