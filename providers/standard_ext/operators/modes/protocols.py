"""What the operators' modes use of the operator they run for, as Protocols: no mode imports its operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator
    from datetime import datetime, timedelta

    from airflow.sdk.definitions._internal.types import ArgNotSet
    from airflow.sdk.definitions.context import Context
    from airflow.triggers.base import BaseTrigger
    from pydantic import JsonValue

    import standard_ext.api.access
    from standard_ext.durable.decision import Decision
    from standard_ext.fanout.record import FanOutRecord
    from standard_ext.fanout.state import FanOut, Rules
    from standard_ext.launch.plan import Plan
    from standard_ext.launch.run import WhenExists
    from standard_ext.operators.modes.cancel import Canceller
    from standard_ext.operators.modes.fanout_cancel import FanOutCanceller
    from standard_ext.wait.progress import Watch
    from standard_ext.wait.stopped import StopNote


class ChildRunOperator(Protocol):
    """What a mode uses of either operator: the ``BaseOperator`` surface and the parameters both share."""

    @property
    def task_id(self) -> str:
        """The task, named in errors."""

    @property
    def log(self) -> Any:
        """The task's logger (structlog's: an event sentence and key=value fields)."""

    @property
    def execution_timeout(self) -> timedelta | None:
        """Bounds each deferral too, as it bounds the wait in the task."""

    @property
    def durable(self) -> bool:
        """Whether the child runs are saved before they are triggered, and carried on with by a retry."""

    @property
    def trigger_dag_id(self) -> str:
        """The child Dag, rendered."""

    @property
    def wait_for_completion(self) -> bool:
        """Whether the task waits for its child runs."""

    @property
    def poke_interval(self) -> float:
        """The longest wait between two checks."""

    @property
    def fast_poll_window(self) -> float:
        """For this many seconds after a trigger, check every second."""

    @property
    def deferrable(self) -> bool:
        """Whether the wait happens in the triggerer."""

    @property
    def stopped_by(self) -> str | None:
        """Set by ``on_kill``: why this try was stopped; from then on nothing starts."""

    #: ``auto_clear_failed_tasks``, and the signed-in access a clear is sent with (set by ``execute()``).
    auto_clear_failed_tasks: bool
    rest_access: standard_ext.api.access.ApiAccess | None

    @property
    def airflow_api_conn_id(self) -> str:
        """The connection to the API server (``cancel_on_kill``, ``auto_clear_failed_tasks``)."""

    @property
    def retries(self) -> int | None:
        """The task's ``retries``."""

    def defer(
        self,
        *,
        trigger: BaseTrigger,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | int | float | None = None,
    ) -> NoReturn:
        """Give the worker slot up until ``trigger`` fires (raises ``TaskDeferred``)."""


class SingleRunOperator(ChildRunOperator, Protocol):
    """
    What ``modes.durable``, ``modes.deferrable`` and ``modes.child_run_job`` use of ``TriggerDagRunOperator``.

    The operator's parameters, the state a try builds up (:attr:`child_end`, :attr:`stop_note`,
    :attr:`triggered_at`) and the hooks a subclass may override (:meth:`poll_until_complete`,
    :meth:`get_job_result`), which a mode calls back through the operator rather than directly.
    """

    # What the stock operator and ResumableJobMixin give it.
    external_id_key: str
    do_xcom_push: bool
    multiple_outputs: bool
    outlets: list[Any]
    returns_dag_result: bool

    @property
    def on_success_callback(self) -> object:
        """The task's success callbacks, if any."""

    @property
    def allowed_states(self) -> Collection[str]:
        """Final states in which the child counts as done."""

    @property
    def failed_states(self) -> Collection[str]:
        """States that fail the task."""

    def has_dag(self) -> bool:
        """Whether the task belongs to a Dag (a bare operator in a unit test does not)."""

    def iter_mapped_dependants(self) -> Iterator[Any]:
        """The mapped tasks downstream that expand over this task's result."""

    # Its own parameters.
    fail_fast: bool
    attach_when_already_exists: bool
    end_from_trigger: bool

    # What a try builds up as it goes; see the operator's constructor.
    canceller: Canceller | None
    child_end: str | None
    stop_note: StopNote | None
    #: Set by ``on_kill`` (:func:`~standard_ext.operators.modes.child_run_job.stop`).
    stopped_by: str | None  # type: ignore[misc]
    triggered_at: float | None

    @property
    def when_exists(self) -> WhenExists:
        """The answer when a run this task did not trigger holds the planned id."""

    def early_end_rules(self) -> Watch:
        """The early-end rules, the templated task ids rendered and checked."""

    def send_trigger(self, context: Context, plan: Plan, *, decision: Decision, reset: bool = False) -> None:
        """Trigger the planned run (or attach to it) and publish it."""

    def publish_run(self, context: Context, *, dag_id: str, run_id: str) -> None:
        """Push the XComs the "Triggered DAG" link and downstream tasks read."""

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait for the child run if asked; raise if it ends badly."""

    def get_job_result(self, external_id: JsonValue, context: Context) -> Any:
        """The child's result, once it ended in an allowed state."""


class FanOutOperator(ChildRunOperator, Protocol):
    """What the fan-out's planning and driving use of ``TriggerDagRunsOperator``."""

    openlineage_inject_parent_info: bool

    def checked_logical_date(self) -> datetime | None | ArgNotSet:
        """``logical_date`` as rendered and parsed: ``NOTSET`` (now), ``None`` or a date."""

    canceller: FanOutCanceller | None
    #: The durable record in force this try (set by the planning).
    record: FanOutRecord | None
    stop_note: StopNote | None

    def rules(self) -> Rules:
        """The window, the failures tolerated, ``fail_fast``."""

    def checked_result_task_ids(self) -> list[str] | None:
        """``result_task_ids`` as rendered, checked."""

    def log_progress(self, fan_out: FanOut) -> None:
        """Log the fan-out's progress when it changed."""
