"""
When to check the child run: every second at first, backing off to ``poke_interval``, dense near its end.

Both waits ask :class:`Schedule` for the next check: the synchronous loop by the seconds it has waited,
a trigger (which may be rebuilt by another triggerer mid-wait) by the clock. Either way it is one
function of the time since the wait began, so the two paths cannot drift apart.

**Why the schedule knows the child's usual length.** Users feel two figures: how late the parent notices that
the child ended (a 20 s child should be noticed within about 3 s, a long one within a tenth of its length),
and how many requests a wait costs (an hour-long child should cost little more than the stock operator's 60 at
its 60 s interval). A schedule that only knows the elapsed time cannot give both: noticing the end of a 20 s
child within 3 s needs a check every few seconds around 20 s, and any such schedule also spends those checks
on the hour-long child: keeping every gap within a tenth of the time waited costs over 100 checks in the hour,
where 72 are allowed (the arithmetic is in ``tests/unit/test_poll_schedule.py``). The child's task states do
not help the common case either: a one-task child (a job, a pod, a query) shows nothing but ``running`` until
it ends. What does tell is the child Dag's last successful run: one request when the wait begins
(:mod:`standard_ext.wait.history`). Around the end that run predicts, from 90 % to 115 % of its length plus
:data:`~standard_ext.wait.window.WINDOW_SLACK_SECONDS`, the schedule checks every twentieth of that length (at
least every second); elsewhere it keeps the back-off. A child that runs as long as last time is noticed within
a twentieth of its length; one that does not is noticed as without history; an hour-long child costs nothing
more, because a twentieth of an hour is longer than ``poke_interval``.

**Why the schedule follows the run, not the clock of its trigger.** A child that waits for a worker slot
starts late, and ends late: a window counted from the trigger has closed before it ends, and the checks
have backed off to ``poke_interval`` (a 30-child fan-out on 4 slots was noticed a minute late). So the
wait tells the schedule when it first sees a task of the run started (:meth:`Schedule.seen`): from
then on the fast window, the back-off and the predicted window count from that moment. While the run
has not started and its length is known, the checks come at least every :func:`queued_step` (a quarter
of the length, at most :data:`QUEUED_STEP_MAX_SECONDS`), so the start is seen soon after it happens.
And a run that outlives the window its last success predicted (this run is longer than that one: the
child Dag's length depends on its ``conf``) is checked every :data:`OVERDUE_FRACTION` of its age, so it
is noticed within a tenth of its length instead of a back-off step; a child with no history keeps the
back-off, whose cost a long child can afford.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from standard_ext.wait.beat import offset_after
from standard_ext.wait.window import FAST_STEP_SECONDS, WINDOW_CLOSES, WINDOW_SLACK_SECONDS, Window

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

#: While the run has not started, check at least every quarter of its predicted length, and at least every
#: this many seconds: the start anchors everything after it, and seeing it late shifts it all. A child long
#: enough that a quarter of it reaches poke_interval keeps the back-off: a start seen a minute late costs
#: it little.
QUEUED_STEP_FRACTION = 1 / 4
#: The longest step between two checks while the run has not started (see ``QUEUED_STEP_FRACTION``).
QUEUED_STEP_MAX_SECONDS = 5.0
#: Past the predicted window, the run is longer than its last success said: check every tenth of the time
#: it has run (between FAST_STEP_SECONDS and poke_interval), so its end is seen within a tenth of its length.
#: A tenth, not a fifth: a deferred wait adds the resume (1 to 2 s here) to what the checks leave, and a
#: 20 s child must be noticed within 3 s on both paths.
OVERDUE_FRACTION = 1 / 10


def queued_step(*, expected_seconds: float | None, poke_interval: float) -> float | None:
    """
    The longest gap between checks while the run has not started, or ``None`` when the back-off's serves.

    :param expected_seconds: how long the child's last successful run took; ``None`` if unknown.
    :param poke_interval: the longest wait between two checks, in seconds.
    """
    if expected_seconds is None or not (math.isfinite(expected_seconds) and expected_seconds > 0):
        return None
    quarter = expected_seconds * QUEUED_STEP_FRACTION
    if quarter >= poke_interval:
        return None
    return max(FAST_STEP_SECONDS, min(quarter, QUEUED_STEP_MAX_SECONDS))


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

    The checks are those :func:`standard_ext.wait.schedule.poll_delays` spaces out: one at ``waiting_since``,
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


@dataclass(frozen=True)
class Schedule:
    """
    When one waiter wants its run checked; validated, so a bad value fails the trigger, not the poller.

    :param waiting_since: when the wait began, as a UNIX timestamp.
    :param poke_interval: the longest wait between two checks, in seconds.
    :param fast_poll_window: how long after ``waiting_since`` to check every second, in seconds.
    :param expected_seconds: how long the child Dag's last successful run took (``None``: unknown);
        the checks are dense around that length after the run started (after ``waiting_since`` until
        the start is seen).
    :param started_after: when a task of the run was first seen started, in seconds after
        ``waiting_since``; ``None`` until then. The fast window, the back-off and the predicted window
        count from it.
    """

    waiting_since: float
    poke_interval: float
    fast_poll_window: float
    expected_seconds: float | None = None
    started_after: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poke_interval) and self.poke_interval > 0):
            raise ValueError(
                f"poke_interval must be a positive number of seconds, got {self.poke_interval!r}"
            )
        if not (math.isfinite(self.fast_poll_window) and self.fast_poll_window >= 0):
            raise ValueError(f"fast_poll_window must be zero or more seconds, got {self.fast_poll_window!r}")
        if not math.isfinite(self.waiting_since):
            raise ValueError(f"waiting_since must be a UNIX timestamp, got {self.waiting_since!r}")
        if self.started_after is not None and not (
            math.isfinite(self.started_after) and self.started_after >= 0
        ):
            raise ValueError(f"started_after must be zero or more seconds, got {self.started_after!r}")

    def seen(self, *, started: bool, after: float, waiting_seen: bool) -> Schedule:
        """
        Return this schedule as a check of the run leaves it: anchored at its start once that is seen.

        Only a start seen after the run was seen waiting tells when it started: a run already started
        at the first check (a durable retry reconnecting, a trigger rebuilt by another triggerer)
        started at an unknown moment, and keeps the schedule counted from ``waiting_since``. Only the
        first sighting counts.

        :param started: whether the check found a task of the run started.
        :param after: seconds after ``waiting_since`` of the check.
        :param waiting_seen: whether an earlier check found the run not started.
        """
        if not started or self.started_after is not None:
            return self
        return replace(self, started_after=max(0.0, after) if waiting_seen else 0.0)

    @functools.cached_property
    def window(self) -> Window | None:
        """The dense window around the predicted end, if there is one."""
        return Window.around(expected_seconds=self.expected_seconds, poke_interval=self.poke_interval)

    def next_offset_after(self, elapsed: float) -> float:
        """Return the first check later than ``elapsed``, both in seconds after ``waiting_since``."""
        anchor = self.started_after or 0.0
        if self.started_after is None or elapsed < anchor:
            offset = self._from_anchor(elapsed, anchor=0.0)
            step = queued_step(expected_seconds=self.expected_seconds, poke_interval=self.poke_interval)
            # Not seen started yet: see the start soon, everything after it counts from it.
            return offset if step is None else min(offset, elapsed + step)
        return anchor + self._from_anchor(elapsed - anchor, anchor=anchor)

    def _from_anchor(self, since: float, *, anchor: float) -> float:
        """The first check later than ``since`` seconds after the anchor, in seconds after it."""
        ramp = _ramp(self.poke_interval, self.fast_poll_window)
        base = self.waiting_since + anchor
        offset = offset_after(since, ramp, self.poke_interval, base=base)
        window = self.window
        if window is None:
            return self._overdue(since, offset)
        # Inside the window its own checks replace the back-off's (a handful at most: the window is
        # shorter than a few poke_intervals).
        while window.covers(offset):
            offset = offset_after(offset, ramp, self.poke_interval, base=base)
        dense = window.next_after(since)
        if dense is None:
            return self._overdue(since, offset)
        return min(offset, dense)

    def _overdue(self, since: float, offset: float) -> float:
        """Past the predicted end (and its window), check every tenth of the run's age at least."""
        if (
            self.expected_seconds is None
            or since < WINDOW_CLOSES * self.expected_seconds + WINDOW_SLACK_SECONDS
        ):
            return offset
        step = min(max(FAST_STEP_SECONDS, since * OVERDUE_FRACTION), self.poke_interval)
        return min(offset, since + step)

    def next_check_after(self, now: float) -> float:
        """Return the first check of this schedule later than ``now``, as a UNIX timestamp."""
        offset = self.next_offset_after(now - self.waiting_since)
        # Adding the offset back to a large timestamp can round onto ``now`` itself; step on until it is
        # really later, or the poller would check the same instant forever.
        while self.waiting_since + offset <= now:
            offset = self.next_offset_after(offset)
        return self.waiting_since + offset
