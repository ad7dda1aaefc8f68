"""One tick's questions about a chunk of a child Dag's runs: task states or a count, then the states of those that ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from standard_ext.durable.decision import FINAL_STATES
from standard_ext.triggers.poll_requests import (
    UNANSWERED,
    count_active,
    read_state,
    read_task_states,
    status_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from standard_ext.wait.progress import EarlyEnd, TaskProgress

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """
    What a wait ended with: the run's final state, or ``state=None`` and why there is none.

    ``early`` is set when the waiter's :class:`~standard_ext.wait.progress.Watch` ended the wait while the run
    was still active (its ``state`` is then the active state last seen).
    """

    state: str | None
    error: str | None = None
    early: EarlyEnd | None = None


class Findings(Protocol):
    """Where a check puts what it learns, as it learns it: the poller, which hands it to the waiters."""

    def watches(self, run_id: str) -> bool:
        """Whether a waiter on ``run_id`` wants its task states."""

    def resolve(self, run_id: str, outcome: RunOutcome) -> None:
        """End the waits on ``run_id`` with ``outcome``."""

    def hand_over(self, run_id: str, progress: TaskProgress) -> None:
        """Give the waiters on ``run_id`` that watch it this reading of its task states."""

    def ask_again_soon(self, run_ids: Sequence[str]) -> None:
        """A question about ``run_ids`` went unanswered: make them due at the next tick."""

    def finishing(self, run_id: str) -> None:
        """The run's task instances are all finished but the run is not ended yet: look again soon."""


async def check(*, dag_id: str, chunk: list[str], findings: Findings) -> None:
    """
    Ask about one chunk of runs, and report each finding to ``findings`` as soon as it is made.

    One question for each kind of run in the chunk. The runs a waiter watches get one task-state
    question: their task states are the progress the waiters log and judge an early end by, and say
    which runs may have ended (every task instance finished, or none left), whose state alone is then
    read. The other runs get one count of those still active; when it falls short, a bisection singles
    out those that are not, and their state is read. So a tick costs one request while nothing ends,
    whether its runs are watched or not. An unanswered question (an API error, a timeout) sends its
    runs back to ``findings`` to be asked about at the next tick, and the check goes on with the rest:
    what it learned before or learns after stands.

    :param dag_id: the child Dag.
    :param chunk: its runs to ask about.
    :param findings: where the outcomes, the task states and the runs to ask again about go.
    :raises Exception: anything but an unanswered question, a fault on this side; the findings reported
        before it stand.
    """
    watched = [run_id for run_id in chunk if findings.watches(run_id)]
    if counted := [run_id for run_id in chunk if run_id not in set(watched)]:
        await _by_count(dag_id, counted, findings)
    if watched:
        await _by_task_states(dag_id, watched, findings)


async def _by_count(dag_id: str, run_ids: list[str], findings: Findings) -> None:
    """Count the runs still active; single out and settle those that are not."""
    try:
        active = await count_active(dag_id=dag_id, run_ids=run_ids)
    except UNANSWERED as e:
        _unanswered(dag_id, run_ids, e, question="count", findings=findings)
        return
    unanswered: list[str] = []
    for run_id in await _ended(dag_id, run_ids, len(run_ids) - active, findings, unanswered):
        await _settle(dag_id, run_id, findings, unanswered)


async def _by_task_states(dag_id: str, run_ids: list[str], findings: Findings) -> None:
    """Read the runs' task states; settle those whose task instances are all finished, hand over the rest."""
    try:
        # One question for all of them, as a count would be: one request per tick, not per run.
        readings = await read_task_states(dag_id=dag_id, run_ids=run_ids)
    except UNANSWERED as e:
        _unanswered(dag_id, run_ids, e, question="task states", findings=findings)
        return
    unanswered: list[str] = []
    for run_id in run_ids:
        progress = readings[run_id]
        # Only a run whose task instances are all finished can have ended: Airflow ends a run once they
        # are, and the routes that end one by hand finish them too. None at all means the run is gone
        # (or has no tasks), which only its state can say.
        if progress.all_finished:
            if await _settle(dag_id, run_id, findings, unanswered):
                continue
            if run_id not in unanswered:
                # Its tasks are done and the scheduler is about to end it: look again at the next tick,
                # not at the schedule's next check, maybe a minute away (a few times: wait/window.py).
                findings.finishing(run_id)
        findings.hand_over(run_id, progress)


async def _ended(
    dag_id: str, run_ids: list[str], ended: int, findings: Findings, unanswered: list[str]
) -> list[str]:
    """Return the ``ended`` runs among ``run_ids`` that are no longer active, by bisection."""
    if ended <= 0:
        return []
    if ended >= len(run_ids):
        return list(run_ids)
    half = len(run_ids) // 2
    left, right = run_ids[:half], run_ids[half:]
    try:
        left_ended = len(left) - await count_active(dag_id=dag_id, run_ids=left)
    except UNANSWERED as e:
        # Which of these ended is not known now. They are asked about again at the next tick; what the
        # rest of the bisection learns stands.
        _unanswered(dag_id, run_ids, e, question="count", findings=findings)
        unanswered.extend(run_ids)
        return []
    # The other half is deduced, one request saved per level. A run that ends between the two counts
    # makes this an underestimate, and is found at the next check; a run set back to queued (a clear)
    # an overestimate, which _settle sees from the state it reads.
    right_ended = ended - left_ended
    return [
        *await _ended(dag_id, left, left_ended, findings, unanswered),
        *await _ended(dag_id, right, right_ended, findings, unanswered),
    ]


async def _settle(dag_id: str, run_id: str, findings: Findings, unanswered: list[str]) -> bool:
    """Read the run's state and resolve its waits if it ended (or is gone); return whether it did."""
    try:
        state = await read_state(dag_id=dag_id, run_id=run_id)
    except UNANSWERED as e:
        if status_of(e) == 404:
            # The waiter's own trigger logs this, in its own task's log: it concerns that wait alone.
            error = f"Dag run {run_id!r} of Dag {dag_id!r} was not found"
            findings.resolve(run_id, RunOutcome(state=None, error=error))
            return True
        _unanswered(dag_id, [run_id], e, question="state", findings=findings)
        unanswered.append(run_id)
        return False
    if state in FINAL_STATES:
        findings.resolve(run_id, RunOutcome(state=state))
        return True
    log.debug("The child Dag run is active again", dag_id=dag_id, run_id=run_id, state=state)
    return False


def _unanswered(
    dag_id: str, run_ids: Sequence[str], error: BaseException, *, question: str, findings: Findings
) -> None:
    log.warning(
        "Could not read the child Dag's runs; asking again at the next tick",
        dag_id=dag_id,
        question=question,
        runs=len(run_ids),
        http_status=status_of(error),
        error=str(error),
    )
    findings.ask_again_soon(run_ids)
