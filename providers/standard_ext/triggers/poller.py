"""The poller of one child Dag in one event loop: its waiters, when it ticks, and what a tick asks about."""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import time
import weakref
from typing import TYPE_CHECKING

import structlog

from standard_ext.triggers.poll_check import check
from standard_ext.triggers.waiters import Waiter, Waiters
from standard_ext.wait.runs import CHUNK

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from standard_ext.wait.schedule import Schedule

log = structlog.get_logger(__name__)

#: The least time between two ticks, as the schedule's own finest step (``wait.window.FAST_STEP_SECONDS``): a
#: backlog of due runs is worked through at one chunk per second rather than in a burst, and however often
#: newcomers arrive, runs fall due or questions go unanswered, the poller never asks more than once a second.
MIN_TICK_SECONDS = 1.0


class Poller(Waiters):
    """
    Poll the runs of one child Dag for every trigger in this event loop that waits on one of them.

    Triggers :meth:`register` a run id with their own :class:`~standard_ext.wait.schedule.Schedule`; waiters
    on the same run share one entry, due when its first waiter is. One asyncio task sleeps until the earliest
    entry is due, but no sooner than :data:`MIN_TICK_SECONDS` after its last tick, then ticks: it takes at
    most :data:`~standard_ext.wait.runs.CHUNK` of the due runs, the most overdue first (ties in registration order), moves their
    schedules on and asks about them (:func:`~standard_ext.triggers.poll_check.check`). A due run left out
    keeps its ``due_at``, earlier than that of any run just asked about, so it is first in line at the next
    tick: with N runs due, each is asked about within ``ceil(N / 100)`` ticks, none is starved.

    A question that goes unanswered (an API error, a timeout) makes its runs due at the next tick, not
    at their schedule's next check: it costs at most a second. Any other error fails the triggers of that
    tick's runs not yet settled. The task runs in an empty :mod:`contextvars` context, not in that of the
    trigger that happened to register first: its log lines carry the Dag, never a trigger's id, by which
    the triggerer would route them to that trigger's task log. When the last waiter leaves, the task
    ends and ``on_close`` takes the poller out of its registry.

    See :mod:`standard_ext.triggers.shared_poll` for what this costs and why.
    """

    def __init__(
        self,
        *,
        dag_id: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_close: Callable[[Poller], None] | None = None,
    ) -> None:
        """
        Create the poller of the running event loop; use ``shared_poll.poller_for`` rather than this.

        :param dag_id: the child Dag whose runs are waited on.
        :param sleep: how the poller sleeps between ticks (tests stand in a clock of their own).
        :param on_close: called once when the poller stops taking waiters.
        """
        super().__init__(dag_id=dag_id)
        self._sleep = sleep
        self._on_close = on_close
        self._wake = asyncio.Event()
        self._sleeping_until: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Weakly: the registry's values must not keep its (weak) keys alive.
        self._loop = weakref.ref(asyncio.get_running_loop())

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the poller belongs to, while it exists."""
        return self._loop()

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
            # A task copies the context it is created in: here that of the registering trigger, whose
            # trigger_id (bound in structlog's context variables) would send every line the poller logs
            # to that one trigger's task log. An empty context keeps them out of every task's log.
            # Context().run rather than create_task(context=): the package still supports Python 3.10.
            self._task = contextvars.Context().run(
                loop.create_task, self._run(), name=f"dag-run-poller:{self.dag_id}"
            )
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

    def reschedule(self, waiter: Waiter, schedule: Schedule) -> None:
        """
        Check ``waiter``'s run on ``schedule`` from now on (the run was seen started: it anchors the rest).

        :param waiter: what :meth:`register` returned.
        :param schedule: the waiter's new schedule.
        """
        waiter.schedule = schedule
        waiter.due_at = schedule.next_check_after(time.time())
        if (
            self._sleeping_until is not None
            and max(waiter.due_at, self._next_tick_not_before) < self._sleeping_until
        ):
            self._wake.set()

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
                self._finishing.pop(waiter.run_id, None)
        if not self._entries:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        # Leave the registry at once, not when the task gets round to ending: a trigger registering in
        # between must get a poller that is going to poll.
        if self._on_close is not None:
            self._on_close(self)

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
            sleeper = asyncio.ensure_future(self._sleep(tick_at - now))
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
        # Move the schedules on first: a check that learns something is on time for the next. One whose
        # question goes unanswered brings its runs back to the next tick (ask_again_soon). Moving on a
        # waiter of the same run that was not due yet leaves it where it was: its first check after now
        # is the one it was waiting for.
        for run_id in chunk:
            for waiter in self._entries[run_id]:
                waiter.due_at = waiter.schedule.next_check_after(now)
        try:
            await check(dag_id=self.dag_id, chunk=chunk, findings=self)
        except Exception as e:
            # Not the API saying no but a fault on this side: retrying would hide it behind a wait that
            # never ends. Fail the triggers of this chunk not settled yet (their tasks' retries apply),
            # keep the others.
            log.exception("Polling child Dag runs failed", dag_id=self.dag_id, runs=len(chunk))
            self._fail(chunk, f"Polling runs of Dag {self.dag_id!r} failed: {e!r}", cause=e)
        log.debug(
            "Checked child Dag runs",
            dag_id=self.dag_id,
            checked=len(chunk),
            left_due=len(due) - len(chunk),
            waiting=len(self._entries),
        )
