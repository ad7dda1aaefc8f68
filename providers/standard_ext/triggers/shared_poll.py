"""
One poller per child Dag per event loop: the triggers waiting on its runs share batched state questions.

A triggerer runs all its triggers on one event loop. When each trigger polls its own child run, N parents
waiting on runs of one child Dag cost N requests per interval. Here they register with the Dag's
:class:`~standard_ext.triggers.poller.Poller` instead.
Each time it wakes (a *tick*) it asks about at most :data:`~standard_ext.wait.runs.CHUNK` due runs, the
most overdue first, in one question: the task states of the runs whose waiters watch them
(:class:`~standard_ext.wait.progress.Watch`, or a progress log), from which each waiter gets its run's progress
and judges an early end, and a run's own state is read only when its task instances are all finished; or, for
runs nobody watches, a count of those still active, halved when it falls short (one half counted and the other
deduced) until single runs are singled out.

Ticks are at least :data:`~standard_ext.triggers.poller.MIN_TICK_SECONDS` apart. So the requests per tick do
not depend on the number of waiters, and the load one child Dag's waiters put on the API server has a bound
whatever their number: at most one question per second, and a request or a few more per run that ends. Below
that bound it grows with the moments at which waiters are due; past their first minute or two every wait's
checks fall on the shared wall-clock beat of :func:`standard_ext.wait.beat.beat_at_or_after`, so waits that
began at different seconds share their ticks. The price is latency under fan-out: with N runs due at once,
each is checked at least every ``ceil(N / 100)`` seconds, so 1,000 parents all in their one-second fast window
are each checked every 10 s, not every second.

An unanswered request (an API error, or no answer within ``poll_requests.REQUEST_TIMEOUT_SECONDS``) costs
at most the next tick: what the tick learned stands, and the runs it could not ask about are due again a
second later. Each request runs on a worker thread of its own, so one that hangs holds up only its Dag's
poller. The poller judges no states (the operator decides what is allowed), looks runs up by run id only
(upstream issue 57756), and does not outlive its event loop: a restarted triggerer rebuilds the triggers,
which register afresh on the same schedules.

The modules: :mod:`~standard_ext.triggers.poll_requests` (the requests and their timeout),
:mod:`~standard_ext.triggers.poll_check` (one tick's questions), :mod:`~standard_ext.triggers.poller`
(waiters and ticks) and this one (the registry, the clock and :func:`wait_in_triggerer`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

import structlog

from standard_ext.triggers.poll_check import RunOutcome
from standard_ext.triggers.poller import MIN_TICK_SECONDS, Poller
from standard_ext.triggers.waiters import PollError, Waiter
from standard_ext.wait.runs import CHUNK

if TYPE_CHECKING:
    from collections.abc import Callable

    from standard_ext.wait.progress import TaskProgress, Watch
    from standard_ext.wait.schedule import Schedule

__all__ = [
    "CHUNK",
    "MIN_TICK_SECONDS",
    "PollError",
    "Poller",
    "RunOutcome",
    "Waiter",
    "pause",
    "poller_for",
    "pollers_of",
    "wait_in_triggerer",
]

log = structlog.get_logger(__name__)


async def pause(seconds: float) -> None:
    """
    Sleep until the next tick is due.

    :param seconds: how long.
    """
    # One place to stand in for the clock: unit tests and the benchmark replace this module attribute
    # to move time-machine's clock instead.
    await asyncio.sleep(seconds)


async def _sleep(seconds: float) -> None:
    # Looks ``pause`` up at each sleep, so a replacement made after the poller was created applies.
    await pause(seconds)


# A registry per event loop: the triggerer has one, but dag.test() and unit tests start a fresh loop per
# trigger or test, and a poller bound to a finished loop must never be handed out. Entries leave when
# their poller stops; the weak keys only keep an emptied loop from being held alive by the registry.
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Poller]] = (
    weakref.WeakKeyDictionary()
)


def poller_for(dag_id: str) -> Poller:
    """
    Return the running event loop's poller for ``dag_id``, creating it if there is none.

    :param dag_id: the child Dag whose runs are waited on.
    """
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    if dag_id not in pollers:
        pollers[dag_id] = Poller(dag_id=dag_id, sleep=_sleep, on_close=_forget)
    return pollers[dag_id]


def _forget(poller: Poller) -> None:
    """Take a stopping poller out of the registry, and its loop too once it has no poller left."""
    loop = poller.loop
    pollers = _POLLERS.get(loop, {}) if loop is not None else {}
    if pollers.get(poller.dag_id) is poller:
        del pollers[poller.dag_id]
    if not pollers and loop is not None:
        _POLLERS.pop(loop, None)


def pollers_of(loop: asyncio.AbstractEventLoop) -> dict[str, Poller]:
    """
    Return the pollers registered for ``loop``, by Dag id.

    :param loop: an event loop.
    """
    return dict(_POLLERS.get(loop, {}))


async def wait_in_triggerer(
    *,
    dag_id: str,
    run_id: str,
    schedule: Schedule,
    watch: Watch | None = None,
    on_progress: Callable[[TaskProgress], None] | None = None,
) -> RunOutcome:
    """
    Wait in the triggerer, with every other waiter on this Dag's runs, until the run ends or is not found.

    The triggers' wait, on the shared poller; a task that does not defer waits in
    :func:`standard_ext.wait.in_task.wait_in_task` instead.

    With ``watch`` or ``on_progress``, each check that finds the run active also reads its task states (one
    request per tick, shared by up to 100 runs): ``on_progress`` sees every reading, and the wait ends early,
    with :attr:`~standard_ext.triggers.poll_check.RunOutcome.early` set, as soon as ``watch`` says so.
    Cancelling the caller (triggerer shutdown, the task cleared) deregisters it. An outcome without a final
    state (the run does not exist) is logged here, in the caller's context: in the triggerer, that trigger's
    task log.

    Example::

        outcome = await wait_in_triggerer(dag_id="child", run_id=run_id, schedule=schedule)

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param schedule: when to check the run.
    :param watch: the early-end rules (``fail_fast``, ``critical_task_ids``, ``result_task_ids``).
    :param on_progress: called with each reading of the run's task states.
    :raises PollError: polling failed other than by an API error, which is retried at the next tick.
    """
    poller = poller_for(dag_id)
    waiter = poller.register(
        run_id=run_id, schedule=schedule, wants_tasks=watch is not None or on_progress is not None
    )
    waiting_seen = False
    try:
        while True:
            progress = await _next_progress(waiter)
            if progress is None:
                outcome = waiter.outcome.result()
                if outcome.error is not None:
                    # The poller settles this for the waiters on the run but logs it nowhere: in its
                    # task it would reach no trigger's log, and here it reaches this one's.
                    log.warning(
                        "The wait for the child Dag run ended without a final state",
                        dag_id=dag_id,
                        run_id=run_id,
                        error=outcome.error,
                    )
                return outcome
            if progress.started and waiter.schedule.started_after is None:
                # From here the schedule counts from the run's start, not from the trigger (wait/schedule.py).
                after = time.time() - waiter.schedule.waiting_since
                poller.reschedule(
                    waiter, waiter.schedule.seen(started=True, after=after, waiting_seen=waiting_seen)
                )
            waiting_seen = waiting_seen or not progress.started
            if on_progress is not None:
                on_progress(progress)
            if watch is not None and (end := watch.early_end(progress)) is not None:
                # Active when the tasks were read: the count just before found it queued or running.
                return RunOutcome(state="running", early=end)
    finally:
        poller.deregister(waiter)


async def _next_progress(waiter: Waiter) -> TaskProgress | None:
    """The waiter's next task-state reading, or ``None`` once its outcome is settled (read it there)."""
    # Readings first: the poller hands them over before it settles a later check, and their order matters.
    if not waiter.progress.empty():
        return waiter.progress.get_nowait()
    if waiter.outcome.done():
        return None
    reading = asyncio.ensure_future(waiter.progress.get())
    either: set[asyncio.Future[Any]] = {waiter.outcome, reading}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not reading.done():
            reading.cancel()
    if reading.done() and not reading.cancelled():
        return reading.result()
    return None
