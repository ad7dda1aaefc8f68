"""When a stopped parent should cancel its child run (``cancel_on_kill``), as pure functions."""

from __future__ import annotations

# The parent task instance's try is over and no automatic retry follows: a person marked it (or its Dag
# run) failed or success, or the Dag run timed out (skipped). Nothing will come back to the child run.
ENDED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})
# A person cleared the task while its try ran (the only time the supervisor's SIGTERM reaches on_kill):
# Airflow sets a running task instance ``restarting``. The next try is a re-run, which triggers a new
# child run, durable or not.
CLEARED_STATES = frozenset({"restarting"})
# The scheduler reset the task instance for a new try without a person (a restarted scheduler resets the
# tries of its dead predecessor; ``adopt_or_reset_orphaned_tasks``): no state, then scheduled and queued.
# That new try is a retry, which a durable task reconnects with, as after a crash.
RESET_STATES = frozenset({"none", "scheduled", "queued"})


def should_cancel(
    *, parent_state: str | None, parent_try: int | None, this_try: int, durable: bool, retries_left: bool
) -> tuple[bool, str]:
    """
    Decide, after a SIGTERM, from the parent task instance's live state, whether to cancel its child run.

    The signal itself does not say why it came. The state does: the server stopped this try (marked,
    cleared, Dag run timed out), or still runs it (the worker is shutting down, or lost the API server).
    A child run that a retry would reconnect to (``durable``) is kept; any other would be orphaned.

    :param parent_state: the task instance's state now (``None``: it has none, it was cleared).
    :param parent_try: its try number now; ``None`` if not known.
    :param this_try: the try that is being stopped.
    :param durable: whether a retry reconnects to the child run instead of triggering another.
    :param retries_left: whether an automatic retry follows this try.
    :return: whether to cancel, and why (for the log).
    """
    state = "none" if parent_state is None else parent_state
    if parent_try is not None and parent_try > this_try:
        if durable:
            return False, f"a later try ({parent_try}) has started, and a durable retry reconnects to the run"
        return True, f"a later try ({parent_try}) has started; it triggers its own Dag run"
    if state in ENDED_STATES:
        return True, f"the task instance was set {state}; no retry follows"
    if state in CLEARED_STATES:
        return True, f"the task instance is {state}: it was cleared, and its next try triggers a new Dag run"
    if state in ("running", "up_for_retry") or state in RESET_STATES:
        if durable and retries_left:
            return False, f"the task instance is {state}, and a durable retry reconnects to the run"
        if retries_left:
            return True, f"the task instance is {state}, and its retry triggers a new Dag run"
        return True, f"the task instance is {state} on its last try; nothing comes back to the run"
    return False, f"the task instance is {state}, a state this decision does not know"


def should_cancel_after_timeout(*, durable: bool, retries_left: bool) -> tuple[bool, str]:
    """
    Decide whether ``execution_timeout`` (which fails this try) should cancel the child run.

    :param durable: whether a retry reconnects to the child run instead of triggering another.
    :param retries_left: whether an automatic retry follows this try.
    :return: whether to cancel, and why (for the log).
    """
    if durable and retries_left:
        return False, "execution_timeout with retries left: a durable retry reconnects to the run"
    if retries_left:
        return True, "execution_timeout: the retry triggers a new Dag run"
    return True, "execution_timeout on the last try"


def should_cancel_deferred(
    *, parent_state: str | None, parent_try: int | None, this_try: int
) -> tuple[bool, str]:
    """
    Decide, when the triggerer kills a deferred parent's trigger, whether to cancel its child run.

    The triggerer does so when the task instance leaves ``deferred`` (a person marked or cleared it, its
    Dag run was marked or timed out), and also when another triggerer took the trigger over, which
    leaves it ``deferred``. A deferral timeout kills no trigger: the task resumes on a worker.

    :param parent_state: the task instance's state now (``None``: it has none, it was cleared).
    :param parent_try: its try number now; ``None`` if not known.
    :param this_try: the try that deferred.
    :return: whether to cancel, and why (for the log).
    """
    if parent_state == "deferred" and (parent_try is None or parent_try == this_try):
        return False, "the task instance is still deferred: its trigger moved to another triggerer"
    if parent_try is not None and parent_try > this_try:
        return True, f"a later try ({parent_try}) has started; the deferred try was stopped"
    return True, f"the task instance left the deferral: it is {parent_state or 'none'}"
