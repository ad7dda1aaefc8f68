"""``execution_timeout`` of a deferred wait with ``cancel_on_kill``: the trigger's deadline, then the cancel."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk.exceptions import AirflowException, TaskDeferralTimeout

from standard_ext.operators.modes import cancel as cancel_mode
from standard_ext.operators.modes import fanout_cancel

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from standard_ext.fanout.state import FanOut
    from standard_ext.operators.modes.protocols import ChildRunOperator

#: How long after the trigger's own deadline Airflow's deferral timeout falls, as a backstop for a
#: trigger no triggerer runs: by then the trigger's event has long been handled.
BACKSTOP_SECONDS = 60.0


def deferral_timing(
    operator: ChildRunOperator, *, cancel_on_kill: bool
) -> tuple[float | None, timedelta | None]:
    """
    Return the trigger's deadline (``timeout_at``) and the deferral's ``timeout`` for this deferral.

    With ``cancel_on_kill`` the trigger fires at ``execution_timeout`` itself, and Airflow's timeout
    comes :data:`BACKSTOP_SECONDS` later; without it, Airflow times the deferral out as before (the
    trigger has nothing to cancel). Counted from this deferral, as Airflow counts the ``timeout`` of each.

    :param operator: the deferring task's operator.
    :param cancel_on_kill: whether the trigger may cancel what it waits on.
    """
    timeout = operator.execution_timeout
    if timeout is None or not cancel_on_kill:
        return None, timeout
    return time.time() + timeout.total_seconds(), timeout + timedelta(seconds=BACKSTOP_SECONDS)


def _sign_in(operator: Any, context: Context, prepare: Any, **kwargs: Any) -> Any:
    try:
        return prepare(operator=operator, context=context, resuming=True, **kwargs)
    except AirflowException as e:
        operator.log.warning("Not cancelling after execution_timeout: cannot sign in", error=str(e))
        return None


def timed_out_single(operator: Any, context: Context, *, dag_id: str, run_id: str) -> NoReturn:
    """
    Cancel the run the trigger timed out on, as ``on_kill`` after a synchronous timeout; then raise.

    The trigger fires at the deadline only with ``cancel_on_kill`` for a run this task triggered.

    :raises TaskDeferralTimeout: always, as Airflow's own deferral timeout raises it; retries apply.
    """
    canceller = _sign_in(operator, context, cancel_mode.prepare)
    if canceller is not None:
        cancel_mode.note_triggered(canceller, dag_id=dag_id, run_id=run_id, triggered=True)
        canceller.timed_out = True
        cancel_mode.on_kill(canceller, log=operator.log)
    raise TaskDeferralTimeout(
        f"Task {operator.task_id!r}: execution_timeout ({operator.execution_timeout}) passed while waiting "
        f"for Dag {dag_id!r} run {run_id!r}"
    )


def timed_out_fan_out(operator: Any, context: Context, *, fan_out: FanOut) -> NoReturn:
    """
    Cancel the fan-out's active runs after its trigger timed out, as ``on_kill`` after a synchronous timeout.

    :raises TaskDeferralTimeout: always, as Airflow's own deferral timeout raises it; retries apply.
    """
    fan_canceller = _sign_in(operator, context, fanout_cancel.prepare, dag_id=operator.trigger_dag_id)
    if fan_canceller is not None:
        fanout_cancel.note_fan_out(fan_canceller, fan_out)
        fan_canceller.canceller.timed_out = True
        fanout_cancel.on_kill(fan_canceller, log=operator.log)
    raise TaskDeferralTimeout(
        f"Task {operator.task_id!r}: execution_timeout ({operator.execution_timeout}) passed while "
        f"waiting for {len(fan_out.active_run_ids())} Dag runs of {operator.trigger_dag_id!r}"
    )
