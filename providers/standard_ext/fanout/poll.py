"""Reading many child runs of one Dag from a task with batched counts: which ended, and in what state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from standard_ext.durable.decision import ACTIVE_STATES
from standard_ext.wait.runs import CHUNK, child_state
from task_sdk_ext.api_errors import server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from task_sdk_ext.protocols import TriggeringTaskInstance

    Count = Callable[[list[str]], int]


def split(run_ids: Sequence[str], *, counted: int, count: Count) -> tuple[list[str], list[str]]:
    """
    Split ``run_ids`` into those a count counts and the rest, by halving; order kept in each part.

    Only the left half of each mixed part is counted, the right half is deduced: a part whose count is
    all or none needs no more questions, so telling k runs from n costs about ``min(k, n - k) * log2(n)``
    requests, the idea of :mod:`standard_ext.triggers.poll_check`. A run that changes state between two
    counts can land in the wrong part; the callers confirm the part they act on.

    :param run_ids: the runs to split.
    :param counted: how many of them the count counts (already asked).
    :param count: asks the count for a list of run ids (one request).
    """
    if counted <= 0:
        return [], list(run_ids)
    if counted >= len(run_ids):
        return list(run_ids), []
    half = len(run_ids) // 2
    left, right = list(run_ids[:half]), list(run_ids[half:])
    left_counted = count(left)
    left_in, left_out = split(left, counted=left_counted, count=count)
    right_in, right_out = split(right, counted=counted - left_counted, count=count)
    return left_in + right_in, left_out + right_out


def _counter(dag_id: str, states: Collection[str]) -> Count:
    def count(run_ids: list[str]) -> int:
        # A static accessor, as in the shared poller: it sends GetDRCount through SUPERVISOR_COMMS.
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        with server_errors_as_runtime_errors():
            return RuntimeTaskInstance.get_dr_count(dag_id=dag_id, run_ids=run_ids, states=sorted(states))

    return count


def _chunks(run_ids: Sequence[str]) -> list[list[str]]:
    # As the shared poller: the execution API takes run ids in the query string, so at most CHUNK a request.
    return [list(run_ids[start : start + CHUNK]) for start in range(0, len(run_ids), CHUNK)]


def ended_runs(*, ti: TriggeringTaskInstance, dag_id: str, run_ids: Sequence[str]) -> dict[str, str | None]:
    """
    Return ``{run_id: final state}`` of the runs among ``run_ids`` that are no longer active (``None``: gone).

    One ``GetDRCount`` per 100 runs while none ended. When k ended, the k oldest are counted first:
    runs of one child Dag mostly end in the order they started, and the runs are in item order, so
    that one count usually singles them out; otherwise halving does. Then one count of the successes
    among them; only when it falls short are they read one by one (``GetDagRunState``), which also
    confirms them. So an end usually costs two or three requests, not ``log2(n)`` of them.

    :param ti: the task instance whose accessors ask the execution API.
    :param dag_id: the child Dag.
    :param run_ids: its runs believed active, in item order.
    """
    count = _counter(dag_id, ACTIVE_STATES)
    succeeded = _counter(dag_id, ["success"])
    ended: dict[str, str | None] = {}
    for chunk in _chunks(run_ids):
        finished = len(chunk) - count(chunk)
        if finished <= 0:
            continue
        oldest = chunk[:finished]
        if finished < len(chunk) and count(oldest) == 0:
            maybe_ended = oldest
        else:
            _, maybe_ended = split(chunk, counted=len(chunk) - finished, count=count)
        if succeeded(maybe_ended) == len(maybe_ended):
            ended.update(dict.fromkeys(maybe_ended, "success"))
            continue
        for run_id in maybe_ended:
            state = child_state(ti, dag_id, run_id)
            # Queued again between the two questions (a person cleared it): still active.
            if state not in ACTIVE_STATES:
                ended[run_id] = state
    return ended


def server_states(
    *, ti: TriggeringTaskInstance, dag_id: str, run_ids: Sequence[str]
) -> dict[str, str | None]:
    """
    Return every run's state (``None`` for a run the server does not have), as a retry finds them.

    Per 100 runs: one count of the active ones and one of the succeeded ones among the rest (halving
    only when a part is mixed); the few left (failed, or never created) are read one by one, so an item
    is only redriven or triggered on a state read for that very run.

    :param ti: the task instance whose accessors ask the execution API.
    :param dag_id: the child Dag.
    :param run_ids: the saved runs.
    """
    active_count = _counter(dag_id, ACTIVE_STATES)
    success_count = _counter(dag_id, ["success"])
    states: dict[str, str | None] = {}
    for chunk in _chunks(run_ids):
        active, rest = split(chunk, counted=active_count(chunk), count=active_count)
        states.update(dict.fromkeys(active, "running"))
        if not rest:
            continue
        succeeded, rest = split(rest, counted=success_count(rest), count=success_count)
        states.update(dict.fromkeys(succeeded, "success"))
        for run_id in rest:
            states[run_id] = child_state(ti, dag_id, run_id)
    return {run_id: states[run_id] for run_id in run_ids}
