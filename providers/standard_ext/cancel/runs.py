"""Cancelling many child runs of one Dag, one after the other within a time budget (fan-outs)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from standard_ext.cancel import api

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from standard_ext.cancel.decision import Parent

    Decide = Callable[[Parent], tuple[bool, str]]

#: What the worker thread of :func:`run_bounded` leaves of the budget for the caller: the requests
#: stop this long before the caller stops waiting, so a late answer is not left unreported.
THREAD_GRACE = 0.3
OUT_OF_TIME = "out of time: not attempted"


@dataclass
class Tally:
    """
    What cancelling a fan-out's runs came to, filled in as the answers come.

    Another thread may still be filling it in when the caller's time is up: the caller reports what it
    holds by then (:func:`report_all`), and every run without an answer as not cancelled.

    :param dag_id: the child Dag.
    :param run_ids: the runs to cancel, in item order.
    :param go: the decision (``None`` while it is not made: the parent could not be read in time).
    :param reason: why, for the log.
    :param error: why the decision could not be made (a request failed).
    """

    dag_id: str
    run_ids: tuple[str, ...]
    go: bool | None = None
    reason: str = ""
    error: str | None = None
    cancelled: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def not_cancelled(self) -> dict[str, str]:
        """Every run neither cancelled nor found over, with why: its request's error, or no time left."""
        failed, done = dict(self.failed), {*self.cancelled, *self.ended}
        return {run_id: failed.get(run_id, OUT_OF_TIME) for run_id in self.run_ids if run_id not in done}


async def cancel_all(access: api.ApiAccess, tally: Tally, *, deadline: float, per_request: float) -> None:
    """
    Cancel the runs of ``tally`` one after the other (GET, then PATCH ``failed`` unless over).

    One at a time: on Airflow's default SQLite, PATCHes sent together each wait out its 5 s busy timeout
    on the one writer lock and fail with a 500 (measured on a real Airflow: three at once, none applied
    in time); in turn, each takes a fraction of a second. One client for all, so they share its
    connection. A run whose turn comes after the ``deadline`` (``time.monotonic()``) is not attempted.

    :param access: signed in already, so that the runs do not each sign in.
    :param tally: the runs, and the ``reason`` for the log; its answers are filled in.
    """
    async with httpx.AsyncClient(**access.client_options(asynchronous=True)) as client:
        for run_id in tally.run_ids:
            if deadline - time.monotonic() <= 0:
                return
            exchange = api.cancel_run(access, dag_id=tally.dag_id, run_id=run_id, reason=tally.reason)
            try:
                outcome = await api.run_async(
                    exchange, seconds=deadline - time.monotonic(), per_request=per_request, client=client
                )
            except api.ApiError as e:
                tally.failed[run_id] = str(e)
                continue
            if outcome.cancelled:
                tally.cancelled.append(run_id)
            else:
                tally.ended[run_id] = outcome.ended or "ended"


async def decide_then_cancel_all(
    access: api.ApiAccess,
    tally: Tally,
    *,
    task: api.TaskRef,
    decide: Decide | None,
    seconds: float,
    per_request: float,
) -> None:
    """
    Read the parent task instance and let ``decide`` judge it (once for all runs); cancel them if so.

    A request that fails while deciding is noted in ``tally.error``, never raised.

    :param task: the parent task instance.
    :param decide: judges the parent as the API shows it; ``None`` when ``tally.go`` is already decided
        (``execution_timeout``), and the parent is not read.
    :param seconds: the whole budget, the decision included.
    :param per_request: the most any one request may take.
    """
    deadline = time.monotonic() + seconds
    try:
        if decide is not None:
            # Signs in on the way when the access has no token yet (the trigger's), once for all runs.
            parent = await api.run_async(
                api.read_task_instance(access, task), seconds=seconds, per_request=per_request
            )
            tally.go, tally.reason = decide(parent)
        if tally.go and access.token is None:
            left = deadline - time.monotonic()
            await api.run_async(api.sign_in(access), seconds=left, per_request=per_request)
    except api.ApiError as e:
        tally.error = str(e)
        return
    if tally.go:
        await cancel_all(access, tally, deadline=deadline, per_request=per_request)


def run_bounded(work: Callable[[], Coroutine[Any, Any, None]], *, seconds: float) -> bool:
    """
    Run ``work()`` on an event loop of its own in a daemon thread; wait for it ``seconds`` at most.

    For ``on_kill`` in the SIGTERM handler: the main thread only waits, so the budget holds whatever
    hangs (even a name lookup, which no request timeout bounds), and the thread's event loop touches
    neither the main thread's signal handlers nor a loop it may have. Nothing here talks to the
    supervisor. ``work`` should stop :data:`THREAD_GRACE` before ``seconds``.

    :return: whether ``work`` finished in time.
    :raises BaseException: what ``work`` raised.
    """
    raised: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(work())
        except BaseException as e:  # handed to the caller, which raises it
            raised.append(e)

    thread = threading.Thread(target=target, name="cancel_on_kill", daemon=True)
    thread.start()
    thread.join(seconds)
    if raised:
        raise raised[0]
    return not thread.is_alive()


def report_all(tally: Tally, *, log: Any) -> None:
    """
    Log what cancelling came to: why not, or which runs were cancelled, already over, not cancelled.

    Never the token. Run ids in item order.

    :param tally: what :func:`decide_then_cancel_all` filled in (maybe still filling in).
    :param log: the task's (or trigger's) logger.
    """
    ids: dict[str, Any] = {"dag_id": tally.dag_id, "runs": len(tally.run_ids)}
    if tally.error is not None:
        log.warning(
            "Not cancelling the fan-out's Dag runs: a request to the Airflow API failed",
            error=tally.error,
            **ids,
        )
        return
    if tally.go is None:
        log.warning("Not cancelling the fan-out's Dag runs: out of time before deciding", **ids)
        return
    if not tally.go:
        log.info("Not cancelling the fan-out's Dag runs", reason=tally.reason, **ids)
        return
    if not tally.run_ids:
        log.info("The task was stopped; none of the fan-out's Dag runs is active", reason=tally.reason, **ids)
        return
    cancelled, ended = set(tally.cancelled), dict(tally.ended)
    if cancelled:
        in_order = [run_id for run_id in tally.run_ids if run_id in cancelled]
        log.info("Cancelled the fan-out's child Dag runs", reason=tally.reason, run_ids=in_order, **ids)
    if ended:
        log.info("Not cancelling the fan-out's Dag runs that already ended", states=ended, **ids)
    if not_cancelled := tally.not_cancelled():
        log.warning(
            "Could not cancel some of the fan-out's Dag runs (or confirm it) in time",
            reason=tally.reason,
            not_cancelled=not_cancelled,
            **ids,
        )
