"""Driving a fan-out to its end: fill the window, wait (in the task or deferred), then succeed or fail."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from standard_ext.fanout.poll import ended_runs
from standard_ext.fanout.record import RECORD_KEY, confs_digest, parse_record
from standard_ext.fanout.state import FanOut, ItemState, Verdict, failure_message, progress_fields
from standard_ext.fanout.timing import fan_out_poke_interval, runs_to_learn_from
from standard_ext.operators.modes import fanout_cancel
from standard_ext.operators.modes import timeout as timeout_mode
from standard_ext.operators.modes.context import triggering_ti
from standard_ext.operators.modes.durable import write_success_mark
from standard_ext.operators.modes.fanout_plan import start_items
from standard_ext.triggers.dag_runs import DagRunsTrigger
from standard_ext.wait import history
from standard_ext.wait.results import collect_results
from standard_ext.wait.schedule import Schedule
from standard_ext.wait.stopped import wait_between_checks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk.definitions.context import Context

    from standard_ext.operators.modes.protocols import FanOutOperator

# The method a deferred fan-out resumes in.
RESUME_METHOD = "resume_fan_out"


@dataclass
class ChildLength:
    """
    How long the child Dag runs, as this process knows it: its last success, else learned from the fan-out.

    :param dag_id: the child Dag.
    :param seconds: the length known so far; ``None`` while unknown.
    :param asked: the runs already read for their length (each read is a request, never repeated).
    """

    dag_id: str
    seconds: float | None
    asked: set[str] = field(default_factory=set)

    def learn(self, operator: FanOutOperator, fan_out: FanOut, *, before: FanOut | None = None) -> None:
        """
        While the length is unknown, read it from a few of the fan-out's succeeded runs not read before.

        :param operator: the task's operator (its log).
        :param fan_out: the fan-out now.
        :param before: the fan-out as the last wait began: the runs that ended since are read first.
        """
        if self.seconds is not None:
            return
        run_ids = runs_to_learn_from(fan_out, asked=self.asked, before=before)
        if not run_ids:
            return
        self.asked.update(run_ids)
        self.seconds = history.ended_runs_seconds(dag_id=self.dag_id, run_ids=run_ids)
        if self.seconds is not None:
            operator.log.info(
                "Learned how long the child Dag runs from the fan-out's ended runs",
                dag_id=self.dag_id,
                expected_seconds=self.seconds,
                runs=len(run_ids),
            )


def drive(
    *,
    operator: FanOutOperator,
    context: Context,
    fan_out: FanOut,
    confs: Sequence[dict[str, Any] | None],
) -> list[Any]:
    """
    Start items as the window has room and wait for them until the fan-out succeeds or fails.

    In the synchronous mode the window slides: an item starts as soon as one ends. Deferred, the task
    defers whenever it has started what it may (the triggerer cannot trigger runs) and resumes here
    once about half the window ended (see :meth:`standard_ext.fanout.state.Rules.ends_to_resume_on`).

    :param operator: the task's operator.
    :param context: the task context.
    :param fan_out: the fan-out as this try (or resume) found it.
    :param confs: the rendered confs, one per item.
    :raises AirflowException: more items failed than tolerated (retries apply).
    :raises TaskDeferred: deferrable, and waiting is left.
    """
    if not operator.wait_for_completion:
        fan_out = _start(operator, context, fan_out, confs, fan_out.indexes(ItemState.PENDING))
        return finish(operator=operator, context=context, fan_out=fan_out, confs=confs)
    rules = operator.rules()
    waiting_since = time.time()
    # How long the child Dag's last success took (one request per try or resume): while runs wait for
    # slots, the checks come every quarter of it at most (standard_ext.wait.schedule.queued_step).
    length = ChildLength(
        dag_id=operator.trigger_dag_id, seconds=history.last_success_seconds(dag_id=operator.trigger_dag_id)
    )
    # Without history, a resume (or a retry) learns it from the items that ended before it: a resume
    # comes with the fan-out alone, not with what the process before it learned.
    length.learn(operator, fan_out)
    while True:
        # What on_kill would cancel: the runs now active, not those seen to end.
        fanout_cancel.note_fan_out(operator.canceller, fan_out)
        to_start = rules.to_start(fan_out)
        if to_start:
            fan_out = _start(operator, context, fan_out, confs, to_start)
            # Runs just triggered: check every second again for a while (the schedule's fast window).
            waiting_since = time.time()
        operator.log_progress(fan_out)
        verdict = rules.verdict(fan_out)
        if verdict is Verdict.FAIL:
            raise AirflowException(
                failure_message(fan_out=fan_out, dag_id=operator.trigger_dag_id, rules=rules)
            )
        if verdict is Verdict.SUCCEED:
            return finish(operator=operator, context=context, fan_out=fan_out, confs=confs)
        if operator.deferrable:
            _defer(operator=operator, fan_out=fan_out, expected_seconds=length.seconds)
        before = fan_out
        fan_out = wait_for_ends(
            operator=operator,
            context=context,
            fan_out=fan_out,
            waiting_since=waiting_since,
            expected_seconds=length.seconds,
        )
        length.learn(operator, fan_out, before=before)
        # A run just ended: the next often follows (runs that queued for the same slots), so the
        # schedule starts over from here rather than backing off from the last start.
        waiting_since = time.time()


def _start(
    operator: FanOutOperator,
    context: Context,
    fan_out: FanOut,
    confs: Sequence[dict[str, Any] | None],
    indexes: list[int],
) -> FanOut:
    return start_items(operator=operator, context=context, fan_out=fan_out, confs=confs, indexes=indexes)


def wait_for_ends(
    *,
    operator: FanOutOperator,
    context: Context,
    fan_out: FanOut,
    waiting_since: float,
    expected_seconds: float | None = None,
) -> FanOut:
    """
    Check every active run on the schedule until at least one ended; return the fan-out with them ended.

    Each check is one ``GetDRCount`` per 100 active runs, plus, when it says some ended, a count of the
    oldest to single them out and one of their successes (:func:`standard_ext.fanout.poll.ended_runs`). So past
    the fast window the back-off stops at ``poke_interval`` shared among the active runs, but not below 3 s
    unless ``poke_interval`` is (``standard_ext.fanout.timing.fan_out_poke_interval``): checks as frequent,
    in all, as stock mapped's one request per child per ``poke_interval``.

    :param operator: the task's operator (its schedule, and ``on_kill``'s stop note).
    :param context: the task context.
    :param fan_out: the fan-out; its active items are checked.
    :param waiting_since: when the schedule began: the last time items started or a run ended.
    :param expected_seconds: how long the child Dag's last success took (without one, its length as
        learned from the fan-out's own succeeded runs: :class:`ChildLength`), if known. The runs are
        checked together, by counts, so no one run's start anchors the schedule: it stays "not started",
        checked at least every quarter of that length (at most 5 s apart), whichever run ends next.
    """
    active = fan_out.active_run_ids()
    poke_interval = fan_out_poke_interval(poke_interval=operator.poke_interval, active_runs=len(active))
    operator.log.info(
        "Checking the fan-out's Dag runs",
        dag_id=operator.trigger_dag_id,
        active=len(active),
        poke_interval=poke_interval,
        expected_seconds=expected_seconds,
    )
    schedule = Schedule(
        waiting_since=waiting_since,
        poke_interval=poke_interval,
        fast_poll_window=operator.fast_poll_window,
        expected_seconds=expected_seconds,
    )
    ti = triggering_ti(context)
    while True:
        ended = ended_runs(ti=ti, dag_id=operator.trigger_dag_id, run_ids=fan_out.active_run_ids())
        if ended:
            for run_id, state in ended.items():
                operator.log.info(
                    "Dag run of the fan-out ended",
                    dag_id=operator.trigger_dag_id,
                    run_id=run_id,
                    item=fan_out.run_ids.index(run_id),
                    state=state or "gone",
                )
            return fan_out.with_ended(ended)
        now = time.time()
        wait_between_checks(schedule.next_check_after(now) - now, stop=operator.stop_note)


def _defer(*, operator: FanOutOperator, fan_out: FanOut, expected_seconds: float | None) -> None:
    rules = operator.rules()
    ends = rules.ends_to_resume_on(fan_out)
    cancelling = fanout_cancel.trigger_kwargs(operator.canceller)
    timeout_at, timeout = timeout_mode.deferral_timing(operator, cancel_on_kill=bool(cancelling))
    active = fan_out.count(ItemState.ACTIVE)
    poke_interval = fan_out_poke_interval(poke_interval=operator.poke_interval, active_runs=active)
    operator.log.info(
        "Deferring until enough of the fan-out's Dag runs end",
        dag_id=operator.trigger_dag_id,
        ends=ends,
        active=active,
        not_started=fan_out.count(ItemState.PENDING),
        poke_interval=poke_interval,
        expected_seconds=expected_seconds,
    )
    operator.defer(
        trigger=DagRunsTrigger(
            dag_id=operator.trigger_dag_id,
            fan_out=fan_out.to_json(),
            ends=ends,
            failures=rules.failures_to_resume_on(fan_out),
            poke_interval=poke_interval,
            fast_poll_window=operator.fast_poll_window,
            waiting_since=time.time(),
            expected_seconds=expected_seconds,
            # The trigger's on_kill cancels the active runs then, as the task's would; and so does the
            # resume after the trigger's own deadline (execution_timeout).
            timeout_at=timeout_at,
            **cancelling,
        ),
        method_name=RESUME_METHOD,
        # As the single operator: execution_timeout bounds each deferral (Airflow 3 does not apply it
        # to a deferral by itself); a durable retry then carries on with the saved runs. With
        # cancel_on_kill the trigger's own deadline comes first, and this is a backstop.
        timeout=timeout,
    )


def finish(
    *,
    operator: FanOutOperator,
    context: Context,
    fan_out: FanOut,
    confs: Sequence[dict[str, Any] | None],
) -> list[Any]:
    """
    Return one entry per item: its result (``result_task_ids``) or run id; ``None`` for a tolerated failure.

    Results are read only now, once every item is over, so a retry that kept a succeeded item reads its
    result as a first try would. A durable record is marked ``ended="success"``: no automatic retry
    follows a success, so a later try can only come from a person's clear, which re-runs every item.
    """
    task_ids = operator.checked_result_task_ids()
    dag_id = operator.trigger_dag_id
    entries: list[Any] = []
    for run_id, state in zip(fan_out.run_ids, fan_out.states, strict=True):
        if state is ItemState.FAILED:
            entries.append(None)
        elif task_ids and state is ItemState.SUCCEEDED:
            entries.append(collect_results(dag_id=dag_id, run_id=run_id, task_ids=task_ids))
        else:
            entries.append(run_id)
    operator.log.info("The fan-out finished", dag_id=dag_id, **progress_fields(fan_out))
    if operator.durable:
        store = context["task_state_store"]
        digest = confs_digest(confs)
        write_success_mark(
            store=store,
            key=RECORD_KEY,
            record=operator.record,
            read=lambda: parse_record(store.get(RECORD_KEY), dag_id=dag_id, digest=digest)[0],
            log=operator.log,
        )
    return entries
