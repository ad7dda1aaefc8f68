"""The child run a task is about to trigger, as the stock operator prepared it, and the checks made on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from task_sdk_ext import validation

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from airflow.providers.common.compat.sdk import DagRunTriggerException


@dataclass(frozen=True)
class Plan:
    """
    The run to trigger: its ids, conf, dates and note.

    ``ours`` says whether an "already exists" answer for ``run_id`` can only be this task's own request
    whose answer was lost (upstream issue 66905). That holds for an id Airflow generated with a random
    suffix in this try, and for one the operator has just checked to be free. It does not hold for a
    ``trigger_run_id`` the user chose nor for ``manual__<logical_date>``, the id generated for a fixed
    logical date: another run may hold either, and then the stock rules for an existing run apply.

    ``attach`` says the run already exists and the task waits on it instead of triggering
    (``attach_when_already_exists``).
    """

    dag_id: str
    run_id: str
    conf: dict[str, Any] | None
    logical_date: datetime | None
    run_after: datetime | None
    note: str | None
    ours: bool
    attach: bool = False

    @classmethod
    def from_prepared(cls, prepared: DagRunTriggerException, *, user_run_id: bool) -> Plan:
        """
        Take the run the stock ``execute()`` prepared (and raised as ``DagRunTriggerException``).

        :param prepared: what the stock operator raised.
        :param user_run_id: whether ``trigger_run_id`` was set (rather than generated).
        """
        # DagRun.generate_run_id adds a random suffix exactly when the run has no logical date.
        random_suffix = not user_run_id and prepared.logical_date is None
        return cls(
            dag_id=prepared.trigger_dag_id,
            run_id=prepared.dag_run_id,
            conf=prepared.conf,
            logical_date=prepared.logical_date,
            run_after=prepared.run_after,
            note=prepared.note,
            ours=random_suffix,
        )

    def check(self, *, task_id: str) -> None:
        """
        Refuse a bad Dag id, run id, conf or date before anything is sent.

        The accessor checks the same, but a durable task saves (and a task with a run id that is not
        ``ours`` looks up) the run before it triggers: a bad rendered value would reach the server and
        the store first.

        :param task_id: the task, named in the error.
        """
        checks: list[tuple[str, Callable[[], object]]] = [
            ("trigger_dag_id", lambda: validation.check_dag_id(self.dag_id)),
            ("trigger_run_id", lambda: validation.check_run_id(self.run_id)),
            ("conf", lambda: validation.check_conf(self.conf)),
            ("logical_date", lambda: validation.check_aware_datetime("logical_date", self.logical_date)),
            ("run_after", lambda: validation.check_aware_datetime("run_after", self.run_after)),
        ]
        for parameter, check in checks:
            try:
                check()
            except ValueError as e:
                raise ValueError(f"Task {task_id!r}, parameter {parameter}: {e}") from None
