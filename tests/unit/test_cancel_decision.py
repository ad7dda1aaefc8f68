"""
The ``cancel_on_kill`` decision, one test per row of the table in ``docs/stopping.md``.

Each row names how Airflow stopped the try, what the public REST API then shows of the parent task
instance (read against Airflow 3.3.2's source: ``mark_tasks``, ``clear_task_instances``,
``adopt_or_reset_orphaned_tasks``, ``prepare_db_for_next_try``, the triggerer's ``cancel_triggers``),
and the decision for a durable task with retries left, a durable task on its last try, and a task
without ``durable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from standard_ext.cancel.decision import Killed, Parent, Try, should_cancel, should_cancel_after_timeout

THIS_TRY, MAX_TRIES = 2, 3


class Row(NamedTuple):
    """How the try was stopped, where ``on_kill`` ran, what the API shows; cancel: durable, last try, not durable."""

    how: str
    killed: Killed
    parent: Parent
    durable: bool
    durable_last_try: bool
    not_durable: bool


def same_try(state: str | None) -> Parent:
    return Parent(state=state, try_number=THIS_TRY, max_tries=MAX_TRIES)


TABLE = [
    # -- the task's process got SIGTERM --------------------------------------------------------------
    Row("marked failed (task or Dag run)", Killed.TASK, same_try("failed"), True, True, True),
    Row("marked success (task or Dag run)", Killed.TASK, same_try("success"), True, True, True),
    Row("Dag run timed out (dagrun_timeout)", Killed.TASK, same_try("skipped"), True, True, True),
    Row("cleared while it ran", Killed.TASK, same_try("restarting"), True, True, True),
    Row("reset by a scheduler, not yet scheduled", Killed.TASK, same_try(None), False, False, True),
    Row(
        "reset by a scheduler, next try started",
        Killed.TASK,
        Parent("queued", THIS_TRY + 1, MAX_TRIES),
        False,
        False,
        True,
    ),
    Row(
        "cleared, next try started (max_tries raised)",
        Killed.TASK,
        Parent("running", THIS_TRY + 1, THIS_TRY + 3),
        True,
        True,
        True,
    ),
    Row(
        "SIGTERM from elsewhere, the server still runs it",
        Killed.TASK,
        same_try("running"),
        False,
        True,
        True,
    ),
    Row("failed, a retry follows", Killed.TASK, same_try("up_for_retry"), False, True, True),
    Row(
        "a state the decision does not know", Killed.TASK, same_try("up_for_reschedule"), False, False, False
    ),
    # -- the triggerer killed the deferred task's trigger --------------------------------------------
    Row("trigger: marked failed", Killed.TRIGGER, same_try("failed"), True, True, True),
    Row("trigger: Dag run timed out", Killed.TRIGGER, same_try("skipped"), True, True, True),
    Row("trigger: cleared while deferred", Killed.TRIGGER, same_try(None), True, True, True),
    Row(
        "trigger: cleared, next try scheduled (max_tries raised)",
        Killed.TRIGGER,
        Parent("scheduled", THIS_TRY + 1, THIS_TRY + 3),
        True,
        True,
        True,
    ),
    Row("trigger: handed over, still deferred", Killed.TRIGGER, same_try("deferred"), False, False, False),
    Row(
        "trigger: handed over, the new copy fired", Killed.TRIGGER, same_try("scheduled"), False, False, False
    ),
    Row("trigger: handed over, the task resumed", Killed.TRIGGER, same_try("running"), False, False, False),
    Row(
        "trigger: handed over, a later retry started",
        Killed.TRIGGER,
        Parent("running", THIS_TRY + 1, MAX_TRIES),
        False,
        False,
        True,
    ),
    Row(
        "trigger: resumed and failed, a retry follows",
        Killed.TRIGGER,
        same_try("up_for_retry"),
        False,
        True,
        True,
    ),
]


def decide(row: Row, *, durable: bool, retries_left: bool) -> bool:
    stopped = Try(
        try_number=THIS_TRY,
        max_tries=MAX_TRIES,
        durable=durable,
        retries_left=retries_left,
        killed=row.killed,
    )
    return should_cancel(parent=row.parent, stopped=stopped)[0]


@pytest.mark.parametrize("row", TABLE, ids=[row.how for row in TABLE])
class TestTheTable:
    def test_durable_with_retries_left(self, row: Row) -> None:
        assert decide(row, durable=True, retries_left=True) is row.durable

    def test_durable_on_its_last_try(self, row: Row) -> None:
        assert decide(row, durable=True, retries_left=False) is row.durable_last_try

    def test_without_durable(self, row: Row) -> None:
        assert decide(row, durable=False, retries_left=True) is row.not_durable


class TestReasons:
    def test_a_reset_on_the_last_try_keeps_the_run_the_next_try_reconnects_to(self) -> None:
        # A reset always gives another try, whatever max_tries says.
        stopped = Try(try_number=1, max_tries=0, durable=True, retries_left=False)
        cancel, reason = should_cancel(parent=Parent(None, 1, 0), stopped=stopped)
        assert (cancel, reason) == (
            False,
            "the task instance was reset by a scheduler; its next try reconnects to the run",
        )

    def test_an_unknown_try_number_is_judged_by_the_state(self) -> None:
        stopped = Try(try_number=1, max_tries=0, durable=True, retries_left=False)
        assert should_cancel(parent=Parent("failed"), stopped=stopped)[0] is True
        assert should_cancel(parent=Parent("deferred"), stopped=stopped)[0] is False


class TestAfterTimeout:
    @pytest.mark.parametrize(
        ("durable", "retries_left", "cancel"), [(True, True, False), (True, False, True), (False, True, True)]
    )
    def test_only_a_durable_retry_keeps_the_run(
        self, durable: bool, retries_left: bool, cancel: bool
    ) -> None:
        assert should_cancel_after_timeout(durable=durable, retries_left=retries_left)[0] is cancel


def test_the_docs_table_says_what_the_code_does() -> None:
    text = (Path(__file__).parents[2] / "docs" / "stopping.md").read_text()
    table = text.split("<!-- decision-table -->")[1].split("<!-- /decision-table -->")[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table.strip().splitlines()[2:]
    ]
    documented = [
        (how, where, durable, last, not_durable) for how, where, _, durable, last, not_durable in rows
    ]

    def word(cancel: bool) -> str:
        return "cancel" if cancel else "keep"

    expected = [
        (
            row.how,
            row.killed.value,
            word(decide(row, durable=True, retries_left=True)),
            word(decide(row, durable=True, retries_left=False)),
            word(decide(row, durable=False, retries_left=True)),
        )
        for row in TABLE
    ]
    assert documented == expected
