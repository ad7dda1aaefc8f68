"""When a stopped parent should cancel its child runs (``cancel_on_kill``), as one table of pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# The parent task instance's try is over and no automatic retry follows: a person marked it (or its Dag
# run) failed or success, or the Dag run timed out (skipped). Nothing will come back to the child run.
ENDED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})


class Killed(Enum):
    """Where ``on_kill`` runs: it decides what the parent's live state can mean."""

    #: The task's process got SIGTERM (its supervisor's heartbeat was refused, or a signal from outside).
    TASK = "task"
    #: The triggerer killed the deferred task's trigger (it left the triggerer's list of triggers).
    TRIGGER = "trigger"


@dataclass(frozen=True)
class Parent:
    """The parent task instance as the public REST API shows it when ``on_kill`` asks."""

    state: str | None
    try_number: int | None = None
    max_tries: int | None = None


@dataclass(frozen=True)
class Try:
    """The try being stopped, as it knew itself when it started."""

    try_number: int
    max_tries: int | None
    durable: bool
    retries_left: bool
    killed: Killed = Killed.TASK


def should_cancel(*, parent: Parent, stopped: Try) -> tuple[bool, str]:
    """
    Decide whether to cancel the child runs: only when no try of this task will wait on them again.

    The signal does not say why it came; the parent's live state and try do. Every row of the table in
    ``docs/stopping.md`` is one branch here, in the same order, and one test.

    :param parent: the parent task instance now.
    :param stopped: the try that is being stopped.
    :return: whether to cancel, and why (for the log).
    """
    state = parent.state or "none"
    if parent.try_number is not None and parent.try_number > stopped.try_number:
        return _later_try(parent=parent, stopped=stopped)
    if state in ENDED_STATES:
        return True, f"the task instance was set {state}; no try follows"
    if state == "restarting":
        return (
            True,
            "the task instance is restarting: it was cleared while it ran, and its next try triggers anew",
        )
    if state == "deferred":
        # The triggerer kills a trigger that moved to another triggerer (a handover): the task is still
        # deferred, waiting on the run. In the task's own process it means the try just deferred.
        return False, "the task instance is still deferred: another triggerer waits on the run"
    if stopped.killed is Killed.TRIGGER:
        return _trigger_same_try(state=state, stopped=stopped)
    return _task_same_try(state=state, stopped=stopped)


def _later_try(*, parent: Parent, stopped: Try) -> tuple[bool, str]:
    later = f"a later try ({parent.try_number}) has started"
    if (
        parent.max_tries is not None
        and stopped.max_tries is not None
        and parent.max_tries > stopped.max_tries
    ):
        # Only a clear raises max_tries: the later try is a re-run, which triggers anew.
        return True, f"{later} after a clear; it triggers its own Dag run"
    if not stopped.durable:
        return True, f"{later}; without durable it triggers its own Dag run"
    # An automatic retry, or a scheduler's reset: either reconnects to the saved run.
    return False, f"{later}, and a durable retry reconnects to the run"


def _trigger_same_try(*, state: str, stopped: Try) -> tuple[bool, str]:
    if state == "none":
        # A deferred task is never reset by a scheduler (adopt_or_reset_orphaned_tasks leaves DEFERRED
        # alone): no state in the same try means a person cleared it.
        return True, "the deferred task instance was cleared; its next try triggers anew"
    if state in ("scheduled", "queued", "running"):
        # The trigger fired (on another triggerer after a handover, or its deadline) and the task
        # resumes in this try: the resume carries on with the run.
        return False, f"the task instance is {state} in the same try: it resumes and carries on with the run"
    return _retry_rule(state=state, stopped=stopped)


def _task_same_try(*, state: str, stopped: Try) -> tuple[bool, str]:
    if state in ("none", "scheduled", "queued"):
        # A person's clear of a running task gives ``restarting``; no state means a scheduler reset this
        # try (adopt_or_reset_orphaned_tasks), which always gives the task another try.
        if stopped.durable:
            return False, "the task instance was reset by a scheduler; its next try reconnects to the run"
        return True, "the task instance was reset by a scheduler; without durable its next try triggers anew"
    return _retry_rule(state=state, stopped=stopped)


def _retry_rule(*, state: str, stopped: Try) -> tuple[bool, str]:
    if state not in ("running", "up_for_retry"):
        return False, f"the task instance is {state}, a state this decision does not know"
    # The server still counts this try (a SIGTERM from elsewhere: the worker shutting down, heartbeats
    # failing), or it ended in a failure that an automatic retry follows.
    if stopped.durable and stopped.retries_left:
        return False, f"the task instance is {state}, and a durable retry reconnects to the run"
    if stopped.retries_left:
        return True, f"the task instance is {state}, and its retry triggers a new Dag run"
    return True, f"the task instance is {state} on its last try; nothing comes back to the run"


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
