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
from standard_ext.operators.modes import timeout as timeout_mode
from standard_ext.operators.modes.context import require_context
from standard_ext.operators.modes.fanout import drive
from standard_ext.operators.modes.fanout_plan import plan_fan_out
from standard_ext.operators.modes.link import TriggeredDagRunsLink
from standard_ext.operators.modes.parameter_checks import check_cancel_on_kill, check_schedule
from standard_ext.triggers.deadline import TIMED_OUT
from standard_ext.wait.results import check_task_ids
from standard_ext.wait.stop_guard import STOPPED_BY_ON_KILL
from standard_ext.wait.stopped import StopNote
from task_sdk_ext.validation import check_dag_id

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.sdk.definitions.context import Context

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
    date, and with ``durable=True`` all of them are saved in ``task_state_store`` (one record, key
    ``triggered_dag_runs``) *before* the first trigger. A retry asks the server about each saved run
    (batched counts): it reconnects to the active ones, keeps the succeeded ones (and their results),
    triggers a planned run that was never created under its saved id, and redrives only the failed
    items under new run ids, saved before they are triggered. A person clearing the task re-runs every
    item (:func:`standard_ext.durable.decision.is_rerun`, as the single operator).

    The window slides: with ``max_active`` items active, the next starts as one ends. Synchronously, each
    check asks one ``GetDRCount`` per 100 active runs and reads a run's state only when the count says it
    ended. Deferred (``deferrable=True``), the task gives its slot up while the window is full and the
    triggerer watches the runs through the shared poller (:class:`~standard_ext.triggers.dag_runs.DagRunsTrigger`);
    since only a task can trigger a run, the task resumes once half the window ended (or every run still
    to start can start), so a fan-out of N items over a window of W costs about ``2 * N / W`` resumes
    (one when ``max_active`` is ``None``: all items start at once and the task resumes at the end).

    Once more items failed than ``tolerated_failures``, no new item starts: with ``fail_fast`` the task
    fails at once, naming the items left running; otherwise it fails after the started items end, naming
    the failed items and their run ids. The error is an ``AirflowException``, so retries apply, and a
    durable retry redrives only the failed items. Progress is logged when it changes (``Fan-out
    progress done=... succeeded=... failed=... active=... not_started=...``).

    **What it does not do:** stop the child runs when it fails, or when it is stopped unless
    ``cancel_on_kill`` asks it to (they go on; a durable retry reconnects to them); take more than :data:`~standard_ext.fanout.checks.MAX_ITEMS` items in one task: the one record and each
    deferral's trigger hold every run id, so map the operator over chunks instead
    (``.partial(...).expand(confs=chunks)``, a record per map index). An empty ``confs`` triggers nothing and
    returns ``[]``.

    :param trigger_dag_id: the Dag to trigger a run of per item (templated).
    :param confs: one conf dict per item, each the conf of its run (templated; an ``XComArg`` works). Checked
        once rendered, before anything is sent: a list of at most
        :data:`~standard_ext.fanout.checks.MAX_ITEMS` JSON-serializable dicts.
    :param max_active: at most this many of the task's child runs active at once; ``None`` (default)
        starts all of them at once. Needs ``wait_for_completion=True``.
    :param tolerated_failures: how many items may end failed while the task still succeeds (default 0).
    :param result_task_ids: tasks of the child Dag whose ``return_value`` XComs are each item's result
        (templated), as the single operator returns it. Needs ``wait_for_completion=True``.
    :param wait_for_completion: wait for every run to end (default ``False``, as the stock operator's).
        Without it the task triggers every item (after the write-ahead) and returns their run ids.
    :param fail_fast: fail as soon as more items failed than tolerated, leaving the others running,
        instead of waiting for the started ones to end. Needs ``wait_for_completion=True``.
    :param durable: save every run id before triggering, and carry on with them on retry (default
        ``True``); ``False`` triggers every item anew on each try.
    :param deferrable: wait in the triggerer instead of a worker slot (default: ``[operators]
        default_deferrable``).
    :param poke_interval: the longest wait between two checks of the runs, in seconds (default 60).
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
        success, cleared, its Dag run timed out, ``execution_timeout`` on the last try, deferred too),
        set every active child run it triggered ``failed`` through the public REST API, by the single
        operator's rules (see :class:`~standard_ext.operators.modes.fanout_cancel.FanOutCanceller`). Runs
        that already ended are left as they ended, and runs a durable retry reconnects to go on (a
        scheduler's reset, a trigger handed over). Deferred, the trigger cancels them. The connection
        is read, signed in with and checked for the reads a cancel makes before anything is triggered
        (and signed in with again on each resume). Whatever this says, no item starts once the task was
        stopped. Default ``False``.
    :param airflow_api_conn_id: with ``cancel_on_kill``, the Airflow connection (conn_type ``http``) to the
        API server: its host is the base URL (``https://airflow-api:8080``), its login and password a user
        who may read the parent's task instances and the child's Dag runs and edit the latter; its
        extras ``verify``, ``cert`` and ``proxies`` as ``HttpHook`` reads them. With ``deferrable=True``
        the triggerer reads it too. Default ``"airflow_api_default"``.

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
        with fanout_cancel.watching_the_try(self.canceller):
            return drive(operator=self, context=context, fan_out=fan_out, confs=confs)

    def on_kill(self) -> None:
        """
        Note in the durable record that the server stopped this try, when it did.

        The note is a :class:`~standard_ext.wait.stopped.StopNote`.

        With ``cancel_on_kill``, cancel the active child runs too, if the try was stopped for good (see
        :class:`~standard_ext.operators.modes.fanout_cancel.FanOutCanceller`).
        """
        # First: the task goes on after the handler returns (the SIGKILL is 5 s away), and it must not
        # start items in those seconds.
        self.stopped_by = STOPPED_BY_ON_KILL
        if self.stop_note is not None:
            # Only the flag: this runs in the SIGTERM handler, where no message to the supervisor may go.
            self.stop_note.requested.set()
        fanout_cancel.on_kill(self.canceller, log=self.log)

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
