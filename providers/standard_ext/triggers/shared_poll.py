"""
One poller per child Dag per event loop: the triggers waiting on its runs share batched state questions.

A triggerer runs all its triggers on one event loop. When each trigger polls its own child run, N parents
waiting on runs of one child Dag cost N requests per interval. Here they register with the Dag's
:class:`Poller` instead. Each time it wakes (a *tick*) it asks about at most :data:`CHUNK` due runs, the
most overdue first: one count of those still active, and, for the runs whose waiters watch them
(:class:`~standard_ext.progress.Watch`), one task-state question, from which each waiter gets its run's
progress and judges an early end. A single run's state is read only when the count says it has finished.

Ticks are at least :data:`MIN_TICK_SECONDS` apart. So the requests per tick do not depend on the number of
waiters, and neither does the load one child Dag's waiters put on the API server: at most one count (plus
one task-state question) per second, and a few more requests per run that ends. The price is latency
under fan-out: with N runs due at once, each is checked at least every ``ceil(N / 100)`` seconds, so
1,000 parents all in their one-second fast window are each checked every 10 s, not every second.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from airflow.sdk.exceptions import AirflowRuntimeError
from asgiref.sync import sync_to_async

from standard_ext.durable import ACTIVE_STATES, FINAL_STATES
from standard_ext.runs import progress_of, state_name
from task_sdk_ext.errors import http_status, server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from standard_ext.polling import Schedule
    from standard_ext.progress import EarlyEnd, TaskProgress, Watch

log = structlog.get_logger(__name__)

# At most this many run ids per tick: the execution API takes them in the query string, and a few
# hundred 60-character ids would outgrow the URL length proxies and servers accept. One chunk per tick,
# not one per 100 due runs, is what keeps the requests per tick from growing with the number of waiters.
CHUNK = 100
# The least time between two ticks, as the schedule's own finest step (``polling.FAST_STEP_SECONDS``): a
# backlog of due runs is worked through at one chunk per second rather than in a burst, and however often
# newcomers arrive or runs fall due, the poller never asks more than once a second.
MIN_TICK_SECONDS = 1.0


class PollError(RuntimeError):
    """Polling failed in a way a retry at the next check cannot mend; the waiting trigger fails with it."""


@dataclass(frozen=True)
class RunOutcome:
    """
    What a wait ended with: the run's final state, or ``state=None`` and why there is none.

    ``early`` is set when the waiter's :class:`~standard_ext.progress.Watch` ended the wait while the run
    was still active (its ``state`` is then the active state last seen).
    """

    state: str | None
    error: str | None = None
    early: EarlyEnd | None = None


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


async def pause(seconds: float) -> None:
    """Sleep until the next tick is due."""
    # One place to stand in for the clock: unit tests replace it to move time-machine's clock instead.
    await asyncio.sleep(seconds)


def _count_active(dag_id: str, run_ids: list[str]) -> int:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with server_errors_as_runtime_errors():
        return RuntimeTaskInstance.get_dr_count(dag_id=dag_id, run_ids=run_ids, states=sorted(ACTIVE_STATES))


def _read_state(dag_id: str, run_id: str) -> str:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with server_errors_as_runtime_errors():
        return state_name(RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id))


def _read_task_states(dag_id: str, run_ids: list[str]) -> dict[str, TaskProgress]:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with server_errors_as_runtime_errors():
        answer = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=run_ids)
    return {run_id: progress_of(answer.get(run_id, {})) for run_id in run_ids}


class Poller:
    """
    Poll the runs of one child Dag for every trigger in this event loop that waits on one of them.

    **Purpose:** make N triggers waiting on runs of one Dag cost the API server the same few requests per
    second whatever N is, so a triggerer can hold thousands of waiting parents without loading it.

    **How it works:** triggers :meth:`register` a run id with their own :class:`Schedule`; waiters on the
    same run share one entry, due when its first waiter is. One asyncio task sleeps until the earliest
    entry is due, but no sooner than :data:`MIN_TICK_SECONDS` after its last tick, then ticks:

    - It takes at most :data:`CHUNK` of the due runs, the most overdue first (smallest ``due_at``; ties
      in registration order), and moves only their schedules on. A due run left out keeps its
      ``due_at``, which is earlier than that of any run just asked about or registered since, so it is
      first in line at the next tick: with N runs due, every one is asked about within ``ceil(N / 100)``
      ticks, none is starved, and the order is deterministic.
    - It asks how many of them are still ``queued`` or ``running`` (one request). Counting the runs still
      *active*, not the finished ones, is what lets one question cover both a run that ended and a run
      that does not exist (any more): either makes the count fall short. A count in full costs nothing
      more; one that falls short by k is halved, one half counted and the other deduced, until single
      runs are singled out, whose state is then read; so one finished run among 100 costs at most
      ``ceil(log2(100)) + 1 = 8`` requests more, once, when it ends. A final state resolves the run's
      waiters; a 404 resolves them with an error naming the run.
    - For the runs still active whose waiters watch them, it asks their task states (one request) and
      puts each run's on its waiters' ``progress`` queues.

    **Cost and its price:** a tick sends one count, plus one task-state question when a run in it is
    watched, plus the bisection and a state read per run that ended: per event, not per waiter. At most
    one tick a second, so one child Dag's waiters cost the API server at most that per second whatever the
    fan-out. In exchange a run is checked later than its schedule asks when more than 100 are due at
    once: with N due together each is checked at least every ``ceil(N / 100)`` seconds (1,000 parents
    all in their one-second fast window: every 10 s each). A schedule with steps below a second
    (``poke_interval`` under 1 s) is checked every second.

    **What it does not do:** judge states (the operator decides what is allowed), look runs up by
    logical date (run ids only, see upstream issue 57756), or survive its event loop: a restarted
    triggerer rebuilds the triggers, and they register afresh on the same schedules. An API error
    (the server briefly away) is logged and the runs are asked about again at their next check; any
    other error fails only the triggers of that tick's runs. When the last waiter leaves, the task ends
    and the poller drops out of the registry.

    Example::

        outcome = await wait_for_final_state(dag_id="child", run_id=run_id, schedule=schedule)
    """

    def __init__(self, *, dag_id: str) -> None:
        """
        Create the poller of the running event loop; use :func:`poller_for` rather than this.

        :param dag_id: the child Dag whose runs are waited on.
        """
        self.dag_id = dag_id
        self._entries: dict[str, list[Waiter]] = {}
        self._wake = asyncio.Event()
        self._sleeping_until: float | None = None
        # The earliest the next tick may be: MIN_TICK_SECONDS after the last one that asked something.
        self._next_tick_not_before = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Weakly: the registry's values must not keep its (weak) keys alive.
        self._loop = weakref.ref(asyncio.get_running_loop())

    @property
    def run_ids(self) -> list[str]:
        """The run ids waited on, each once however many triggers wait on it, in registration order."""
        return list(self._entries)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The polling task, once a waiter has registered."""
        return self._task

    def register(self, *, run_id: str, schedule: Schedule, wants_tasks: bool = False) -> Waiter:
        """
        Start waiting on ``run_id``; the returned waiter's ``outcome`` resolves when the run ends.

        :param run_id: the child run.
        :param schedule: when this waiter wants the run checked.
        :param wants_tasks: also put the run's task states on the waiter's ``progress`` queue at each
            check that finds the run active.
        """
        if self._closed:
            raise RuntimeError(f"The poller of Dag {self.dag_id!r} has stopped; ask poller_for() again")
        loop = asyncio.get_running_loop()
        waiter = Waiter(
            run_id,
            schedule,
            schedule.next_check_after(time.time()),
            loop.create_future(),
            wants_tasks=wants_tasks,
        )
        self._entries.setdefault(run_id, []).append(waiter)
        if self._task is None:
            self._task = loop.create_task(self._run(), name=f"dag-run-poller:{self.dag_id}")
        elif (
            self._sleeping_until is not None
            and max(waiter.due_at, self._next_tick_not_before) < self._sleeping_until
        ):
            # The poller sleeps until its earliest waiter is due; a newcomer due sooner must not wait
            # for that (a fresh wait checks every second, an old one maybe once a minute). It wakes the
            # poller only if the tick can really come sooner: waking it for a time the spacing forbids
            # would only have it work out the same sleep again.
            self._wake.set()
        return waiter

    def deregister(self, waiter: Waiter) -> None:
        """
        Stop waiting; the last waiter to leave stops the poller. Safe to call more than once.

        :param waiter: what :meth:`register` returned.
        """
        waiters = self._entries.get(waiter.run_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._entries[waiter.run_id]
        if not self._entries:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        # Leave the registry at once, not when the task gets round to ending: a trigger registering in
        # between must get a poller that is going to poll.
        loop = self._loop()
        pollers = _POLLERS.get(loop, {}) if loop is not None else {}
        if pollers.get(self.dag_id) is self:
            del pollers[self.dag_id]
        if not pollers and loop is not None:
            _POLLERS.pop(loop, None)

    async def _run(self) -> None:
        log.debug("Polling child Dag runs", dag_id=self.dag_id)
        try:
            while self._entries:
                now = await self._sleep_until_due()
                if self._entries:
                    await self._tick(now)
        finally:
            self._close()
            # Only cancellation of the task itself (its loop shutting down) leaves waiters here; fail
            # them rather than leave their triggers waiting on a future nobody will resolve.
            self._fail(list(self._entries), f"The poller of Dag {self.dag_id!r} stopped", cause=None)
            log.debug("Stopped polling child Dag runs", dag_id=self.dag_id)

    def _due_at(self, run_id: str) -> float:
        """When ``run_id`` is next due: when the first of its waiters is."""
        return min(waiter.due_at for waiter in self._entries[run_id])

    async def _sleep_until_due(self) -> float:
        """
        Sleep until the next tick, and return the time it is for.

        That is when the earliest run is due, but no sooner than :data:`MIN_TICK_SECONDS` after the last
        tick. A newcomer that brings the tick forward wakes the sleep, which then works the time out
        again; the poller closing wakes it too, and it returns at once.
        """
        while self._entries:
            tick_at = max(min(map(self._due_at, self._entries)), self._next_tick_not_before)
            now = time.time()
            if tick_at <= now:
                return now
            self._wake.clear()
            self._sleeping_until = tick_at
            sleeper = asyncio.ensure_future(pause(tick_at - now))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._sleeping_until = None
                sleeper.cancel()
                woken.cancel()
            if sleeper.done() and not sleeper.cancelled():
                # The sleep ran its course: the tick is due even if the clock reads a hair earlier (the
                # loop may end a sleep within its clock's resolution, and the wall clock need not agree
                # with it), or the poller would sleep a hair again, and again, finding nothing due.
                return max(time.time(), tick_at)
        return time.time()

    async def _tick(self, now: float) -> None:
        due_at = {run_id: self._due_at(run_id) for run_id in self._entries}
        due = [run_id for run_id, at in due_at.items() if at <= now]
        # One chunk, the most overdue first. nsmallest is stable, as sorted() is: ties keep the entries'
        # (registration) order. The runs left out keep their due_at, earlier than any a schedule moved on
        # now will get, so they come first at the next tick: a fair rotation, not a starving one.
        chunk = heapq.nsmallest(CHUNK, due, key=due_at.__getitem__)
        if not chunk:
            # Only a waiter that left during the sleep gets here; a tick that asks nothing needs no spacing.
            return
        self._next_tick_not_before = now + MIN_TICK_SECONDS
        # Move the schedules on first: whatever this check learns or fails to learn, the next is on time.
        # Moving on a waiter of the same run that was not due yet leaves it where it was: its first check
        # after now is the one it was waiting for.
        for run_id in chunk:
            for waiter in self._entries[run_id]:
                waiter.due_at = waiter.schedule.next_check_after(now)
        await self._check(chunk)
        log.debug(
            "Checked child Dag runs",
            dag_id=self.dag_id,
            checked=len(chunk),
            left_due=len(due) - len(chunk),
            waiting=len(self._entries),
        )

    async def _check(self, chunk: list[str]) -> None:
        try:
            active = await sync_to_async(_count_active)(self.dag_id, chunk)
            for run_id in await self._settled(chunk, len(chunk) - active):
                await self._settle(run_id)
            await self._report_progress(chunk)
        except AirflowRuntimeError as e:
            log.warning(
                "Could not read the child Dag's runs; asking again at the next check",
                dag_id=self.dag_id,
                runs=len(chunk),
                http_status=http_status(e),
                error=str(e),
            )
        except Exception as e:
            # Not the API saying no but a fault on this side: retrying would hide it behind a wait that
            # never ends. Fail the triggers of this chunk (their tasks' retries apply), keep the others.
            log.exception("Polling child Dag runs failed", dag_id=self.dag_id, runs=len(chunk))
            self._fail(chunk, f"Polling runs of Dag {self.dag_id!r} failed: {e!r}", cause=e)

    async def _report_progress(self, chunk: list[str]) -> None:
        """Hand the task states of the chunk's still-waited-on runs to the waiters that want them."""
        watched = [run_id for run_id in chunk if any(w.wants_tasks for w in self._entries.get(run_id, ()))]
        if not watched:
            return
        # One question for all of them, as the count was: the cost stays one request per tick, not per run.
        for run_id, progress in (await sync_to_async(_read_task_states)(self.dag_id, watched)).items():
            for waiter in self._entries.get(run_id, ()):
                if waiter.wants_tasks:
                    waiter.progress.put_nowait(progress)

    async def _settled(self, run_ids: list[str], settled: int) -> list[str]:
        """Return the ``settled`` runs among ``run_ids`` that are no longer active, by bisection."""
        if settled <= 0:
            return []
        if settled >= len(run_ids):
            return list(run_ids)
        half = len(run_ids) // 2
        left, right = run_ids[:half], run_ids[half:]
        left_settled = len(left) - await sync_to_async(_count_active)(self.dag_id, left)
        # The other half is deduced, one request saved per level. A run that ends between the two counts
        # makes this an underestimate, and is found at the next check; a run set back to queued (a clear)
        # an overestimate, which _settle sees from the state it reads.
        right_settled = settled - left_settled
        return [*await self._settled(left, left_settled), *await self._settled(right, right_settled)]

    async def _settle(self, run_id: str) -> None:
        try:
            state = await sync_to_async(_read_state)(self.dag_id, run_id)
        except AirflowRuntimeError as e:
            if http_status(e) != 404:
                log.warning(
                    "Could not read the child Dag run's state; asking again at the next check",
                    dag_id=self.dag_id,
                    run_id=run_id,
                    http_status=http_status(e),
                    error=str(e),
                )
                return
            log.warning("The child Dag run does not exist", dag_id=self.dag_id, run_id=run_id)
            error = f"Dag run {run_id!r} of Dag {self.dag_id!r} was not found"
            self._resolve(run_id, RunOutcome(state=None, error=error))
            return
        if state in FINAL_STATES:
            self._resolve(run_id, RunOutcome(state=state))
        else:
            log.debug("The child Dag run is active again", dag_id=self.dag_id, run_id=run_id, state=state)

    def _resolve(self, run_id: str, outcome: RunOutcome) -> None:
        for waiter in self._entries.pop(run_id, []):
            if not waiter.outcome.done():
                waiter.outcome.set_result(outcome)

    def _fail(self, run_ids: list[str], message: str, *, cause: BaseException | None) -> None:
        for run_id in run_ids:
            for waiter in self._entries.pop(run_id, []):
                if not waiter.outcome.done():
                    # One exception per waiter: each is raised in its own trigger and grows its own traceback.
                    error = PollError(message)
                    error.__cause__ = cause
                    waiter.outcome.set_exception(error)


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
        pollers[dag_id] = Poller(dag_id=dag_id)
    return pollers[dag_id]


def pollers_of(loop: asyncio.AbstractEventLoop) -> dict[str, Poller]:
    """
    Return the pollers registered for ``loop``, by Dag id.

    :param loop: an event loop.
    """
    return dict(_POLLERS.get(loop, {}))


async def wait_for_final_state(
    *,
    dag_id: str,
    run_id: str,
    schedule: Schedule,
    watch: Watch | None = None,
    on_progress: Callable[[TaskProgress], None] | None = None,
) -> RunOutcome:
    """
    Wait, with every other waiter on this Dag's runs, until the run ends or turns out not to exist.

    With ``watch`` or ``on_progress``, each check that finds the run active also reads its task states
    (one request per tick, shared by up to 100 runs): ``on_progress`` sees every reading, and the wait ends
    early, with :attr:`RunOutcome.early` set, as soon as ``watch`` says so. Cancelling the caller
    (triggerer shutdown, the task cleared) deregisters it.

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param schedule: when to check the run.
    :param watch: the early-end rules (``fail_fast``, ``critical_task_ids``, ``result_task_ids``).
    :param on_progress: called with each reading of the run's task states.
    :raises PollError: polling failed other than by an API error, which is retried at the next check.
    """
    poller = poller_for(dag_id)
    waiter = poller.register(
        run_id=run_id, schedule=schedule, wants_tasks=watch is not None or on_progress is not None
    )
    try:
        while True:
            progress = await _next_progress(waiter)
            if progress is None:
                return waiter.outcome.result()
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
