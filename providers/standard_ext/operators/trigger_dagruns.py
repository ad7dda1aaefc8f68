"""``TriggerDagRunsOperator``: one task that triggers a child Dag run per item and waits for all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf
from airflow.sdk.definitions._internal.types import NOTSET, ArgNotSet

from standard_ext.fanout.checks import MAX_ITEMS, check_confs, check_constructor_values
from standard_ext.fanout.dates import check_logical_date
from standard_ext.fanout.record import RECORD_KEY
from standard_ext.fanout.state import FanOut, Rules, progress_fields
from standard_ext.launch.run import XCOM_DAG_ID
from standard_ext.operators.modes import fanout_cancel
from standard_ext.operators.modes import resume as resume_mode
from standard_ext.operators.modes import timeout as timeout_mode
from standard_ext.operators.modes.context import require_context
from standard_ext.operators.modes.fanout import drive
from standard_ext.operators.modes.fanout_plan import plan_fan_out
from standard_ext.operators.modes.link import TriggeredDagRunsLink
from standard_ext.operators.modes.parameter_checks import (
    check_auto_clear,
    check_cancel_on_kill,
    check_schedule,
)
from standard_ext.triggers.deadline import TIMED_OUT
from standard_ext.wait.results import check_task_ids
from standard_ext.wait.stop_guard import STOPPED_BY_ON_KILL
from standard_ext.wait.stopped import StopNote
from task_sdk_ext.validation import check_dag_id

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.sdk.definitions.context import Context

    from standard_ext.api.access import ApiAccess
    from standard_ext.fanout.record import FanOutRecord

__all__ = ["MAX_ITEMS", "XCOM_RUN_IDS", "TriggerDagRunsOperator", "TriggeredDagRunsLink"]

# The XCom holding every item's run id, in item order.
XCOM_RUN_IDS = "trigger_run_ids"


class TriggerDagRunsOperator(BaseOperator):
    """
    Trigger a run of one Dag per item of ``confs`` and, if asked, wait for all of them; durable per item.

    **Purpose:** fan a list out to a child Dag (score every customer, process every file) from one task,
    with at most ``max_active`` child runs at a time, a number of failures tolerated, and the items'
    results as the task's return value: one entry per item, in item order (its result ``{task_id:
    value}`` with ``result_task_ids``, else its run id; ``None`` for a tolerated failure). It also
    pushes ``trigger_run_ids`` (the list) and ``trigger_dag_id``; the "Triggered DAG" link leads to the
    child Dag's runs.

    **How it works:** every item's run id is generated as Airflow names a manual run without a logical
    date; with ``durable=True`` all of them are saved in ``task_state_store`` (one record, key
    ``triggered_dag_runs``) *before* the first trigger. A retry asks the server about each saved run
    (batched counts): it reconnects to the active ones, keeps the succeeded ones, triggers a planned run
    never created under its saved id, and redrives only the failed items (under new run ids saved before
    their trigger, or in place with ``auto_clear_failed_tasks``). A person clearing the task re-runs every
    item (:func:`standard_ext.durable.decision.is_rerun`).

    The window slides: with ``max_active`` items active, the next starts as one ends. Synchronously, each
    check asks one ``GetDRCount`` per 100 active runs. Deferred, the triggerer watches the runs
    (:class:`~standard_ext.triggers.dag_runs.DagRunsTrigger`) and the task resumes to start more once half
    the window ended: about ``2 * N / W`` resumes for N items over a window of W.

    Once more items failed than ``tolerated_failures``, no new item starts, and the task fails (at once
    with ``fail_fast``, else after the started items end) with an ``AirflowException`` naming the failed
    items, so retries apply. Progress is logged when it changes (``Fan-out progress done=...``).

    :param fast_poll_window: for this many seconds after items start, check every second; then the
        wait doubles up to ``poke_interval`` (default 5).
    :param logical_date: the children's logical date (templated): by default now, as the stock
        operator gives its child, so that their templates render ``{{ ds }}`` as under mapped stock;
        ``None`` for children without one. Each item gets that date plus its index in microseconds:
        Airflow keeps one run per Dag and logical date. A fixed date therefore names the same dates
        on every run of the fan-out, which Airflow refuses for a second one.
    :param openlineage_inject_parent_info: add the parent task's OpenLineage run to each child's conf,
        with the stock operator's helper (default ``True``, as on the stock operator).
    :param cancel_on_kill: when no try of the task will wait on its child runs again (marked failed or
        success, cleared, its Dag run timed out, ``execution_timeout`` on the last try), set every active
        child run it triggered ``failed`` through the public REST API, by the single operator's rules
        (:class:`~standard_ext.operators.modes.fanout_cancel.FanOutCanceller`; deferred, the trigger
        cancels). Runs a durable retry reconnects to go on. Default ``False``.
    :param auto_clear_failed_tasks: a retry (or a person's clear of this task) redrives each failed
        item in place: its run's failed and ``upstream_failed`` tasks are cleared through the public
        REST API and the run is waited on again under its run id, instead of a new run. Successes are
        kept, ``max_active`` and ``tolerated_failures`` apply as before. Needs ``durable`` and
        ``wait_for_completion``. Default ``False``.
    :param airflow_api_conn_id: with ``cancel_on_kill`` or ``auto_clear_failed_tasks``, the Airflow
        connection (conn_type ``http``) to the API server, as the single operator reads it: read and
        signed in with (the permissions checked) before anything is triggered. Default
        ``"airflow_api_default"``.

    Example::

        from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator

        TriggerDagRunsOperator(
            task_id="score_all",
            trigger_dag_id="score",
            confs=customers.output,  # [{"customer": 1}, {"customer": 2}, ...]
            max_active=20,
            tolerated_failures=0,
            result_task_ids=["score"],
            wait_for_completion=True,
            deferrable=True,
            retries=2,
        )
    """

    template_fields: Sequence[str] = ("trigger_dag_id", "confs", "logical_date", "result_task_ids")
    template_fields_renderers: ClassVar[dict[str, str]] = {"confs": "py"}
    operator_extra_links = (TriggeredDagRunsLink(),)
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        confs: Any,
        max_active: int | None = None,
        tolerated_failures: int = 0,
        result_task_ids: Sequence[str] | str | None = None,
        wait_for_completion: bool = False,
        fail_fast: bool = False,
        durable: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 60,
        fast_poll_window: float = 5.0,
        openlineage_inject_parent_info: bool = True,
        logical_date: str | datetime | None | ArgNotSet = NOTSET,
        cancel_on_kill: bool = False,
        auto_clear_failed_tasks: bool = False,
        airflow_api_conn_id: str = "airflow_api_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_constructor_values(
            task_id=self.task_id,
            max_active=max_active,
            tolerated_failures=tolerated_failures,
            wait_for_completion=wait_for_completion,
            fail_fast=fail_fast,
            result_task_ids=result_task_ids,
        )
        check_schedule(task_id=self.task_id, poke_interval=poke_interval, fast_poll_window=fast_poll_window)
        check_cancel_on_kill(
            task_id=self.task_id, cancel_on_kill=cancel_on_kill, airflow_api_conn_id=airflow_api_conn_id
        )
        check_auto_clear(
            task_id=self.task_id,
            auto_clear_failed_tasks=auto_clear_failed_tasks,
            durable=durable,
            wait_for_completion=wait_for_completion,
            airflow_api_conn_id=airflow_api_conn_id,
        )
        self.trigger_dag_id = trigger_dag_id
        self.confs = confs
        self.max_active = max_active
        self.tolerated_failures = tolerated_failures
        self.result_task_ids = result_task_ids
        self.wait_for_completion = wait_for_completion
        self.fail_fast = fail_fast
        self.durable = durable
        self.deferrable = deferrable
        self.poke_interval = poke_interval
        self.fast_poll_window = fast_poll_window
        self.openlineage_inject_parent_info = openlineage_inject_parent_info
        self.logical_date = logical_date
        self.cancel_on_kill = cancel_on_kill
        self.airflow_api_conn_id = airflow_api_conn_id
        self.auto_clear_failed_tasks = auto_clear_failed_tasks
        #: With ``auto_clear_failed_tasks``, the access a try clears failed items' runs with.
        self.rest_access: ApiAccess | None = None
        #: With ``cancel_on_kill``, what ``on_kill`` cancels, and with what: gathered by each process.
        self.canceller: fanout_cancel.FanOutCanceller | None = None
        #: The durable record in force this try (``None`` until planned, and after a resume).
        self.record: FanOutRecord | None = None
        #: Set once a durable record is held; ``on_kill`` notes a stop with it.
        self.stop_note: StopNote | None = None
        #: Set by ``on_kill``: from then on this process starts no item and saves no run id.
        self.stopped_by: str | None = None
        self._last_progress: dict[str, int] | None = None

    def rules(self) -> Rules:
        """The fan-out's rules: the window, the failures tolerated, ``fail_fast``."""
        return Rules(
            max_active=self.max_active, tolerated_failures=self.tolerated_failures, fail_fast=self.fail_fast
        )

    def checked_result_task_ids(self) -> list[str] | None:
        """``result_task_ids`` as rendered, checked (a list of distinct task ids, or ``None``)."""
        return check_task_ids(self.result_task_ids, task_id=self.task_id, parameter="result_task_ids")

    def execute(self, context: Context) -> list[Any]:
        """Check the rendered input, plan (or carry on with) the runs, then trigger and wait for them."""
        require_context(context, task_id=self.task_id, durable=self.durable)
        confs = self._checked_input()
        # Before anything is saved or sent: a missing connection or refused credentials fail the task
        # before a child exists.
        self.canceller = fanout_cancel.prepare(operator=self, context=context, dag_id=self.trigger_dag_id)
        self.rest_access = resume_mode.prepare(
            operator=self, context=context, dag_id=self.trigger_dag_id, signed_in=self._signed_in()
        )
        if not confs:
            self.log.info("Nothing to trigger: confs is an empty list", dag_id=self.trigger_dag_id)
            return []
        fan_out = plan_fan_out(operator=self, context=context, dag_id=self.trigger_dag_id, confs=confs)
        if self.record is not None:
            self.stop_note = StopNote(
                ti=context["ti"], store=context["task_state_store"], key=RECORD_KEY, record=self.record
            )
        ti = context["ti"]
        ti.xcom_push(key=XCOM_DAG_ID, value=self.trigger_dag_id)
        ti.xcom_push(key=XCOM_RUN_IDS, value=list(fan_out.run_ids))
        with fanout_cancel.watching_the_try(self.canceller):
            return drive(operator=self, context=context, fan_out=fan_out, confs=confs)

    def resume_fan_out(self, context: Context, event: dict[str, Any]) -> list[Any]:
        """
        Resume after the trigger saw enough runs end: start the next items, defer again, or finish.

        :param context: the task context.
        :param event: the trigger's payload: ``dag_id`` and the updated ``fan_out``; ``timed_out`` when
            ``execution_timeout`` passed first (with ``cancel_on_kill``): the active runs are cancelled
            and the timeout raised.
        """
        fan_out = FanOut.from_json(event["fan_out"])
        if event.get(TIMED_OUT):
            timeout_mode.timed_out_fan_out(self, context, fan_out=fan_out)
        confs = self._checked_input()
        if len(fan_out.run_ids) != len(confs):
            raise ValueError(
                f"Task {self.task_id!r} resumed with {len(fan_out.run_ids)} items, but confs renders "
                f"{len(confs)}; the fan-out cannot carry on"
            )
        # A resume is a new process: it signs in again before it starts the next items. Its runs exist,
        # so no sign-in error may end the task for good: its retries apply, and a durable retry reconnects.
        self.canceller = fanout_cancel.prepare(
            operator=self, context=context, dag_id=self.trigger_dag_id, resuming=True
        )
        if fan_out.clearing:
            # Failed items wait for the window to resume them in place: their clears go from here.
            self.rest_access = resume_mode.prepare(
                operator=self,
                context=context,
                dag_id=self.trigger_dag_id,
                signed_in=self._signed_in(),
                resuming=True,
            )
        with fanout_cancel.watching_the_try(self.canceller):
            return drive(operator=self, context=context, fan_out=fan_out, confs=confs)

    def on_kill(self) -> None:
        """
        Note in the durable record that the server stopped this try (a :class:`~standard_ext.wait.stopped.StopNote`).

        With ``cancel_on_kill``, cancel the active child runs too, if the try was stopped for good.
        """
        # First: the task goes on after the handler returns (the SIGKILL is 5 s away), and it must not
        # start items in those seconds.
        self.stopped_by = STOPPED_BY_ON_KILL
        if self.stop_note is not None:
            # Only the flag: this runs in the SIGTERM handler, where no message to the supervisor may go.
            self.stop_note.requested.set()
        fanout_cancel.on_kill(self.canceller, log=self.log)

    def _signed_in(self) -> ApiAccess | None:
        """The access ``cancel_on_kill`` signed in with in this process, if any."""
        return None if self.canceller is None else self.canceller.canceller.access

    def log_progress(self, fan_out: FanOut) -> None:
        """Log the ``Fan-out progress`` line when it changed since the last one this process logged."""
        fields = progress_fields(fan_out)
        if fields != self._last_progress:
            self.log.info("Fan-out progress", dag_id=self.trigger_dag_id, **fields)
            self._last_progress = fields

    def _checked_input(self) -> list[dict[str, Any] | None]:
        """The rendered templated parameters, checked before anything is sent."""
        try:
            check_dag_id(self.trigger_dag_id)
        except ValueError as e:
            raise ValueError(f"Task {self.task_id!r}, parameter trigger_dag_id: {e}") from None
        self.checked_result_task_ids()
        self.checked_logical_date()
        return check_confs(self.confs, task_id=self.task_id)

    def checked_logical_date(self) -> datetime | None | ArgNotSet:
        """``logical_date`` as rendered, parsed and checked: ``NOTSET`` (now), ``None`` or a date."""
        return check_logical_date(self.logical_date, task_id=self.task_id)
