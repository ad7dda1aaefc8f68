"""The fan-out's ``cancel_on_kill``: sign in before triggering; cancel its active runs from ``on_kill``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from standard_ext.cancel import api as cancel_api
from standard_ext.cancel import runs as cancel_runs
from standard_ext.cancel.decision import should_cancel_after_timeout
from standard_ext.fanout.state import ItemState
from standard_ext.operators.modes import cancel as cancel_mode

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from contextlib import AbstractContextManager

    from airflow.sdk.definitions.context import Context

    from standard_ext.fanout.state import FanOut
    from standard_ext.operators.modes.cancel import CancelOptions

# A run whose trigger was in flight when on_kill cancelled the others is cancelled once it returns,
# from the main thread, in what is left before the SIGKILL (on_kill took up to KILL_SECONDS of its 5 s).
LATE_SECONDS = 1.0


@dataclass
class FanOutCanceller:
    """
    What the fan-out's ``on_kill`` cancels, and with what: every active run this task triggered.

    **Purpose:** with ``cancel_on_kill``, a fan-out stopped for good (marked, cleared, its Dag run timed
    out, or ``execution_timeout`` on its last try) takes its active child runs down with it, as the
    single operator takes its one run (:class:`~standard_ext.operators.modes.cancel.Canceller`, whose
    sign-in, decisions and budget it shares).

    **How it works:** ``execute()`` (and each resume, a new process) signs in before it triggers
    anything. Each run is noted as its trigger returns, and the fan-out's state as it changes; so
    ``on_kill`` knows the runs that may be active, even mid-refill. In the SIGTERM handler it sends no
    message to the supervisor: it reads the parent task instance once, and if the try is over cancels
    the runs one at a time on one client, in a thread of its
    own that it waits for :data:`~standard_ext.operators.modes.cancel.KILL_SECONDS` at most (the SIGKILL
    comes 5 s after the SIGTERM, and the wait still notes the stop in the durable record). What is not
    cancelled by then is logged, run by run. A run whose trigger was in flight meanwhile is cancelled as
    soon as it returns; no further item starts after ``on_kill`` in any case
    (:func:`~standard_ext.wait.stop_guard.refuse_if_stopped`).

    **What it does not do:** touch a run of the child Dag this task did not trigger, a run that is
    over (read first, never set ``failed`` after a success), or the runs a durable retry reconnects
    to; start the items left (the task is stopped); retry a failed request.
    """

    canceller: cancel_mode.Canceller
    dag_id: str
    #: The runs this task triggered (this try, or an earlier one that a retry reconnected to), in order.
    triggered: dict[str, None] = field(default_factory=dict)
    #: Those the fan-out saw end.
    ended: set[str] = field(default_factory=set)
    #: Set by ``on_kill`` when it decided to cancel: a trigger in flight then is cancelled as it returns.
    stop_reason: str | None = None

    def active(self) -> list[str]:
        """The runs to cancel: triggered by this task and not seen to end."""
        return [run_id for run_id in self.triggered if run_id not in self.ended]


def prepare(
    *, operator: CancelOptions, context: Context, dag_id: str, resuming: bool = False
) -> FanOutCanceller | None:
    """
    Sign in to the API server before anything is triggered; ``None`` without ``cancel_on_kill``.

    :param operator: the fan-out's operator.
    :param context: the task context.
    :param dag_id: the child Dag, rendered.
    :param resuming: a deferred fan-out resuming: its runs exist, so no error may be final.
    :raises AirflowFailException: as :func:`standard_ext.operators.modes.cancel.prepare`, naming the
        connection.
    """
    canceller = cancel_mode.prepare(operator=operator, context=context, resuming=resuming)
    if canceller is None:
        return None
    return FanOutCanceller(canceller=canceller, dag_id=dag_id)


def watching_the_try(fan_canceller: FanOutCanceller | None) -> AbstractContextManager[None]:
    """Note how the try ends, as the single operator does (:func:`~standard_ext.operators.modes.cancel.watching_the_try`)."""
    return cancel_mode.watching_the_try(None if fan_canceller is None else fan_canceller.canceller)


def note_fan_out(fan_canceller: FanOutCanceller | None, fan_out: FanOut) -> None:
    """
    Note the fan-out's active runs as this task's, and its ended ones as over.

    Active items were triggered by this try, or by an earlier one that this retry reconnected to: the
    fan-out plans every run id itself, so none is another's.
    """
    if fan_canceller is None:
        return
    fan_canceller.triggered.update(dict.fromkeys(fan_out.active_run_ids()))
    for state in (ItemState.SUCCEEDED, ItemState.FAILED):
        fan_canceller.ended.update(fan_out.run_ids[index] for index in fan_out.indexes(state))


def note_triggered(fan_canceller: FanOutCanceller | None, *, run_id: str, triggered: bool, log: Any) -> None:
    """
    Note a run whose trigger returned; cancel it at once if ``on_kill`` cancelled the others meanwhile.

    :param triggered: whether this task triggered it (``launch.send``'s answer).
    """
    if fan_canceller is None or not triggered:
        return
    fan_canceller.triggered[run_id] = None
    if fan_canceller.stop_reason is None:
        return
    # The SIGTERM came while this trigger was in flight: on_kill's pass did not know the run yet. Not in
    # the signal handler any more, so a plain request from here is safe.
    exchange = cancel_api.cancel_run(
        fan_canceller.canceller.access,
        dag_id=fan_canceller.dag_id,
        run_id=run_id,
        reason=fan_canceller.stop_reason,
    )
    try:
        outcome = cancel_api.run_sync(exchange, seconds=LATE_SECONDS, per_request=LATE_SECONDS)
    except cancel_api.ApiError as e:
        log.warning(
            "Could not cancel the Dag run triggered as the task was stopped", error=str(e), run_id=run_id
        )
        return
    cancel_api.report(outcome, log=log, dag_id=fan_canceller.dag_id, run_id=run_id)


def trigger_kwargs(fan_canceller: FanOutCanceller | None) -> dict[str, Any]:
    """The deferral's ``DagRunsTrigger`` arguments that let its ``on_kill`` cancel the fan-out's runs."""
    if fan_canceller is None:
        return {}
    return {
        "cancel_on_kill": True,
        "airflow_api_conn_id": fan_canceller.canceller.access.conn_id,
        "durable": fan_canceller.canceller.durable,
    }


def on_kill(fan_canceller: FanOutCanceller | None, *, log: Any) -> None:
    """
    Cancel the fan-out's active runs if the try was stopped for good; log why not otherwise. Never raises.

    Returns within :data:`~standard_ext.operators.modes.cancel.KILL_SECONDS`, whatever the API server does.

    :param fan_canceller: the task's :class:`FanOutCanceller`; ``None`` without ``cancel_on_kill`` or
        before ``execute()`` prepared it.
    :param log: the task's logger.
    """
    if fan_canceller is None or fan_canceller.canceller.attempted or fan_canceller.canceller.finished:
        return
    canceller = fan_canceller.canceller
    # Once: a second SIGTERM while the first is handled would run this again inside it.
    canceller.attempted = True
    # See ApiAccess.mask_tokens: the handler may have interrupted a message to it.
    canceller.access.mask_tokens = False
    # Decided even with no run active yet (the SIGTERM came during the first trigger): no item may
    # start after a stop for good, and the run whose trigger was in flight is cancelled when it returns.
    tally = cancel_runs.Tally(dag_id=fan_canceller.dag_id, run_ids=tuple(fan_canceller.active()))
    decide: cancel_runs.Decide | None = None
    if canceller.timed_out:
        tally.go, tally.reason = should_cancel_after_timeout(
            durable=canceller.durable, retries_left=canceller.retries_left
        )
    else:
        decide = cancel_mode.decider(canceller)
    if tally.go is not False:
        seconds = cancel_mode.KILL_SECONDS

        def work() -> Coroutine[Any, Any, None]:
            return cancel_runs.decide_then_cancel_all(
                canceller.access,
                tally,
                task=canceller.task,
                decide=decide,
                seconds=seconds - cancel_runs.THREAD_GRACE,
                # Each with what is left of the budget, not a slice of it: on SQLite, PATCHes sent at
                # once queue for its writer lock, and one that gave up waiting may still be applied,
                # unconfirmed (on a real Airflow, three at once each took over 1.5 s).
                per_request=seconds - cancel_runs.THREAD_GRACE,
            )

        try:
            cancel_runs.run_bounded(work, seconds=seconds)
        except Exception as e:
            # on_kill must return: an error here would only hide the log of what was done.
            tally.error = f"{type(e).__name__}: {e}"
    if tally.go:
        fan_canceller.stop_reason = tally.reason
    cancel_runs.report_all(tally, log=log)
