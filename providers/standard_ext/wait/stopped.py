"""Noting in the durable record that the server stopped a try, so the try after it is known for a re-run."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog
from airflow.sdk.api.client import ServerResponseError
from airflow.sdk.exceptions import AirflowRuntimeError

from standard_ext.durable.decision import ENDED_STOPPED
from standard_ext.wait import schedule as poll_schedule
from standard_ext.wait.runs import state_name
from task_sdk_ext.api_errors import server_errors_as_runtime_errors

log = structlog.get_logger(__name__)

# The states of a task instance a person ended while it ran (marked it), or that ended for good. Any
# other (running, up_for_retry...) means an automatic retry may follow, or the server still runs this
# try: the SIGTERM came from elsewhere.
STOPPED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})
# A running task a person cleared. The clear gave the task instance a new id, so this try can no longer
# write its state store (the execution API answers 404 for the old id): nothing is noted, and Airflow
# itself tells the next try, by raising max_tries once the executor reports this try's end.
CLEARED_STATE = "restarting"


class StoppableRecord(Protocol):
    """A durable record a :class:`StopNote` can mark: a dataclass naming its Dag and run, with ``ended``."""

    @property
    def dag_id(self) -> str:
        """The child Dag."""

    @property
    def run_id(self) -> str:
        """The child run (for a fan-out, a label naming its runs), for the log."""

    @property
    def ended(self) -> str | None:
        """How the try that last held it ended."""

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""


@dataclass
class StopNote:
    """
    After ``on_kill``, mark the durable record ``ended="stopped"`` if a person ended this try.

    **Purpose:** a person who marks a waiting task failed or success and later clears it expects a new
    child run; the clear raises ``max_tries``, which says so, unless ``retries`` was lowered so that the
    new ``max_tries`` equals the old. The stopped try knows better: its supervisor's heartbeat was refused
    and it sent SIGTERM, whose handler calls ``on_kill``. So the try writes it down (see
    :func:`standard_ext.durable.decision.is_rerun`) in the seconds before the SIGKILL. A running task a person
    *clears* cannot: the clear gave its task instance a new id, which the state store refuses; Airflow
    raises ``max_tries`` there itself once the executor reports the try's end (measured on a real
    Airflow, ``tests/e2e/test_clear_running_parent.py``), and the try only logs what happened.

    **How it works:** ``on_kill`` only sets :attr:`requested`. It runs in the SIGTERM handler, on the main
    thread, which may hold the channel to the supervisor at that moment (its lock is not re-entrant): a
    question asked from the handler would deadlock until the SIGKILL. The synchronous wait sleeps on the
    event, so it wakes at once and calls :meth:`note` from the loop, once the handler has returned. That
    asks this task instance's own state: a SIGTERM for another reason (the worker shutting down,
    heartbeats failing while the API server is away) finds it still running, or cannot ask, and writes
    nothing, so the retry reconnects as after a crash. ``execution_timeout`` calls ``on_kill`` too, and
    raises at once: the wait never gets to note anything then.

    **What it does not do:** stop the child run; retry a failed question (the SIGKILL is seconds away).
    """

    ti: Any
    store: Any
    key: str
    record: StoppableRecord
    requested: threading.Event = field(default_factory=threading.Event)
    noted: bool = False

    @property
    def pending(self) -> bool:
        """Whether a stop was requested and not yet looked into."""
        return self.requested.is_set() and not self.noted

    def note(self) -> bool:
        """Look into a requested stop once; mark the record if the server stopped this try. Return whether it did."""
        self.noted = True
        try:
            state = self._own_state()
            if state == CLEARED_STATE:
                log.info(
                    "Cleared while this try waited; Airflow raises max_tries at its end, so the next try "
                    "triggers a new Dag run",
                    dag_id=self.record.dag_id,
                    run_id=self.record.run_id,
                )
                return False
            if state not in STOPPED_STATES:
                log.info("Stopped while the server still runs this try; a retry reconnects", state=state)
                return False
            self.store.set(self.key, replace(self.record, ended=ENDED_STOPPED).to_json())  # type: ignore[type-var]
        except (AirflowRuntimeError, ServerResponseError) as e:
            log.warning("Could not note that this try was stopped; a retry reconnects", error=str(e))
            return False
        log.info(
            "The server stopped this try; the next try triggers a new Dag run",
            state=state,
            dag_id=self.record.dag_id,
            run_id=self.record.run_id,
        )
        return True

    def _own_state(self) -> str | None:
        ti = self.ti
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        with server_errors_as_runtime_errors():
            answer = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[ti.task_id])
        state = answer.get(ti.run_id, {}).get(key)
        return None if state is None else state_name(state)


def wait_between_checks(delay: float, *, stop: StopNote | None) -> None:
    """
    Sleep until the next check; woken by ``on_kill``, look into the stop first (once).

    :param delay: how long to sleep, in seconds.
    :param stop: the task's :class:`StopNote`, once it holds a durable record; ``None`` before.
    """
    if stop is None:
        poll_schedule.wait(delay)
        return
    if stop.pending:
        stop.note()
    poll_schedule.wait(delay, stop=None if stop.noted else stop.requested)
    if stop.pending:
        # Woken by on_kill: what is left of the sleep is not waited (the SIGKILL is seconds away).
        stop.note()
