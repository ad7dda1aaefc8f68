"""Launching the planned child run: making sure a conflict on its id is ours, triggering it, publishing it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import XCOM_RUN_ID, TriggerDagRunLink
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from standard_ext.wait.runs import child_state
from task_sdk_ext import DagRunAlreadyExists

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from standard_ext.durable.decision import Decision
    from standard_ext.launch.plan import Plan
    from task_sdk_ext.protocols import TriggeringTaskInstance

XCOM_DAG_ID = "trigger_dag_id"


@dataclass(frozen=True)
class WhenExists:
    """
    What to do when a run that this task did not trigger already holds the planned id.

    Stock's three answers (fail, ``skip_when_already_exists``, ``reset_dag_run``) and ours, ``attach``:
    wait on that run as if this task had triggered it.
    """

    attach: bool = False
    skip: bool = False
    reset: bool = False

    def answer(self, plan: Plan) -> None:
        """Give the answer for ``plan``'s run, which exists: raise, or return when attaching to it."""
        if self.attach:
            return
        if self.skip:
            raise AirflowSkipException(
                f"Dag {plan.dag_id!r} already has a run {plan.run_id!r}; skipping (skip_when_already_exists)"
            )
        # Retrying cannot make someone else's run ours, so fail without retries.
        raise AirflowFailException(
            f"Dag {plan.dag_id!r} already has a run {plan.run_id!r} that this task did not trigger; "
            "set reset_dag_run=True to run it again or skip_when_already_exists=True to skip"
        )


def claim(*, ti: TriggeringTaskInstance, plan: Plan, when_exists: WhenExists) -> Plan:
    """
    Make sure a run id that another run may hold is free before triggering it, so a conflict is ours.

    An id with a random suffix generated in this try needs no check. A ``trigger_run_id``, or the
    ``manual__<logical_date>`` of a fixed logical date, is looked up first: if a run holds it, the
    stock rules apply (skip or fail) before anything is triggered, or, when attaching, the plan is
    marked ``attach`` and nothing will be triggered. Returns the plan marked ``ours``.

    :param ti: the task instance whose accessors ask the execution API.
    :param plan: the run to trigger.
    :param when_exists: the answer when the id is taken.
    """
    if plan.ours or when_exists.reset:
        return plan
    if child_state(ti, plan.dag_id, plan.run_id) is not None:
        when_exists.answer(plan)
        return replace(plan, ours=True, attach=True)
    return replace(plan, ours=True)


def send(
    *,
    ti: TriggeringTaskInstance,
    plan: Plan,
    when_exists: WhenExists,
    reset: bool,
    log: FilteringBoundLogger,
    log_fields: dict[str, Any],
) -> bool:
    """
    Trigger ``plan``'s run, unless it is one to attach to; log it; return whether this task triggered it.

    ``False`` for a run attached to, including one that turned out to exist when attaching: another task
    may have triggered it in between, so it is not known to be this task's (``cancel_on_kill`` spares it).

    :param ti: the task instance whose accessor triggers.
    :param plan: the run to trigger.
    :param when_exists: the answer when the id turns out taken by a run that is not ours.
    :param reset: clear and re-run the run if it exists (it is ours, or ``reset_dag_run``).
    :param log: the task's logger.
    :param log_fields: the fields every line logs (ids, decision, try).
    """
    if plan.attach:
        log.info("Attaching to the Dag run that already exists (attach_when_already_exists)", **log_fields)
        return False
    try:
        ti.trigger_dag_run(
            plan.dag_id,
            plan.run_id,
            conf=plan.conf,
            logical_date=plan.logical_date,
            run_after=plan.run_after,
            reset_dag_run=reset or when_exists.reset,
            note=plan.note,
        )
    except DagRunAlreadyExists:
        if not plan.ours:
            when_exists.answer(plan)
        if child_state(ti, plan.dag_id, plan.run_id) is None:
            # Stock's task runner skips on any "already exists" with skip_when_already_exists: so do we.
            if when_exists.skip:
                raise AirflowSkipException(
                    f"{held_elsewhere(plan)}; skipping (skip_when_already_exists)"
                ) from None
            raise AirflowFailException(
                f"{held_elsewhere(plan)}. Give another logical_date, or None"
            ) from None
        # No other run held the id (it was new in this try, or checked free): the run was created by
        # our own request, whose answer was lost and retried by the client; or, when attaching,
        # another task triggered it in between, and waiting on it is what attaching asks for.
        log.warning(
            "The trigger answered 'already exists' for the run this task planned; it is ours", **log_fields
        )
        return not when_exists.attach
    log.info("Triggered child Dag run", **log_fields)
    return True


def held_elsewhere(plan: Plan) -> str:
    """
    The error for an "already exists" answer when no run holds the planned id: the conflict is elsewhere.

    Airflow keeps one run per Dag and logical date (``dag_run_dag_id_logical_date_key``). The route
    looks for a duplicate run id only, so a logical date another run holds breaks that constraint on
    insert; the execution API answers any unique-constraint violation with a 409, which the Task SDK's
    client reports as "already exists", whatever the key. No retry frees the date, so the task fails
    without retrying, or skips with ``skip_when_already_exists`` as the stock operator's task runner does.

    :param plan: the run that could not be created.
    """
    return (
        f"Dag {plan.dag_id!r} refused run {plan.run_id!r} as already existing, but no run has that id: "
        f"another run of the Dag holds its logical_date {plan.logical_date!r} "
        "(Airflow keeps one run per Dag and logical date)"
    )


def publish(*, ti: Any, dag_id: str, run_id: str) -> None:
    """
    Push the XComs the "Triggered DAG" link and downstream tasks read; again after a reconnect.

    :param ti: the running task instance (``context["ti"]``).
    :param dag_id: the child Dag.
    :param run_id: the child run.
    """
    from airflow.utils.helpers import build_airflow_dagrun_url

    ti.xcom_push(key=XCOM_RUN_ID, value=run_id)
    ti.xcom_push(key=XCOM_DAG_ID, value=dag_id)
    ti.xcom_push(
        key=TriggerDagRunLink().xcom_key, value=build_airflow_dagrun_url(dag_id=dag_id, run_id=run_id)
    )


def decision_fields(*, plan: Plan, decision: Decision, try_number: int) -> dict[str, Any]:
    """The fields a trigger's log lines carry."""
    return {
        "dag_id": plan.dag_id,
        "run_id": plan.run_id,
        "decision": decision.value,
        "try_number": try_number,
    }
