"""The operator's ``cancel_on_kill``: sign in before triggering; cancel the child run from ``on_kill``."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.exceptions import (
    AirflowTaskTimeout,
    TaskDeferred,
)

from standard_ext.cancel import api as cancel_api
from standard_ext.cancel import runs as cancel_runs
from standard_ext.cancel.decision import Killed, Parent, Try, should_cancel, should_cancel_after_timeout
from standard_ext.operators.modes.cancel_sign_in import is_first_try_since_clear, sign_in

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk.definitions.context import Context


#: After a SIGTERM the supervisor sends SIGKILL 5 s later (hard-coded). on_kill keeps to this much of it,
#: so the wait still has a moment to note a durable stop in the record (standard_ext.wait.stopped).
KILL_SECONDS = 3.5
# No request gets less than the whole budget: on SQLite a PATCH queues for the one writer lock behind the
# scheduler's own writes (which the stop itself sets off), and on a real Airflow one took over 1.5 s.
KILL_REQUEST_SECONDS = KILL_SECONDS


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
    :func:`standard_ext.cancel.decision.should_cancel`), and sets the child run ``failed`` if it is
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
        :data:`~standard_ext.operators.modes.cancel_sign_in.SIGN_IN_RETRY_SECONDS`, or any error once a child run may exist): the task's retries
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
            check=lambda access: cancel_api.sign_in_and_check(
                access, task=task, dag_id=operator.trigger_dag_id
            ),
        ),
        task=task,
        durable=operator.durable,
        # As the server decides at the start of the try; a retry_policy may still say otherwise.
        retries_left=ti.try_number <= ti.max_tries,
    )


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

    The judgement is :func:`~standard_ext.cancel.decision.should_cancel`'s.

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
