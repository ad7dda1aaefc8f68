"""When to check the child run's state: every second at first, then backing off to ``poke_interval``."""

from __future__ import annotations

import time
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
