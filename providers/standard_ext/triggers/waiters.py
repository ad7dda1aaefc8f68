"""
The waiters of the shared poller and what a check reports to them: their outcomes, task states and urgency.

:class:`Waiters` keeps the poller's book of who waits on which run (:class:`Waiter`) and answers the
findings of a check (:func:`~standard_ext.triggers.poll_check.check`): a run ended, its task states, a
question left unanswered, a run whose tasks are all finished. :class:`~standard_ext.triggers.poller.Poller`
adds the ticks that ask.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from standard_ext.wait.window import FINISHING_CHECKS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from standard_ext.triggers.poll_check import RunOutcome
    from standard_ext.wait.progress import TaskProgress
    from standard_ext.wait.schedule import Schedule

log = structlog.get_logger(__name__)


class PollError(RuntimeError):
    """Polling failed in a way a retry at the next check cannot mend; the waiting trigger fails with it."""


@dataclass(eq=False)
class Waiter:
    """
    One trigger's registration: the run it waits on, its schedule, and the future the poller resolves.

    A waiter that ``wants_tasks`` also receives the run's task states at each check while the run is
    active, on its ``progress`` queue.
    """

    run_id: str
    schedule: Schedule
    due_at: float
    outcome: asyncio.Future[RunOutcome]
    wants_tasks: bool = False
    progress: asyncio.Queue[TaskProgress] = field(default_factory=asyncio.Queue)


class Waiters:
    """The waiters on the runs of one child Dag, by run id, and what a check's findings do to them."""

    def __init__(self, *, dag_id: str) -> None:
        """
        Start an empty book.

        :param dag_id: the child Dag whose runs are waited on.
        """
        self.dag_id = dag_id
        self._entries: dict[str, list[Waiter]] = {}
        # Per run: how many checks in a row found its task instances all finished and the run not ended.
        self._finishing: dict[str, int] = {}
        # The earliest the next tick may be: MIN_TICK_SECONDS after the last one that asked something.
        self._next_tick_not_before = -math.inf

    # -- what a check reports (poll_check.Findings) ----------------------------------------------------

    def watches(self, run_id: str) -> bool:
        """
        Whether a waiter on ``run_id`` wants its task states.

        :param run_id: a child run.
        """
        return any(waiter.wants_tasks for waiter in self._entries.get(run_id, ()))

    def resolve(self, run_id: str, outcome: RunOutcome) -> None:
        """
        End every wait on ``run_id`` with ``outcome``.

        :param run_id: a child run.
        :param outcome: what its waits end with.
        """
        self._finishing.pop(run_id, None)
        for waiter in self._entries.pop(run_id, []):
            if not waiter.outcome.done():
                waiter.outcome.set_result(outcome)

    def hand_over(self, run_id: str, progress: TaskProgress) -> None:
        """
        Put a reading of ``run_id``'s task states on the queues of its waiters that want them.

        :param run_id: a child run.
        :param progress: its task states.
        """
        if not progress.all_finished:
            # Its tasks are not all finished (any more: a person cleared some): count afresh next time.
            self._finishing.pop(run_id, None)
        for waiter in self._entries.get(run_id, ()):
            if waiter.wants_tasks:
                waiter.progress.put_nowait(progress)

    def ask_again_soon(self, run_ids: Sequence[str]) -> None:
        """
        Make ``run_ids`` due at the next tick: a question about them went unanswered.

        :param run_ids: child runs.
        """
        # Not at their schedule's next check, maybe a minute away: an API blip would delay seeing a run
        # end by as much. The spacing still holds: at most one tick a second, whatever goes unanswered.
        for run_id in run_ids:
            for waiter in self._entries.get(run_id, ()):
                waiter.due_at = min(waiter.due_at, self._next_tick_not_before)

    def finishing(self, run_id: str) -> None:
        """
        Make ``run_id`` due at the next tick, for up to ``FINISHING_CHECKS`` checks in a row.

        :param run_id: a child run whose task instances are all finished but which is not ended yet.
        """
        seen = self._finishing.get(run_id, 0) + 1
        self._finishing[run_id] = seen
        if seen <= FINISHING_CHECKS:
            self.ask_again_soon([run_id])
        elif seen == FINISHING_CHECKS + 1:
            # Not one a scheduler is about to end (its Dag paused, say): back to the schedule's checks.
            log.info(
                "The child Dag run's tasks are all finished but the run is not ended; checking it on its "
                "schedule again",
                dag_id=self.dag_id,
                run_id=run_id,
            )

    def _fail(self, run_ids: list[str], message: str, *, cause: BaseException | None) -> None:
        for run_id in run_ids:
            for waiter in self._entries.pop(run_id, []):
                if not waiter.outcome.done():
                    # One exception per waiter: each is raised in its own trigger and grows its own traceback.
                    error = PollError(message)
                    error.__cause__ = cause
                    waiter.outcome.set_exception(error)
