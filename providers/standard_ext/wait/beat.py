"""
The shared wall-clock beat that every backed-off wait checks on, whatever moment it began.

:class:`~standard_ext.wait.schedule.Schedule` puts its checks past the ramp onto this beat: waits with the
same ``poke_interval`` are then due together, and the shared poll of the triggerer asks about all of them in
a tick or two a ``poke_interval`` instead of one tick per waiter.
"""

from __future__ import annotations

import bisect
import math

#: The beat ticks every this fraction of ``poke_interval``, and a wait checks on every second tick: its
#: checks stay ``poke_interval`` apart, and no check moves more than half a ``poke_interval`` later than
#: the back-off had it. A whole ``poke_interval`` would let one gap grow to one and a half (a 40 s child
#: without history noticed 87 s late instead of 27 s); two phases cost the shared poll at most two ticks
#: a ``poke_interval`` per chunk of waiters, whatever their number.
BEAT_FRACTION = 1 / 2


def beat_at_or_after(moment: float, *, poke_interval: float) -> float:
    """
    Return the first beat at or after ``moment``: the wall-clock multiples of ``poke_interval * BEAT_FRACTION``.

    Every wait with the same ``poke_interval`` backs off onto the same beat, whenever it began, so the
    shared poller asks about all of them in a tick or two a ``poke_interval`` instead of one tick per
    waiter.

    :param moment: a UNIX timestamp.
    :param poke_interval: the longest wait between two checks, in seconds.
    """
    period = poke_interval * BEAT_FRACTION
    return math.ceil(moment / period) * period


def offset_after(elapsed: float, ramp: tuple[float, ...], poke_interval: float, *, base: float) -> float:
    """
    The first check offset strictly greater than ``elapsed``, both counted from ``base`` (a UNIX timestamp).

    The ramp's checks as they are, but its last (the first a back-off step of ``poke_interval`` would
    follow) moves to the next beat, and every later check is a ``poke_interval`` after it, on the beat
    too. Checks only ever move later, so a wait never asks more often than without the beat; the one gap
    that grows, grows by less than ``poke_interval * BEAT_FRACTION``.
    """
    if len(ramp) > 1:
        index = bisect.bisect_right(ramp, elapsed)
        if index < len(ramp) - 1:
            return ramp[index]
        first = beat_at_or_after(base + ramp[-1], poke_interval=poke_interval) - base
    else:
        # No ramp past the first check (poke_interval of a second or less): the beat after one step.
        first = beat_at_or_after(base + poke_interval, poke_interval=poke_interval) - base
    if elapsed < first:
        return first
    # On the beat the checks are poke_interval apart: computed, not walked, so a wait of days costs the
    # same as a wait of seconds.
    steps = math.floor((elapsed - first) / poke_interval) + 1
    offset = first + steps * poke_interval
    while offset <= elapsed:  # the division rounded a whole step down
        steps += 1
        offset = first + steps * poke_interval
    return offset
