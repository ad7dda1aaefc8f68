"""``DagRunsTrigger``: wait in the triggerer until enough of a fan-out's active child runs have ended."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog
from airflow.triggers.base import BaseTrigger, TriggerEvent

from standard_ext.fanout.packing import pack, unpack
from standard_ext.fanout.state import FanOut, ItemState, progress_fields
from standard_ext.triggers.deadline import TIMED_OUT, seconds_left
from standard_ext.triggers.inflate import refused_as_type_error
from standard_ext.triggers.on_kill import cancel_children, shielded
from standard_ext.triggers.shared_poll import wait_in_triggerer
from standard_ext.wait.progress import Watch
from standard_ext.wait.schedule import Schedule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from standard_ext.triggers.shared_poll import RunOutcome

log = structlog.get_logger(__name__)

# Stored with every deferred task: renaming or moving the class breaks the deferrals in flight, whose
# triggerer can no longer import it.
CLASSPATH = "standard_ext.triggers.dag_runs.DagRunsTrigger"


class DagRunsTrigger(BaseTrigger):
    """
    Wait for ``ends`` of a fan-out's active runs to end (or, with ``failures``, that many to fail); fire once.

    **Purpose:** let a deferrable ``TriggerDagRunsOperator`` give its worker slot up while its window of
    child runs is full. Only a task can trigger a run (``TriggerDagRun`` is not among the triggerer's
    messages), so the trigger fires when enough runs ended for the resumed task to start a meaningful
    part of the window again, not at every end.

    **How it works:** ``run()`` waits on each active run of ``fan_out`` through the event loop's shared
    poller (:func:`standard_ext.triggers.shared_poll.wait_in_triggerer`, one wait per run, awaited
    together), so N runs cost a batched count per tick, not N requests. Each end updates the fan-out
    (a run that is gone fails its item) and logs the progress; once ``ends`` runs ended, or ``failures``
    of them failed, the other waits are cancelled (deregistered) and one event carries the updated
    fan-out: ``{"dag_id", "fan_out"}``. The fan-out travels in the trigger and back in the event because
    ``dag.test()`` resumes a task with the event alone, without the deferral's ``kwargs``. Everything is
    serialized, so a restarted triggerer rebuilds the trigger on the same schedule.

    With ``cancel_on_kill``, ``on_kill`` sets the fan-out's runs that are not over ``failed`` once the
    task left the deferral (:func:`standard_ext.triggers.on_kill.cancel_children`).

    **What it does not do:** trigger runs (items not started stay so), judge the outcome (the
    operator's rules do), or stop runs without ``cancel_on_kill``.

    :param dag_id: the child Dag.
    :param fan_out: the fan-out at the deferral (:meth:`standard_ext.fanout.state.FanOut.to_json`), or
        as the trigger serializes it, packed (:func:`standard_ext.fanout.packing.pack`).
    :param ends: fire once this many of its active runs ended (all of them at most).
    :param failures: fire as soon as this many of them failed (``fail_fast``); ``None``: not early.
    :param poke_interval: the longest wait between two checks of a run, in seconds.
    :param fast_poll_window: for this many seconds after ``waiting_since`` the runs are checked every
        second; then the wait doubles up to ``poke_interval``.
    :param waiting_since: when the wait began, as a UNIX timestamp.
    :param expected_seconds: how long the child Dag's last success took, if known: each run's checks are
        dense around that length after it is seen starting (see :mod:`standard_ext.wait.schedule`).
    :param cancel_on_kill: when the triggerer kills this trigger because the task left ``deferred`` (a
        person marked or cleared it, its Dag run was marked or timed out), set the fan-out's active
        runs ``failed`` through the public REST API. Off by default: triggers serialized before it
        existed rebuild without it.
    :param airflow_api_conn_id: with ``cancel_on_kill``, the Airflow connection (conn_type ``http``) to the
        API server, read in the triggerer.
    :param timeout_at: a deadline (UNIX timestamp): once it passes, fire ``{"dag_id", "fan_out",
        "timed_out": True}`` so that the task resumes, cancels the active runs and raises the timeout
        (:mod:`standard_ext.triggers.deadline`). ``None``: no deadline of its own.
    :param durable: with ``cancel_on_kill``, whether a retry of the task reconnects to what this trigger
        waits on (:func:`standard_ext.cancel.decision.should_cancel`). Default ``True``.

    Example::

        self.defer(
            trigger=DagRunsTrigger(
                dag_id="score",
                fan_out=fan_out.to_json(),
                ends=10,
                poke_interval=60,
                fast_poll_window=5,
                waiting_since=time.time(),
            ),
            method_name="resume_fan_out",
        )
    """

    def __init__(
        self,
        *,
        dag_id: str,
        fan_out: dict[str, Any] | str,
        ends: int,
        poke_interval: float,
        fast_poll_window: float,
        waiting_since: float,
        failures: int | None = None,
        expected_seconds: float | None = None,
        cancel_on_kill: bool = False,
        airflow_api_conn_id: str | None = None,
        timeout_at: float | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        # A bad keyword argument fails this trigger (and its task), never the triggerer's loop.
        with refused_as_type_error(type(self).__name__):
            self.dag_id = dag_id
            # Read here, so a malformed fan-out fails this trigger as it is built, never the shared poller.
            self.fan_out = unpack(fan_out)
            self.ends = int(ends)
            self.failures = None if failures is None else int(failures)
            self.cancel_on_kill = bool(cancel_on_kill)
            self.airflow_api_conn_id = airflow_api_conn_id
            self.timeout_at = None if timeout_at is None else float(timeout_at)
            # True for a trigger serialized before it existed: keeping a run is the safe side.
            self.durable = bool(durable)
            # The runs seen over while this trigger ran: on_kill leaves them alone without asking.
            self._ended: set[str] = set()
            self.schedule = Schedule(
                waiting_since=float(waiting_since),
                poke_interval=float(poke_interval),
                fast_poll_window=float(fast_poll_window),
                expected_seconds=None if expected_seconds is None else float(expected_seconds),
            )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger."""
        return CLASSPATH, {
            "dag_id": self.dag_id,
            # Packed: the kwargs must fit a Text column on MySQL at the widest fan-out (MAX_ITEMS).
            "fan_out": pack(self.fan_out),
            "ends": self.ends,
            "failures": self.failures,
            "poke_interval": self.schedule.poke_interval,
            "fast_poll_window": self.schedule.fast_poll_window,
            "waiting_since": self.schedule.waiting_since,
            "expected_seconds": self.schedule.expected_seconds,
            "cancel_on_kill": self.cancel_on_kill,
            "airflow_api_conn_id": self.airflow_api_conn_id,
            "timeout_at": self.timeout_at,
            "durable": self.durable,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until enough runs ended (or failed), then yield one event with the updated fan-out."""
        active = self.fan_out.active_run_ids()
        log.info("Waiting for the fan-out's Dag runs", dag_id=self.dag_id, active=len(active), ends=self.ends)
        waits: dict[asyncio.Future[RunOutcome], str] = {
            asyncio.ensure_future(
                # watch=Watch(): no early end, but each check reads the run's task states, so each
                # run's schedule counts from when it is seen starting (a child queued for a slot).
                wait_in_triggerer(dag_id=self.dag_id, run_id=run_id, schedule=self.schedule, watch=Watch())
            ): run_id
            for run_id in active
        }
        fan_out = self.fan_out
        try:
            fan_out, timed_out = await self._until_enough(waits)
        finally:
            # Leaving the poller: each cancelled wait deregisters its run.
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        payload: dict[str, Any] = {"dag_id": self.dag_id, "fan_out": fan_out.to_json()}
        if timed_out:
            # The task resumes to cancel the active runs (cancel_on_kill) and raise the timeout.
            log.info("execution_timeout passed while waiting for the fan-out's Dag runs", dag_id=self.dag_id)
            payload[TIMED_OUT] = True
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _until_enough(self, waits: dict[asyncio.Future[RunOutcome], str]) -> tuple[FanOut, bool]:
        """Wait until enough runs ended; return the fan-out, and whether the deadline came first."""
        fan_out, pending = self.fan_out, set(waits)
        ended: dict[str, str | None] = {}
        while pending and not self._enough(fan_out, ended):
            done, pending = await asyncio.wait(
                pending, timeout=seconds_left(self.timeout_at), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                return fan_out, True
            # Every wait done in the same tick counts, not only the first: the resume acts on all of them.
            ended.update({waits[wait]: wait.result().state for wait in done})
            self._ended.update(ended)
            fan_out = self.fan_out.with_ended(ended)
            log.info("Fan-out progress", dag_id=self.dag_id, **progress_fields(fan_out))
        return fan_out, False

    async def on_kill(self) -> None:
        """With ``cancel_on_kill``, cancel the runs not seen over, unless the task is still deferred."""
        if self.cancel_on_kill and self.airflow_api_conn_id:
            await shielded(
                cancel_children(
                    conn_id=self.airflow_api_conn_id,
                    parent=self.task_instance,
                    dag_id=self.dag_id,
                    run_ids=[run_id for run_id in self.fan_out.active_run_ids() if run_id not in self._ended],
                    durable=self.durable,
                )
            )

    def _enough(self, fan_out: FanOut, ended: dict[str, str | None]) -> bool:
        if len(ended) >= self.ends:
            return True
        failed = fan_out.count(ItemState.FAILED) - self.fan_out.count(ItemState.FAILED)
        return self.failures is not None and failed >= self.failures
