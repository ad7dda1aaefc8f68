"""
``auto_clear_failed_tasks``: sign in before anything is sent; resume a failed child run by clearing its failed tasks.

The clear is sent from the task, never from the triggerer: a deferred task resumes on a worker first, and
its retry decides.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from standard_ext.durable.decision import ACTIVE_STATES, Decision, SavedRun
from standard_ext.operators.modes.cancel_sign_in import (
    call_riding_out_blips,
    is_first_try_since_clear,
    sign_in,
)
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.resume.clear import (
    clear_failed_tasks,
    missing_clear_permission,
    sign_in_and_check_clear,
)
from standard_ext.wait.runs import child_state
from standard_ext.wait.stop_guard import Stoppable, refuse_if_stopped
from standard_ext.wait.stopped import StopNote

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    import standard_ext.api.access
    from standard_ext.launch.plan import Plan
    from standard_ext.operators.modes.protocols import SingleRunOperator

OPTION = "auto_clear_failed_tasks"


class SignedIn(Protocol):
    """What :func:`access_of` reads of an operator: both trigger operators have it."""

    @property
    def task_id(self) -> str:
        """The task, named in errors."""

    @property
    def rest_access(self) -> standard_ext.api.access.ApiAccess | None:
        """The access :func:`prepare` signed in with, in this process."""


class ResumeOptions(SignedIn, Protocol):
    """What :func:`prepare` reads of an operator: both trigger operators have it."""

    @property
    def auto_clear_failed_tasks(self) -> bool:
        """Whether to resume failed child runs at all."""

    @property
    def airflow_api_conn_id(self) -> str:
        """The connection to the API server."""

    @property
    def retries(self) -> int | None:
        """The task's ``retries``: with ``max_tries`` it tells the first try since a clear."""


#: Said after the missing permission when the sign-in check finds it missing.
NEEDS = "a failed child run is resumed by clearing its failed tasks"


def prepare(
    *,
    operator: ResumeOptions,
    context: Context,
    dag_id: str,
    signed_in: standard_ext.api.access.ApiAccess | None = None,
    resuming: bool = False,
) -> standard_ext.api.access.ApiAccess | None:
    """
    Sign in and check that the user may clear the child Dag's task instances; ``None`` without the option.

    Called before anything is triggered, as ``cancel_on_kill``'s sign-in is, with its rules: a missing
    connection or a refusal fails for good on the first try since a clear, the task's retries apply on a
    later one, and the API server's passing failures are ridden out.

    :param operator: the task's operator (``auto_clear_failed_tasks``, ``airflow_api_conn_id``, ``retries``).
    :param context: the task context (``ti``).
    :param dag_id: the child Dag, rendered.
    :param signed_in: the access ``cancel_on_kill`` already signed in with: only the check is sent.
    :param resuming: a deferred fan-out resuming with items still to clear: its runs exist, so no error
        may end the task for good.
    """
    if not operator.auto_clear_failed_tasks:
        return None
    final = not resuming and is_first_try_since_clear(ti=context["ti"], retries=operator.retries)
    if signed_in is None:
        return sign_in(
            task_id=operator.task_id,
            conn_id=operator.airflow_api_conn_id,
            final=final,
            check=lambda access: sign_in_and_check_clear(access, dag_id=dag_id),
            purpose=OPTION,
            needs=NEEDS,
        )
    prefix = f"Task {operator.task_id!r}: {OPTION}"
    missing = call_riding_out_blips(
        lambda: missing_clear_permission(signed_in, dag_id=dag_id),
        access=signed_in,
        prefix=prefix,
        final=final,
        what="check the permission to clear",
    )
    if missing:
        give_up = AirflowFailException if final else AirflowException
        raise give_up(
            f"{prefix}: the user {signed_in.username!r} of connection {signed_in.conn_id!r} may not "
            + " nor ".join(missing)
            + f"; {NEEDS}"
        )
    return signed_in


def prepare_single(
    *, operator: SingleRunOperator, context: Context
) -> standard_ext.api.access.ApiAccess | None:
    """:func:`prepare` for ``TriggerDagRunOperator``, on the access ``cancel_on_kill`` signed in with, if any."""
    canceller = operator.canceller
    return prepare(
        operator=operator,
        context=context,
        dag_id=str(operator.trigger_dag_id),
        signed_in=None if canceller is None else canceller.access,
    )


def clear_failed(
    *, operator: Stoppable, access: standard_ext.api.access.ApiAccess, dag_id: str, run_id: str
) -> list[str]:
    """
    Clear the run's failed tasks, riding out the API server's passing failures; return the tasks cleared.

    A refusal (or a failure that outlasts the blip rules) raises :class:`AirflowException`: the task's
    retries apply, and the retry finds the run as the clear left it. Once ``on_kill`` ran in this process
    no attempt is sent (:func:`~standard_ext.wait.stop_guard.refuse_if_stopped`), a blip's second one
    included.

    :param operator: the task's operator (its ``task_id``, and ``stopped_by``).
    """
    return call_riding_out_blips(
        lambda: clear_failed_tasks(access, dag_id=dag_id, run_id=run_id),
        access=access,
        prefix=f"Task {operator.task_id!r}: {OPTION}",
        final=False,
        what="clear the failed tasks of the child Dag run",
        before_each=lambda: refuse_if_stopped(
            operator, action="clear the failed tasks of the Dag run", dag_id=dag_id, run_id=run_id
        ),
    )


def held_failed_run(operator: SingleRunOperator, context: Context, plan: Plan) -> SavedRun | None:
    """
    With the option, the failed run that already holds a fixed run id: the one to resume instead of the stock answer.

    A ``trigger_run_id`` (or the id of a fixed ``logical_date``) names the same work on every try and every
    clear of the parent, so a failed run under it is that work, part done: it is cleared and waited on,
    as a retry of the stock operator would under the upstream proposal. ``None`` for an id with a random
    suffix (no run can hold it) and for a run in any other state.
    """
    if not operator.auto_clear_failed_tasks or plan.ours:
        return None
    if child_state(triggering_ti(context), plan.dag_id, plan.run_id) != "failed":
        return None
    ti = context["ti"]
    return SavedRun(dag_id=plan.dag_id, run_id=plan.run_id, max_tries=ti.max_tries, held=True)


def clear_saved_run(
    *,
    operator: SingleRunOperator,
    context: Context,
    saved: SavedRun,
    clear_number: int | None,
    log_fields: dict[str, Any],
) -> tuple[SavedRun, Decision]:
    """
    Resume the saved, failed run: record the clear, send it, and say what follows.

    Write-ahead, as for a trigger: the record counts the clear (and takes this try's ``max_tries``, so a
    later automatic retry is not taken for a person's clear) before the clear is sent. Whatever point a
    crash comes at, the retry reads the run's state and ends on the same run: still failed, the clear was
    not sent (or not taken) and is sent now; queued or running, it took, and the retry waits.

    :return: the record now in force, and ``RECONNECT`` (wait on the run), ``ALREADY_FINISHED`` (it ended
        in an allowed state meanwhile), or ``RESUBMIT`` (it failed with no failed task to clear: a run
        marked failed by hand or timed out, whose unfinished tasks were skipped; a fresh run replaces it,
        as without the option).
    """
    ti, store = context["ti"], context["task_state_store"]
    ids = {"dag_id": saved.dag_id, "run_id": saved.run_id}
    record = replace(
        saved,
        max_tries=ti.max_tries,
        clear_number=clear_number,
        ended=None,
        clears=saved.clears + 1,
        held=False,
    )
    refuse_if_stopped(operator, action="clear the failed tasks of the Dag run", **ids)
    store.set(operator.external_id_key, record.to_json())
    operator.stop_note = StopNote(ti=ti, store=store, key=operator.external_id_key, record=record)
    operator.log.info(
        "The Dag run saved by an earlier try failed; clearing its failed tasks",
        clears=record.clears,
        **ids,
        **log_fields,
    )
    cleared = clear_failed(operator=operator, access=access_of(operator), **ids)
    if cleared:
        operator.log.info(
            "Cleared the failed tasks of the Dag run; waiting on it again", tasks=cleared, **ids
        )
        # Queued again just now: checked a second from now, as a run this try triggered.
        operator.triggered_at = time.time()
        return record, Decision.RECONNECT
    state = child_state(triggering_ti(context), saved.dag_id, saved.run_id)
    if state in ACTIVE_STATES:
        operator.log.info(
            "Nothing left to clear: an earlier clear took; waiting on the Dag run", state=state, **ids
        )
        return record, Decision.RECONNECT
    if state in operator.allowed_states:
        operator.child_end = state
        return record, Decision.ALREADY_FINISHED
    operator.log.warning(
        "The Dag run has no failed task to clear (marked failed, or timed out); triggering a fresh one",
        state=state,
        **ids,
    )
    return record, Decision.RESUBMIT


def access_of(operator: SignedIn) -> standard_ext.api.access.ApiAccess:
    """The access ``prepare`` signed in with; an error if it did not (a clear before the sign-in)."""
    if operator.rest_access is None:
        raise AirflowException(f"Task {operator.task_id!r}: {OPTION} was not signed in before the clear")
    access: standard_ext.api.access.ApiAccess = operator.rest_access
    return access
