"""
Where ours differs from the stock operator on purpose: it waits inside ``execute()``.

The stock ``execute()`` only prepares the run and raises ``DagRunTriggerException``; the task runner then
triggers and waits, outside ``execution_timeout``, and never reaches ``post_execute``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.utils.state import DagRunState

from tests.integration import db
from tests.integration.dags.parents import OURS, POST_EXECUTE_KEY, STOCK, TASK_ID, parent
from tests.integration.names import CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag

# Longer than the parents' execution_timeout (2 s), so the wait outlasts it.
CHILD_SECONDS = 4.5
TIMEOUT_LOG = "AirflowTaskTimeout"


class TestExecutionTimeoutDuringTheWait:
    @pytest.mark.parametrize(
        ("operator", "task_state", "timed_out"),
        [(STOCK, "success", False), (OURS, "failed", True)],
    )
    def test_only_ours_counts_the_wait_against_execution_timeout(
        self,
        run_dag: RunDag,
        operator: str,
        task_state: str,
        timed_out: bool,
    ) -> None:
        dag = parent(operator, "timeout")

        with ChildFinisher(CHILD, after=CHILD_SECONDS):
            result = run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        # retries=0: one try either way. Stock waits outside the timeout and sees the child succeed;
        # ours times out mid-wait.
        assert (outcome.state, outcome.try_number) == (task_state, 1)
        assert (TIMEOUT_LOG in result.log) is timed_out
        assert len(db.runs_of(CHILD)) == 1

    def test_a_durable_retry_reconnects_to_the_run_the_timed_out_try_triggered(self, run_dag: RunDag) -> None:
        dag = parent(OURS, "timeout_durable")

        # The child ends while try 2 waits: half a second after try 2 starts, so between try 2's first
        # check (reconnect) and its second. Counted from the trigger that moment would not be fixed:
        # dag.test() looks for runnable tasks once a second, so a retry starts 1-2 s after the failure.
        def second_try_running() -> bool:
            return db.running_try(dag.dag_id, TASK_ID) == 2

        with ChildFinisher(CHILD, after=0.5, start_when=second_try_running) as finisher:
            result = run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        # Try 1 timed out mid-wait; try 2 reconnected to the same child and waited until it ended.
        assert (outcome.state, outcome.try_number) == ("success", 2)
        assert TIMEOUT_LOG in result.log
        assert "Reconnecting to the Dag run saved by an earlier try" in result.log
        (child,) = db.runs_of(CHILD)
        assert finisher.finished == [(child.run_id, DagRunState.SUCCESS)]
        assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_id") == child.run_id


class TestPostExecute:
    @pytest.mark.parametrize(("operator", "hook_ran"), [(STOCK, None), (OURS, True)])
    def test_only_ours_reaches_post_execute(
        self, run_dag: RunDag, operator: str, hook_ran: bool | None
    ) -> None:
        dag = parent(operator, "post_execute")

        run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        assert (outcome.state, outcome.try_number) == ("success", 1)
        assert len(db.runs_of(CHILD)) == 1
        # The hook pushes this XCom; the stock task ends in the task runner before the hook's turn.
        assert db.xcom(dag.dag_id, TASK_ID, POST_EXECUTE_KEY) is hook_ran
