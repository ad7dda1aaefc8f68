"""The operator's ``cancel_on_kill``: sign in before triggering; cancel the child run from ``on_kill``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowTaskTimeout,
    TaskDeferred,
)

from standard_ext import cancel_api, cancel_runs, poll_schedule
from standard_ext.cancel_decision import Killed, Parent, Try, should_cancel, should_cancel_after_timeout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk.definitions.context import Context

log = structlog.get_logger(__name__)

#: After a SIGTERM the supervisor sends SIGKILL 5 s later (hard-coded). on_kill keeps to this much of it,
#: so the wait still has a moment to note a durable stop in the record (standard_ext.stopped).
KILL_SECONDS = 3.5
# No request gets less than the whole budget: on SQLite a PATCH queues for the one writer lock behind the
# scheduler's own writes (which the stop itself sets off), and on a real Airflow one took over 1.5 s.
KILL_REQUEST_SECONDS = KILL_SECONDS
# Signing in from execute(): no SIGKILL waits there, only execution_timeout.
SIGN_IN_SECONDS = 30.0
SIGN_IN_REQUEST_SECONDS = 10.0
#: How long a sign-in keeps trying while the API server fails (nothing answers, a timeout, a 5xx): longer
#: than an API server takes to restart (about a minute on 2 cores), shorter than the scheduler's 300 s
#: task_instance_heartbeat_timeout. Past it the try fails, and its retries apply.
SIGN_IN_RETRY_SECONDS = 120.0
#: The wait after the first failed sign-in; each next wait doubles, up to :data:`SIGN_IN_LONGEST_WAIT`.
SIGN_IN_FIRST_WAIT = 1.0
#: The longest wait between two sign-ins.
SIGN_IN_LONGEST_WAIT = 15.0


class CancelOptions(Protocol):
    """What :func:`prepare` reads of an operator: both trigger operators have it."""

    @property
    def task_id(self) -> str:
        """The task, named in errors."""

    @property
    def cancel_on_kill(self) -> bool:
        """Whether to cancel at all."""

    @property
    def airflow_api_conn_id(self) -> str:
        """The connection to the API server."""

    @property
    def durable(self) -> bool:
        """Whether a retry reconnects to the child runs instead of triggering others."""

    @property
    def trigger_dag_id(self) -> str:
        """The child Dag, rendered: the start-up check asks to read its runs."""

    @property
    def retries(self) -> int | None:
        """The task's ``retries``: with ``max_tries`` it tells the first try since a clear."""


@dataclass
class Child:
    """The child run ``on_kill`` would cancel; ``not_ours`` says why it may not, when it may not."""

    dag_id: str
    run_id: str
    not_ours: str | None = None


@dataclass
class Canceller:
    """
    What ``on_kill`` needs to cancel the child run, gathered in ``execute()`` before anything is sent.

    **Purpose:** with ``cancel_on_kill``, a parent that is stopped for good (marked failed or success,
    cleared, its Dag run timed out, or ``execution_timeout`` on its last try) takes its child run down
    with it, instead of leaving it running for nobody.

    **How it works:** ``execute()`` reads the connection and signs in first, so a missing connection
    or refused credentials fail the task before a child exists. ``on_kill`` then sends no message to
    the supervisor: it runs in the SIGTERM handler, on the main thread, which may hold the channel's
    lock at that moment (not re-entrant), or after an ``execution_timeout`` that may have left an
    answer unread on it. It uses plain HTTP to the public REST API with what was gathered here: reads
    the parent task instance's live state to learn why the SIGTERM came (see
    :func:`standard_ext.cancel_decision.should_cancel`), and sets the child run ``failed`` if it is
    not over yet.

    **What it does not do:** cancel a run the task attached to (``attach_when_already_exists``), which
    another parent may share; cancel a run a durable retry would reconnect to; retry a failed request
    (the SIGKILL is seconds away).
    """

    access: cancel_api.ApiAccess
    task: cancel_api.TaskRef
    durable: bool
    retries_left: bool
    child: Child | None = None
    timed_out: bool = False
    attempted: bool = False
    #: ``execute()`` (or the resume) ended on its own: a later ``on_kill`` cancels nothing.
    finished: bool = False


def prepare(*, operator: CancelOptions, context: Context, resuming: bool = False) -> Canceller | None:
    """
    Sign in to the API server and return what ``on_kill`` needs; fail the task if that cannot be done.

    :param operator: the task's operator; ``None`` is returned unless its ``cancel_on_kill`` is set.
    :param context: the task context (``ti``).
    :param resuming: a deferred task resuming: its child runs exist, so no error may be final.
    :raises AirflowFailException: the connection is missing or incomplete, or the API server refused
        the credentials, on the first try since the task was last cleared (nothing triggered yet):
        configuration errors, which a retry would not mend.
    :raises AirflowException: anything else, on any try (the API server kept failing for
        :data:`SIGN_IN_RETRY_SECONDS`, or any error once a child run may exist): the task's retries
        apply, and a durable retry reconnects.
    """
    if not operator.cancel_on_kill:
        return None
    ti = context["ti"]
    task = cancel_api.TaskRef.of(ti)
    return Canceller(
        access=sign_in(
            task_id=operator.task_id,
            conn_id=operator.airflow_api_conn_id,
            final=not resuming and is_first_try_since_clear(ti=ti, retries=operator.retries),
            check=(task, operator.trigger_dag_id),
        ),
        task=task,
        durable=operator.durable,
        # As the server decides at the start of the try; a retry_policy may still say otherwise.
        retries_left=ti.try_number <= ti.max_tries,
    )


def is_first_try_since_clear(*, ti: Any, retries: int | None) -> bool:
    """
    Whether this is the first try since the task was last cleared (or created), so no try triggered yet.

    Airflow's own reckoning (``max_tries - retries + 1``): a clear sets ``max_tries`` to the try
    number plus ``retries``, and automatic retries leave it. A try a scheduler reset added counts as a
    later one.
    """
    return bool(ti.try_number <= ti.max_tries - (retries or 0) + 1)


def sign_in(
    *, task_id: str, conn_id: str, final: bool = True, check: tuple[cancel_api.TaskRef, str] | None = None
) -> cancel_api.ApiAccess:
    """
    Read the connection and get a token, or raise naming the connection (see :func:`prepare`).

    The API server's own failures (nothing answered, a timeout, a 5xx, a 429) are retried, with waits
    that double from :data:`SIGN_IN_FIRST_WAIT` up to :data:`SIGN_IN_LONGEST_WAIT`, for
    :data:`SIGN_IN_RETRY_SECONDS`: an API server restarting must not end the task.

    :param final: missing or refused credentials fail for good (:class:`AirflowFailException`); else
        every error is an :class:`AirflowException`, which the task's retries apply to.
    :param check: the parent task instance and the child Dag: once signed in, ask for what the cancel
        reads (:func:`standard_ext.cancel_api.sign_in_and_check`) and fail as for refused credentials,
        naming each missing permission.
    """
    prefix = f"Task {task_id!r}: cancel_on_kill"
    give_up = AirflowFailException if final else AirflowException
    try:
        access = cancel_api.ApiAccess.from_connection(BaseHook.get_connection(conn_id), conn_id=conn_id)
    except AirflowNotFoundException:
        raise give_up(
            f"{prefix} needs the Airflow connection {conn_id!r} (airflow_api_conn_id), which is not "
            "defined: an http connection whose host is the API server's URL and whose login may edit "
            "Dag runs"
        ) from None
    except ValueError as e:
        raise give_up(f"{prefix}: {e}") from None
    where = f"the Airflow API at {access.base_url} (connection {conn_id!r})"
    started, wait = time.time(), SIGN_IN_FIRST_WAIT
    while True:
        try:
            exchange = (
                cancel_api.sign_in(access)
                if check is None
                else cancel_api.sign_in_and_check(access, task=check[0], dag_id=check[1])
            )
            missing = cancel_api.run_sync(
                exchange, seconds=SIGN_IN_SECONDS, per_request=SIGN_IN_REQUEST_SECONDS
            )
            break
        except cancel_api.ApiError as e:
            if not is_transient(e):
                refused = e.status in (401, 403)
                raise give_up(
                    f"{prefix}: {where} {'refused the credentials' if refused else 'failed'}: {e}"
                ) from None
            failing_for = time.time() - started
            if failing_for + wait > SIGN_IN_RETRY_SECONDS:
                raise AirflowException(
                    f"{prefix}: {where} did not answer for {failing_for:.0f} s: {e}; the task's retries apply"
                ) from None
            log.warning(
                "Could not sign in to the Airflow API; trying again",
                conn_id=conn_id,
                error=str(e),
                failing_for=round(failing_for, 1),
                next_in=wait,
            )
            poll_schedule.wait(wait)
            wait = min(wait * 2, SIGN_IN_LONGEST_WAIT)
    if isinstance(missing, list) and missing:
        raise give_up(
            f"{prefix}: the user {access.username!r} of connection {conn_id!r} may not "
            + " nor ".join(missing)
            + "; a cancel needs both (and edit on the child Dag's runs)"
        )
    return access


def is_transient(error: cancel_api.ApiError) -> bool:
    """Whether a failed request is the API server's passing trouble: nothing answered, a 5xx, or a 429."""
    return error.status is None or error.status >= 500 or error.status == 429


def note_triggered(canceller: Canceller | None, *, dag_id: str, run_id: str, triggered: bool) -> None:
    """
    Note the run this try triggered, or attached to (``triggered=False``).

    :param canceller: the task's :class:`Canceller`; ``None`` without ``cancel_on_kill``.
    """
    if canceller is not None:
        not_ours = None if triggered else "it was attached to or reset, not created by this task"
        canceller.child = Child(dag_id=dag_id, run_id=run_id, not_ours=not_ours)


def note_waiting(canceller: Canceller | None, *, dag_id: str, run_id: str, may_have_attached: bool) -> None:
    """
    Note the run the task waits on, when this try did not trigger it: a durable retry reconnected.

    An earlier try triggered it, unless the task may attach: the record does not say which it did,
    so such a run is never cancelled.

    :param canceller: the task's :class:`Canceller`; ``None`` without ``cancel_on_kill``.
    :param may_have_attached: the task has ``attach_when_already_exists``.
    """
    if canceller is None:
        return
    if canceller.child is not None and (canceller.child.dag_id, canceller.child.run_id) == (dag_id, run_id):
        return
    not_ours = (
        "with attach_when_already_exists, an earlier try may have attached to it"
        if may_have_attached
        else None
    )
    canceller.child = Child(dag_id=dag_id, run_id=run_id, not_ours=not_ours)


@contextmanager
def watching_the_try(canceller: Canceller | None) -> Iterator[None]:
    """
    Note how ``execute()`` (or a resume) ends, for an ``on_kill`` that comes after it.

    An ``execution_timeout``: the task runner calls ``on_kill`` once it has left ``execute()``, which
    then cancels without asking why. Any other end (a return, a failure, a deferral): the try is over on
    its own terms, and a later ``on_kill`` cancels nothing. Airflow sends one to a process that lingers
    after its task finished (the supervisor's ``task_success_overtime``), when the API shows the task
    ``success`` or ``failed``: that must not fail a child the task left running on purpose
    (``wait_for_completion=False``, or a failure the task did not cancel for).
    """
    try:
        yield
    except AirflowTaskTimeout:
        if canceller is not None:
            canceller.timed_out = True
        raise
    except (Exception, TaskDeferred):
        # The task's own failure, or its deferral: the trigger takes the wait (and the cancel) over.
        if canceller is not None:
            canceller.finished = True
        raise
    if canceller is not None:
        canceller.finished = True


def trigger_kwargs(canceller: Canceller | None, *, dag_id: str, run_id: str) -> dict[str, Any]:
    """The deferral's ``DagRunTrigger`` arguments that let its ``on_kill`` cancel the run, if it may."""
    child = None if canceller is None else canceller.child
    if (
        canceller is None
        or child is None
        or child.not_ours
        or (child.dag_id, child.run_id) != (dag_id, run_id)
    ):
        return {}
    return {
        "cancel_on_kill": True,
        "airflow_api_conn_id": canceller.access.conn_id,
        "durable": canceller.durable,
    }


def on_kill(canceller: Canceller | None, *, log: Any) -> None:
    """
    Cancel the child run if the try was stopped for good; log why not otherwise. Never raises.

    :param canceller: the task's :class:`Canceller`; ``None`` without ``cancel_on_kill`` or before
        ``execute()`` prepared it.
    :param log: the task's logger.
    """
    if canceller is None or canceller.child is None or canceller.attempted or canceller.finished:
        return
    # Once: a second SIGTERM while the first is handled would run this again inside it.
    canceller.attempted = True
    canceller.access.mask_tokens = False
    child = canceller.child
    ids = {"dag_id": child.dag_id, "run_id": child.run_id}
    if child.not_ours is not None:
        log.info(
            "Not cancelling the Dag run: this task did not create it",
            reason=child.not_ours,
            **ids,
        )
        return
    exchange: cancel_api.Exchange[cancel_api.Outcome]
    if canceller.timed_out:
        go, reason = should_cancel_after_timeout(
            durable=canceller.durable, retries_left=canceller.retries_left
        )
        if not go:
            log.info("Not cancelling the Dag run", reason=reason, **ids)
            return
        exchange = cancel_api.cancel_run(
            canceller.access, dag_id=child.dag_id, run_id=child.run_id, reason=reason
        )
    else:
        exchange = cancel_api.decide_then_cancel(
            canceller.access,
            task=canceller.task,
            dag_id=child.dag_id,
            run_id=child.run_id,
            decide=decider(canceller),
        )
    outcomes: list[cancel_api.Outcome] = []

    async def work() -> None:
        seconds = KILL_SECONDS - cancel_runs.THREAD_GRACE
        outcomes.append(await cancel_api.run_async(exchange, seconds=seconds, per_request=seconds))

    try:
        # In a thread of its own, waited for KILL_SECONDS at most: no request timeout bounds a name
        # lookup or a server that drips its answer, and the SIGKILL follows 5 s after the SIGTERM.
        in_time = cancel_runs.run_bounded(work, seconds=KILL_SECONDS)
    except cancel_api.ApiError as e:
        log.warning("Not cancelling the Dag run: a request to the Airflow API failed", error=str(e), **ids)
        return
    if not in_time or not outcomes:
        log.warning("Not cancelling the Dag run: the Airflow API did not answer in time", **ids)
        return
    cancel_api.report(outcomes[0], log=log, dag_id=child.dag_id, run_id=child.run_id)


def decider(canceller: Canceller) -> Callable[[Parent], tuple[bool, str]]:
    """
    Judge a SIGTERM for this try from the parent as the API shows it now.

    The judgement is :func:`~standard_ext.cancel_decision.should_cancel`'s.

    :param canceller: the task's :class:`Canceller`: the try, ``durable`` and whether retries are left.
    """
    stopped = Try(
        try_number=canceller.task.try_number,
        max_tries=canceller.task.max_tries,
        durable=canceller.durable,
        retries_left=canceller.retries_left,
        killed=Killed.TASK,
    )

    def decide(parent: Parent) -> tuple[bool, str]:
        return should_cancel(parent=parent, stopped=stopped)

    return decide
