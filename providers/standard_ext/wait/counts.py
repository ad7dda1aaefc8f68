"""A large child run's progress from counts: a synchronous check costs the same whatever the run's size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from standard_ext.wait.progress import FAILED_TI_STATES, NOT_STARTED_TI_STATES, TERMINAL_TI_STATES
from standard_ext.wait.runs import task_progress
from task_sdk_ext.api_errors import server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from standard_ext.wait.progress import Watch
    from task_sdk_ext.protocols import TriggeringTaskInstance

# Above this many task instances, a check asks counts rather than every instance's state: a 1,000-way
# mapped child answers a task-state question with tens of kilobytes, a count with a few bytes.
COUNT_ABOVE = 100
# How the execution API's count route names an instance without a state.
_NO_STATE = "null"


def _as_query(states: Collection[str | None]) -> list[str]:
    return sorted(_NO_STATE if state in (None, "none") else str(state) for state in set(states))


# Counted as finished rather than as unfinished: a state Airflow adds later is then taken for unfinished,
# and the wait goes on rather than ending early.
FINISHED_QUERY = _as_query(TERMINAL_TI_STATES)
NOT_STARTED_QUERY = _as_query(NOT_STARTED_TI_STATES)
FAILED_QUERY = _as_query(FAILED_TI_STATES)


@dataclass(frozen=True)
class CountedProgress:
    """
    What counts say of a run: as :class:`~standard_ext.wait.progress.TaskProgress` says it, for a large run.

    :param total: the run's task instances.
    :param unfinished: those not in a final state.
    :param started: whether one of them has started (``None``: not asked, the start was seen already).
    :param failed: the failed instances found (named only when the count found some), for ``fail_fast``.
    :param results_ready: whether every instance of the result tasks succeeded (``None``: not asked).
    """

    total: int
    unfinished: int
    started: bool
    failed: tuple[tuple[str, str], ...] = ()
    results_ready: bool | None = None

    @property
    def line(self) -> str:
        """``930/1000 tasks done``: the progress line of a run followed by counts."""
        done = self.total - self.unfinished
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{done}/{self.total} tasks done{failed}"

    @property
    def all_finished(self) -> bool:
        """Whether no task instance is left to run."""
        return self.unfinished == 0

    @property
    def has_tasks(self) -> bool:
        """Whether the run has task instances at all."""
        return self.total > 0

    def failures(self, among: Collection[str] | None = None) -> list[tuple[str, str]]:
        """The failed instances found (the count was asked for ``among`` already)."""
        return list(self.failed)

    def all_succeeded(self, task_ids: Sequence[str]) -> bool:
        """Whether every instance of the result tasks succeeded (as counted)."""
        return bool(self.results_ready)


def count(ti: TriggeringTaskInstance, dag_id: str, run_id: str, **filters: list[str] | None) -> int:
    """Return how many task instances of the run match ``filters`` (one ``GetTICount`` request)."""
    with server_errors_as_runtime_errors():
        return int(ti.get_ti_count(dag_id, run_ids=[run_id], **filters))


def counted_progress(
    ti: TriggeringTaskInstance, dag_id: str, run_id: str, *, watch: Watch | None, start_seen: bool
) -> CountedProgress:
    """
    Look at a large run with counts: two requests, one more until its start is seen, more for the rules.

    :param ti: the task instance whose accessors ask the execution API.
    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param watch: the early-end rules: ``fail_fast`` adds a count of failures (and names them when there
        are some), ``result_task_ids`` two counts of their instances.
    :param start_seen: whether an earlier check saw the run started (then it is not asked again).
    """
    total = count(ti, dag_id, run_id)
    unfinished = total - count(ti, dag_id, run_id, states=FINISHED_QUERY)
    started = start_seen or count(ti, dag_id, run_id, states=NOT_STARTED_QUERY) < total
    failed: tuple[tuple[str, str], ...] = ()
    results_ready = None
    if watch is not None and watch.fail_fast:
        critical = list(watch.critical_task_ids) if watch.critical_task_ids else None
        if count(ti, dag_id, run_id, states=FAILED_QUERY, task_ids=critical):
            # Rare, and it ends the wait: one full read names the failed instances.
            failed = tuple(task_progress(ti, dag_id, run_id).failures(watch.critical_task_ids))
    if watch is not None and watch.result_task_ids:
        tasks = list(watch.result_task_ids)
        instances = count(ti, dag_id, run_id, task_ids=tasks)
        succeeded = count(ti, dag_id, run_id, task_ids=tasks, states=["success"])
        # Every named task must have an instance: a count of all of them cannot tell, so ask per task
        # only once they look done.
        results_ready = (
            instances > 0
            and succeeded == instances
            and all(count(ti, dag_id, run_id, task_ids=[task]) > 0 for task in tasks)
        )
    return CountedProgress(
        total=total, unfinished=unfinished, started=started, failed=failed, results_ready=results_ready
    )
