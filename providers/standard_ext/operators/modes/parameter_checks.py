"""The operator's own checks of its parameters, made when it is built: before anything is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from standard_ext.wait.progress import Watch
from standard_ext.wait.results import check_task_ids
from standard_ext.wait.schedule import Schedule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator


def refuse_contradictions(
    *,
    task_id: str,
    wait_for_completion: bool,
    result_task_ids: object,
    fail_fast: bool,
    critical_task_ids: object,
    attach_when_already_exists: bool,
    skip_when_already_exists: bool,
    reset_dag_run: bool,
) -> None:
    """
    Refuse parameters that cannot work together, naming them and the task.

    :param task_id: the task, named in the error.
    :raises ValueError: a combination that would be silently ignored or contradict itself.
    """
    if attach_when_already_exists and (skip_when_already_exists or reset_dag_run):
        other = "skip_when_already_exists" if skip_when_already_exists else "reset_dag_run"
        raise ValueError(
            f"Task {task_id!r}: attach_when_already_exists and {other} are two answers to the "
            "same question (what to do when the run already exists); choose one"
        )
    needs_wait = [
        name
        for name, value in (
            ("result_task_ids", result_task_ids),
            ("fail_fast", fail_fast or None),
            ("critical_task_ids", critical_task_ids),
        )
        if value is not None
    ]
    if needs_wait and not wait_for_completion:
        # Without the wait there is no run to read a result from, nor one to fail early.
        raise ValueError(
            f"Task {task_id!r}: {', '.join(needs_wait)} needs wait_for_completion=True; "
            "without waiting for the child run there is nothing for it to act on"
        )
    if critical_task_ids is not None and not fail_fast:
        raise ValueError(
            f"Task {task_id!r}: critical_task_ids only narrows fail_fast; set fail_fast=True too"
        )


def check_schedule(*, task_id: str, poke_interval: float, fast_poll_window: float) -> None:
    """
    Make the trigger's own schedule checks at construction.

    Refused later, a bad value would surface only after the child was triggered; and a zero
    ``poke_interval`` would spin the synchronous wait.

    :param task_id: the task, named in the error.
    :raises ValueError: a value the schedule cannot use.
    """
    try:
        Schedule(waiting_since=0.0, poke_interval=poke_interval, fast_poll_window=fast_poll_window)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Task {task_id!r}: {e}") from None


def check_cancel_on_kill(*, task_id: str, cancel_on_kill: object, airflow_api_conn_id: object) -> None:
    """
    Refuse a ``cancel_on_kill`` that is not a bool, or one with no connection to cancel through.

    :param task_id: the task, named in the error.
    :raises ValueError: naming the parameter.
    """
    # A string such as "false" would be truthy: cancelling runs nobody asked to cancel.
    _check_api_option(
        task_id=task_id,
        name="cancel_on_kill",
        value=cancel_on_kill,
        conn_id=airflow_api_conn_id,
        verb="cancels",
    )


def _check_api_option(*, task_id: str, name: str, value: object, conn_id: object, verb: str) -> None:
    """Refuse an option that goes through the REST API when it is not a bool, or names no connection."""
    if not isinstance(value, bool):
        raise ValueError(
            f"Task {task_id!r}: {name} must be True or False, not {type(value).__name__} {value!r}"
        )
    if value and (not isinstance(conn_id, str) or not conn_id.strip()):
        raise ValueError(
            f"Task {task_id!r}: airflow_api_conn_id must name the Airflow connection to the API server "
            f"that {name} {verb} through, not {conn_id!r}"
        )


def check_auto_clear(
    *,
    task_id: str,
    auto_clear_failed_tasks: object,
    durable: bool,
    wait_for_completion: bool,
    airflow_api_conn_id: object,
) -> None:
    """
    Refuse an ``auto_clear_failed_tasks`` that is not a bool, or that could never act.

    :param task_id: the task, named in the error.
    :raises ValueError: naming the parameter.
    """
    _check_api_option(
        task_id=task_id,
        name="auto_clear_failed_tasks",
        value=auto_clear_failed_tasks,
        conn_id=airflow_api_conn_id,
        verb="clears",
    )
    if not auto_clear_failed_tasks:
        return
    if not durable:
        # Without the record a retry does not know which run it triggered, so there is none to resume.
        raise ValueError(
            f"Task {task_id!r}: auto_clear_failed_tasks needs durable=True: a retry resumes the failed "
            "child run that the durable record names"
        )
    if not wait_for_completion:
        raise ValueError(
            f"Task {task_id!r}: auto_clear_failed_tasks needs wait_for_completion=True; without waiting "
            "for the child run the task never learns that it failed"
        )


#: What a templated ``trigger_run_id`` renders to when its value was missing: ``{{ x or None }}`` gives
#: ``None`` with native rendering and the text ``"None"`` without; an empty param gives ``""``.
UNMEANT_RUN_IDS = (None, "None", "")


def check_rendered_run_id(value: object, *, task_id: str, given: bool) -> None:
    """
    Refuse a ``trigger_run_id`` that was given but rendered to what cannot be meant as a run id.

    The stock operator takes a falsy one as "generate an id" and the text ``"None"`` as a run id, so a
    request id left empty would make every request share run ``None`` (and with
    ``attach_when_already_exists`` get the first request's answer back).

    :param value: the rendered ``trigger_run_id``.
    :param task_id: the task, named in the error.
    :param given: whether the task was built with a ``trigger_run_id`` (``None`` asks for a generated id).
    :raises ValueError: naming the task, the parameter and the value.
    """
    if given and (value in UNMEANT_RUN_IDS or (isinstance(value, str) and not value.strip())):
        raise ValueError(
            f"Task {task_id!r}, parameter trigger_run_id: it rendered to {value!r}, which cannot be meant "
            "as a run id; give a template that always renders an id (for instance "
            "\"{{ params.request_id or run_id ~ '__try' ~ ti.try_number }}\"), or leave trigger_run_id unset "
            "for a generated one"
        )


def check_arguments(
    operator: TriggerDagRunOperator,
    *,
    result_task_ids: Sequence[str] | str | None,
    fail_fast: bool,
    critical_task_ids: Sequence[str] | str | None,
    attach_when_already_exists: bool,
    fast_poll_window: float,
    cancel_on_kill: bool,
    airflow_api_conn_id: str,
    auto_clear_failed_tasks: bool = False,
    durable: bool = True,
) -> None:
    """
    Refuse the constructor arguments of ``TriggerDagRunOperator`` that contradict each other or make no sense.

    :param operator: the operator being built, its stock arguments set (``task_id``, ``poke_interval``...).
    """
    refuse_contradictions(
        task_id=operator.task_id,
        wait_for_completion=operator.wait_for_completion,
        result_task_ids=result_task_ids,
        fail_fast=fail_fast,
        critical_task_ids=critical_task_ids,
        attach_when_already_exists=attach_when_already_exists,
        skip_when_already_exists=operator.skip_when_already_exists,
        reset_dag_run=operator.reset_dag_run,
    )
    check_schedule(
        task_id=operator.task_id, poke_interval=operator.poke_interval, fast_poll_window=fast_poll_window
    )
    check_cancel_on_kill(
        task_id=operator.task_id, cancel_on_kill=cancel_on_kill, airflow_api_conn_id=airflow_api_conn_id
    )
    check_auto_clear(
        task_id=operator.task_id,
        auto_clear_failed_tasks=auto_clear_failed_tasks,
        durable=durable,
        wait_for_completion=operator.wait_for_completion,
        airflow_api_conn_id=airflow_api_conn_id,
    )


def early_end_rules(
    *,
    task_id: str,
    fail_fast: bool,
    result_task_ids: Sequence[str] | str | None,
    critical_task_ids: Sequence[str] | str | None,
) -> Watch:
    """
    The early-end rules of a task, its templated task ids rendered and checked.

    :param task_id: the task, for the error message.
    :param fail_fast: end the wait when a task of the child run fails.
    :param result_task_ids: the tasks whose success ends the wait (rendered).
    :param critical_task_ids: the tasks whose failure fails the wait (rendered).
    """
    results = check_task_ids(result_task_ids, task_id=task_id, parameter="result_task_ids")
    critical = check_task_ids(critical_task_ids, task_id=task_id, parameter="critical_task_ids")
    return Watch(
        fail_fast=fail_fast,
        critical_task_ids=tuple(critical) if critical else None,
        result_task_ids=tuple(results) if results else None,
    )
