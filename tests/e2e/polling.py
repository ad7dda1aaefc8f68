"""Poll a condition until it holds or a deadline passes; the one way the end-to-end tests wait."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A waited-for condition did not hold before its deadline (an AssertionError, so pytest shows it)."""


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """
    Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Raise ``WaitTimeout`` naming ``what`` and the last value seen once ``timeout`` seconds have passed,
    so a stuck wait says what it was waiting for instead of hanging the test run.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)
