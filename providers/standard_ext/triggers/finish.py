"""
End the parent task from the triggerer when its child run succeeded, so no worker has to resume it.

A deferred task that resumes costs a trip through the scheduler and a worker: the event is stored, the
scheduler queues the task, a worker starts a process, imports the Dag file and runs the resume method,
only to return a result. On 2 cores that trip takes 1 to 2 s and holds a worker slot for it, which is
most of a deferrable parent's detection latency and, across a fan-out, slot time the children need.
Airflow 3 lets a trigger end its task instead (``TaskSuccessEvent``): the triggerer marks it
``success``, pushes its XComs and sends its success callbacks to the Dag processor.

The trigger does this only for a success whose outcome it can reproduce exactly (the operator decides at
deferral whether the task may end here at all, see
:func:`~standard_ext.operators.modes.deferrable.why_resume_on_worker`): the run succeeded (or its result tasks
did, the early success), and the result (``result_task_ids``) could be read here and pushed (through
``XCom.set``, as a worker pushes it). Anything else, a failure included, resumes the task on a worker, where
the operator raises with its message and the task's retries apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from airflow.triggers.base import TaskSuccessEvent
from asgiref.sync import sync_to_async

from standard_ext.wait.results import collect_results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from standard_ext.triggers.shared_poll import RunOutcome

log = structlog.get_logger(__name__)


def succeeded(outcome: RunOutcome) -> bool:
    """
    Whether the wait ended in the success the operator would return from: the run's, or its result tasks'.

    :param outcome: what the wait ended with.
    """
    if outcome.early is not None:
        return outcome.early.failure is None
    return outcome.error is None and outcome.state == "success"


async def success_event(
    *,
    dag_id: str,
    run_id: str,
    result_task_ids: Sequence[str] | None,
    push_result: bool,
    dag_result: bool,
    parent: Any,
) -> TaskSuccessEvent | None:
    """
    Push the child's result as the parent's ``return_value`` and return the event that ends the parent.

    ``None`` means resume the task on a worker instead: the result could not be read or pushed here.

    :param dag_id: the child Dag.
    :param run_id: the child run, which succeeded.
    :param result_task_ids: the tasks whose ``return_value`` XComs are the result; none, no result.
    :param push_result: whether the task pushes its return value (``do_xcom_push``).
    :param dag_result: whether that value is its Dag's result (``returns_dag_result``), as a worker
        would flag it.
    :param parent: the deferred task instance (the trigger's ``task_instance``); ``None`` where no
        triggerer set it (``dag.test()``).
    """
    result: Any = None
    if result_task_ids:
        try:
            result = await sync_to_async(collect_results)(
                dag_id=dag_id, run_id=run_id, task_ids=list(result_task_ids)
            )
        except Exception as e:
            # The worker reads it again and, if it fails there too, raises with the operator's message,
            # as every other failure of this operator does, and the task's retries apply.
            _resume_instead("the result could not be read here", dag_id=dag_id, run_id=run_id, error=e)
            return None
    if push_result and result is not None:
        if parent is None:
            _resume_instead("no task instance to push the result for", dag_id=dag_id, run_id=run_id)
            return None
        try:
            await sync_to_async(_push)(parent=parent, value=result, dag_result=dag_result)
        except Exception as e:
            _resume_instead("the result could not be pushed here", dag_id=dag_id, run_id=run_id, error=e)
            return None
        log.info(
            "Returning the Dag run's result", dag_id=dag_id, run_id=run_id, tasks=list(result_task_ids or ())
        )
    log.info("Ending the task here: the Dag run succeeded", dag_id=dag_id, run_id=run_id)
    # No xcoms on the event: Airflow 3.3 stores those JSON-encoded once more than a worker's push (a
    # reader gets a string back), so the result went through XCom.set above, as a worker's does.
    return TaskSuccessEvent()


def _push(*, parent: Any, value: Any, dag_result: bool) -> None:
    """Push ``value`` as the parent's ``return_value``, through the XCom backend, as its worker would."""
    from airflow.sdk.execution_time.xcom import XCom

    XCom.set(
        key="return_value",
        value=value,
        dag_id=parent.dag_id,
        task_id=parent.task_id,
        run_id=parent.run_id,
        map_index=parent.map_index,
        dag_result=dag_result,
    )


def _resume_instead(why: str, *, dag_id: str, run_id: str, error: Exception | None = None) -> None:
    log.info(
        "Resuming the task on a worker",
        reason=why,
        dag_id=dag_id,
        run_id=run_id,
        error=None if error is None else str(error),
    )
