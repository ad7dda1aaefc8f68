"""The durable decision: what a task does with the child run an earlier try saved, as pure functions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection

# Dag run states in which the run may still change, and those it never leaves.
ACTIVE_STATES = frozenset({"queued", "running"})
FINAL_STATES = frozenset({"success", "failed"})


class Decision(enum.StrEnum):
    """What to do about the child run, given what an earlier try saved."""

    #: Nothing usable was saved (first try, stale record, or a re-run after a clear): trigger a new run.
    TRIGGER = "trigger"
    #: The saved run was never created (the worker died between saving and triggering): trigger that id.
    TRIGGER_SAVED = "trigger_saved"
    #: The saved run is still queued or running: wait on it.
    RECONNECT = "reconnect"
    #: The saved run already ended in an allowed state (or, without waiting, exists): finish.
    ALREADY_FINISHED = "already_finished"
    #: The saved run ended in a state that is not allowed: trigger a fresh run.
    RESUBMIT = "resubmit"
    #: The saved run failed, and ``auto_clear_failed_tasks`` asks to resume it: clear its failed tasks
    #: and wait on it again, under the same run id.
    CLEAR_FAILED = "clear_failed"


# How the try that last held a record ended, when it ended in a way no automatic retry follows: the
# task succeeded, or the server stopped it (a person marked it failed or success, or cleared it).
ENDED_SUCCESS = "success"
ENDED_STOPPED = "stopped"


@dataclass(frozen=True)
class SavedRun:
    """
    The record written to ``task_state_store`` before the trigger is sent.

    ``max_tries``, ``clear_number`` (the parent run's, which every clear in the run raises) and
    ``ended`` tell an automatic retry from a person's clear: see :func:`is_rerun`. ``clears`` counts the
    clears of the run's failed tasks (``auto_clear_failed_tasks``) this task decided on, each written
    before it is sent.
    """

    dag_id: str
    run_id: str
    max_tries: int
    clear_number: int | None = None
    ended: str | None = None
    clears: int = 0
    #: The try that saved the run id (and so triggered it, unless it died first): the "Child runs" tab
    #: shows it. ``None`` in a record saved before it was kept.
    try_number: int | None = None
    #: Not read from the store: a failed run found holding a fixed run id, to resume (not written).
    held: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the record as stored."""
        record: dict[str, Any] = {"dag_id": self.dag_id, "run_id": self.run_id, "max_tries": self.max_tries}
        if self.clear_number is not None:
            record["clear_number"] = self.clear_number
        if self.ended is not None:
            record["ended"] = self.ended
        if self.clears:
            record["clears"] = self.clears
        if self.try_number is not None:
            record["try_number"] = self.try_number
        return record


def parse_saved_run(value: object, *, dag_id: str) -> tuple[SavedRun | None, str | None]:
    """
    Read a stored record back.

    :param value: what ``task_state_store`` holds under the operator's key (``None`` if nothing).
    :param dag_id: the Dag this task triggers now; a record for another one is stale.
    :return: ``(record, None)`` when it is usable, else ``(None, why)``; ``why`` is ``None`` when there
        was simply nothing stored.
    """
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, f"the stored value is a {type(value).__name__}, not a record"
    run_id, stored_dag_id, max_tries = value.get("run_id"), value.get("dag_id"), value.get("max_tries")
    if not isinstance(run_id, str) or not run_id or not isinstance(stored_dag_id, str):
        return None, "the stored record has no run_id or dag_id"
    if not isinstance(max_tries, int) or isinstance(max_tries, bool):
        return None, "the stored record has no max_tries"
    if stored_dag_id != dag_id:
        return None, f"the stored record is for Dag {stored_dag_id!r}, not {dag_id!r}"
    # Both absent from a record saved before they were kept: is_rerun then goes by max_tries alone.
    clear_number = value.get("clear_number")
    if not isinstance(clear_number, int) or isinstance(clear_number, bool):
        clear_number = None
    ended = value.get("ended")
    ended = ended if ended in (ENDED_SUCCESS, ENDED_STOPPED) else None
    clears = value.get("clears", 0)
    clears = clears if isinstance(clears, int) and not isinstance(clears, bool) and clears > 0 else 0
    try_number = value.get("try_number")
    return SavedRun(
        dag_id=stored_dag_id,
        run_id=run_id,
        max_tries=max_tries,
        clear_number=clear_number,
        ended=ended,
        clears=clears,
        try_number=try_number if type(try_number) is int and try_number > 0 else None,
    ), None


class RerunMarks(Protocol):
    """What :func:`is_rerun` reads of a record: any durable record that keeps these marks (one run or many)."""

    @property
    def max_tries(self) -> int:
        """The ``max_tries`` of the try that wrote the record."""

    @property
    def clear_number(self) -> int | None:
        """The parent run's ``clear_number`` then, if known."""

    @property
    def ended(self) -> str | None:
        """How the try that last held the record ended, if in a way no automatic retry follows."""


def is_rerun(saved: RerunMarks, *, max_tries: int, clear_number: int | None) -> bool:
    """
    Whether this try comes from a person clearing the task, not from an automatic retry.

    Airflow's clear (``clear_task_instances``) sets a finished task's ``max_tries`` to ``try_number +
    retries`` and, when it also resets the run (the UI's and the REST API's default), raises the run's
    ``clear_number``; an automatic retry changes neither. Neither says it alone: ``try_number + retries``
    can equal the old ``max_tries`` (``retries`` lowered before the clear); a task cleared while it runs
    keeps its ``max_tries`` until the executor reports its end (raised only on a reported success); and
    ``clear_number`` also moves when another task of the run is cleared. So, in order:

    - ``max_tries`` changed: a clear (nothing else changes it);
    - the try that last held the record was stopped by the server (``ended="stopped"``, see
      :class:`standard_ext.wait.stopped.StopNote`): only a person's clear brings another try after that;
    - ``clear_number`` unchanged (or unknown): no clear in the run since, an automatic retry;
    - ``clear_number`` changed: this task's clear if its last try succeeded (``ended="success"``), since no
      automatic retry follows a success; otherwise another task's clear while this one crashed or
      failed, and the retry carries on.

    :param saved: the record an earlier try saved.
    :param max_tries: this try's ``max_tries``.
    :param clear_number: the parent run's ``clear_number`` now; ``None`` where it is not known.
    """
    if saved.max_tries != max_tries or saved.ended == ENDED_STOPPED:
        return True
    if saved.clear_number is None or clear_number is None or clear_number == saved.clear_number:
        return False
    return saved.ended == ENDED_SUCCESS


def decide(
    *,
    saved: SavedRun | None,
    rerun: bool,
    child_state: str | None,
    wait_for_completion: bool,
    allowed_states: Collection[str],
    auto_clear: bool = False,
) -> Decision:
    """
    Decide what to do about the child run.

    :param saved: the record an earlier try saved, if usable.
    :param rerun: whether this try is a re-run after a clear (see :func:`is_rerun`).
    :param child_state: the saved run's state; ``None`` if the server has no such run. On a re-run it
        counts only with ``auto_clear``.
    :param wait_for_completion: whether the task waits for the child.
    :param allowed_states: the states in which the child counts as done.
    :param auto_clear: ``auto_clear_failed_tasks``: a failed run resumes where it failed, on a retry and
        on a person's clear alike (a run that ended otherwise is still replaced on a person's clear).
    """
    if saved is None:
        return Decision.TRIGGER
    resumable = (
        auto_clear and wait_for_completion and child_state == "failed" and "failed" not in allowed_states
    )
    if rerun:
        return Decision.CLEAR_FAILED if resumable else Decision.TRIGGER
    if child_state is None:
        return Decision.TRIGGER_SAVED
    if not wait_for_completion:
        # The task's job was to trigger, and the run exists: that job is done, whatever the run did since.
        return Decision.ALREADY_FINISHED
    if child_state in allowed_states:
        return Decision.ALREADY_FINISHED
    if child_state in ACTIVE_STATES:
        return Decision.RECONNECT
    if resumable:
        return Decision.CLEAR_FAILED
    return Decision.RESUBMIT
