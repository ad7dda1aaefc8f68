"""A trigger's own deadline: ``execution_timeout`` fired as an event, so the resume can cancel the child."""

from __future__ import annotations

import time

#: The key of the event a trigger fires at its deadline (value ``True``).
TIMED_OUT = "timed_out"


def seconds_left(timeout_at: float | None) -> float | None:
    """
    Return how long the trigger may still wait, ``0.0`` once past its deadline; ``None`` without one.

    **Why the trigger keeps a deadline:** when Airflow times a deferral out (the scheduler's
    ``check_trigger_timeouts``), the triggerer drops the trigger without calling its ``on_kill`` and the
    task resumes only to raise ``TaskDeferralTimeout``, also without ``on_kill``: with ``cancel_on_kill``
    the child would go on for nobody. A trigger that fires its own event at the deadline hands the resume
    what it waited on, and the resume cancels it as the synchronous ``execution_timeout`` does. The
    deadline is a timestamp, serialized with the trigger, so a trigger another triggerer takes over, or
    one rebuilt after a restart, keeps it.

    :param timeout_at: the deadline as a UNIX timestamp (``time.time()``), or ``None``.
    """
    if timeout_at is None:
        return None
    return max(0.0, timeout_at - time.time())
