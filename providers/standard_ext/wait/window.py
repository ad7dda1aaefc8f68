"""
The dense window around the end that a child Dag's last success predicts.

From 90 % to 115 % of that length, checked every twentieth of it; :mod:`standard_ext.wait.schedule`
says why, and places the window in the whole schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The shortest wait between two checks; a child that ends within the fast window is seen this late at most.
FAST_STEP_SECONDS = 1.0
#: While a run's task instances are all finished but the run is not ended yet, it is checked again every
#: FAST_STEP_SECONDS, this many times, then by its schedule again: the scheduler ends such a run within a
#: loop or two, unless it does not examine the run at all (its Dag was paused), which may last for days.
FINISHING_CHECKS = 10
#: Near the predicted end, check every this fraction of the predicted length (but never more often than
#: FAST_STEP_SECONDS): the end is then seen within 5 % of the child's length.
WINDOW_STEP_FRACTION = 1 / 20
# The window opens at this fraction of the predicted length and closes at the other plus the slack: a
# run takes a little longer or shorter each time, and starts a moment after it is triggered.
WINDOW_OPENS, WINDOW_CLOSES = 0.9, 1.15
#: The seconds added to the window's close, for the moment a run takes to start once triggered.
WINDOW_SLACK_SECONDS = 5.0


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
