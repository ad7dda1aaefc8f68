"""
What a running child run's task states say: its progress, and whether the wait can end early.

The execution API answers ``GetTaskStates`` with ``{task_key: state}`` per run, where a mapped task's
instances are keyed ``<task_id>_<map_index>``. :class:`TaskProgress` reads one run's answer; the
synchronous wait and the deferrable trigger both judge early ends with :meth:`Watch.early_end`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

# Task instance states that no longer change on their own, and the ones that mean a failure.
TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
FAILED_TI_STATES = frozenset({"failed", "upstream_failed"})
# Task instance states of a task that has not started yet: not scheduled, or waiting for a slot.
NOT_STARTED_TI_STATES = frozenset({None, "none", "scheduled", "queued"})


def task_of(key: str, task_ids: Collection[str]) -> str | None:
    """
    Return which of ``task_ids`` the task-state key belongs to, or ``None``.

    :param key: a key of ``GetTaskStates``' answer: ``<task_id>`` or ``<task_id>_<map_index>``.
    :param task_ids: the task ids to match against.
    """
    if key in task_ids:
        return key
    base, _, index = key.rpartition("_")
    return base if index.isdigit() and base in task_ids else None


class Progress(Protocol):
    """One look at a run's task instances, read in full (:class:`TaskProgress`) or counted."""

    @property
    def line(self) -> str:
        """The progress line the parent logs when it changes."""
        ...

    @property
    def started(self) -> bool:
        """Whether a task instance of the run has started."""
        ...

    @property
    def all_finished(self) -> bool:
        """Whether no task instance is left to run."""
        ...

    @property
    def has_tasks(self) -> bool:
        """Whether the run has task instances at all (a run that is gone has none)."""
        ...

    def failures(self, among: Collection[str] | None = None) -> list[tuple[str, str]]:
        """``(task_key, state)`` of failed or upstream-failed instances, of ``among`` tasks if given."""
        ...

    def all_succeeded(self, task_ids: Sequence[str]) -> bool:
        """Whether every instance of each of ``task_ids`` succeeded."""
        ...


@dataclass(frozen=True)
class TaskProgress:
    """One look at a run's task instances: ``{task_key: state}`` (``None`` for not yet scheduled)."""

    states: Mapping[str, str | None]

    @property
    def line(self) -> str:
        """``3/7 tasks done, 1 running, 0 failed``: what the parent logs when it changes."""
        done = sum(state in TERMINAL_TI_STATES for state in self.states.values())
        running = sum(state == "running" for state in self.states.values())
        failed = sum(state in FAILED_TI_STATES for state in self.states.values())
        return f"{done}/{len(self.states)} tasks done, {running} running, {failed} failed"

    @property
    def has_tasks(self) -> bool:
        """Whether the run has task instances at all (a run that is gone has none)."""
        return bool(self.states)

    @property
    def started(self) -> bool:
        """Whether a task instance of the run has started: it is running, or past running."""
        return any(state not in NOT_STARTED_TI_STATES for state in self.states.values())

    @property
    def all_finished(self) -> bool:
        """Whether no task instance is left to run (also when the run has none, or is gone)."""
        return all(state in TERMINAL_TI_STATES for state in self.states.values())

    def failures(self, among: Collection[str] | None = None) -> list[tuple[str, str]]:
        """``(task_key, state)`` of failed or upstream-failed instances, of ``among`` tasks if given."""
        return sorted(
            (key, str(state))
            for key, state in self.states.items()
            if state in FAILED_TI_STATES and (among is None or task_of(key, among) is not None)
        )

    def all_succeeded(self, task_ids: Sequence[str]) -> bool:
        """Whether every instance of each of ``task_ids`` succeeded (and each has at least one)."""
        seen = {task_id: False for task_id in task_ids}
        for key, state in self.states.items():
            if (task_id := task_of(key, task_ids)) is None:
                continue
            if state != "success":
                return False
            seen[task_id] = True
        return all(seen.values())


@dataclass(frozen=True)
class EarlyEnd:
    """The wait may end before the run does: ``failure`` names the task that failed it, else success."""

    failure: tuple[str, str] | None = None

    def message(self, *, dag_id: str, run_id: str) -> str:
        """The error a failing early end raises, naming the child task and its state."""
        assert self.failure is not None
        key, state = self.failure
        return (
            f"Task {key!r} of Dag {dag_id!r} run {run_id!r} is {state!r}: failing without waiting for the "
            "rest of the run (fail_fast)"
        )


@dataclass(frozen=True)
class Watch:
    """
    The rules under which a wait may end before the run does.

    A failure rule wins over early success: with ``fail_fast``, any failed or upstream-failed instance
    (of ``critical_task_ids`` only, when given) ends the wait with a failure. Otherwise, once every
    instance of every ``result_task_ids`` task has succeeded, the result is ready.

    :param fail_fast: fail as soon as a (critical) task has failed.
    :param critical_task_ids: the tasks whose failure counts; ``None`` for any task.
    :param result_task_ids: the tasks whose success makes the result ready; ``None`` for none.
    """

    fail_fast: bool = False
    critical_task_ids: tuple[str, ...] | None = None
    result_task_ids: tuple[str, ...] | None = None

    def early_end(self, progress: Progress) -> EarlyEnd | None:
        """Judge whether the wait can end now, before the run does; ``None`` while it goes on."""
        if self.fail_fast and (failed := progress.failures(self.critical_task_ids)):
            return EarlyEnd(failure=failed[0])
        if self.result_task_ids and progress.all_succeeded(self.result_task_ids):
            return EarlyEnd()
        return None
