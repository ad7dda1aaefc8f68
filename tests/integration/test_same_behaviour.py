"""Where the stock operator and ours must behave the same, run the same parent with each, under dag.test()."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.models.dag import DagModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState

from tests.integration import db
from tests.integration.dags.parents import (
    EXISTING_LOGICAL_DATE,
    FIXED_RUN_ID,
    OURS,
    STOCK,
    TASK_ID,
    parent,
)
from tests.integration.names import CHILD, PAUSED_CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag

BOTH = pytest.mark.parametrize("operator", [STOCK, OURS])
# The run id Airflow generates for a manual run with this logical date (and no run_after).
GENERATED_RUN_ID = f"manual__{EXISTING_LOGICAL_DATE.isoformat()}"
CHILD_SECONDS = 1.5


def untouched(run_id: str) -> list[tuple[str, str, int]]:
    """The child runs when only the run the test created exists, still finished and never cleared."""
    return [(run_id, "success", 0)]


def child_runs() -> list[tuple[str, str, int]]:
    return [(run.run_id, run.state, run.clear_number) for run in db.runs_of(CHILD)]


class TestGeneratedRunIdThatExists:
    """``logical_date`` set, no ``trigger_run_id``: the generated ``manual__<logical date>`` is taken."""

    @BOTH
    @pytest.mark.parametrize(
        ("case", "task_state"),
        [("generated_id", "failed"), ("generated_id_skip", "skipped")],
        ids=["fails", "skips-with-skip_when_already_exists"],
    )
    def test_fails_or_skips_without_retrying(
        self, run_dag: RunDag, operator: str, case: str, task_state: str
    ) -> None:
        db.create_run(CHILD, GENERATED_RUN_ID, logical_date=EXISTING_LOGICAL_DATE)
        dag = parent(operator, case)

        run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        # retries=1: a retry would show as try 2.
        assert (outcome.state, outcome.try_number) == (task_state, 1)
        assert child_runs() == untouched(GENERATED_RUN_ID)


class TestFixedRunId:
    @BOTH
    def test_a_free_run_id_is_triggered(self, run_dag: RunDag, operator: str) -> None:
        dag = parent(operator, "fixed_id")

        run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        assert (outcome.state, outcome.try_number) == ("success", 1)
        assert [run.run_id for run in db.runs_of(CHILD)] == [FIXED_RUN_ID]
        assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_id") == FIXED_RUN_ID

    @BOTH
    @pytest.mark.parametrize(
        ("case", "task_state"),
        [("fixed_id", "failed"), ("fixed_id_skip", "skipped")],
        ids=["fails", "skips-with-skip_when_already_exists"],
    )
    def test_a_taken_run_id_fails_or_skips_without_retrying(
        self, run_dag: RunDag, operator: str, case: str, task_state: str
    ) -> None:
        db.create_run(CHILD, FIXED_RUN_ID)
        dag = parent(operator, case)

        run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        assert (outcome.state, outcome.try_number) == (task_state, 1)
        assert child_runs() == untouched(FIXED_RUN_ID)

    @BOTH
    def test_a_taken_run_id_is_reset_and_runs_again(self, run_dag: RunDag, operator: str) -> None:
        db.create_run(CHILD, FIXED_RUN_ID)
        dag = parent(operator, "fixed_id_reset")

        # The parent waits for the run, so it must run again (and end) after the reset.
        with ChildFinisher(CHILD, after=CHILD_SECONDS) as finisher:
            run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        assert (outcome.state, outcome.try_number) == ("success", 1)
        # Still one run, cleared once (the reset), then finished again.
        assert child_runs() == [(FIXED_RUN_ID, "success", 1)]
        assert finisher.finished == [(FIXED_RUN_ID, DagRunState.SUCCESS)]
        assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_id") == FIXED_RUN_ID


class TestWaitForCompletion:
    @BOTH
    @pytest.mark.parametrize("case", ["wait", "wait_deferrable"])
    @pytest.mark.parametrize(
        ("child_state", "task_state"),
        [(DagRunState.SUCCESS, "success"), (DagRunState.FAILED, "failed")],
        ids=["child-succeeds", "child-fails"],
    )
    def test_the_task_ends_as_the_child_does(
        self,
        run_dag: RunDag,
        operator: str,
        case: str,
        child_state: DagRunState,
        task_state: str,
    ) -> None:
        dag = parent(operator, case)

        with ChildFinisher(CHILD, after=CHILD_SECONDS, state=child_state) as finisher:
            run_dag(dag)

        (child,) = db.runs_of(CHILD)
        assert finisher.finished == [(child.run_id, child_state)]
        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        # retries=0, so a failed child fails the only try.
        assert (outcome.state, outcome.try_number) == (task_state, 1)
        # It waited: the task ended only after the child had.
        assert outcome.end_date is not None
        assert child.end_date is not None
        assert outcome.end_date > child.end_date
        assert db.xcom(dag.dag_id, TASK_ID, "trigger_run_id") == child.run_id


class TestFailWhenDagIsPaused:
    @BOTH
    def test_a_paused_child_fails_the_task_and_is_not_triggered(self, run_dag: RunDag, operator: str) -> None:
        with create_session() as session:
            paused = session.get(DagModel, PAUSED_CHILD)
            assert paused is not None
            assert paused.is_paused
        dag = parent(operator, "paused_child")

        result = run_dag(dag)

        outcome = db.task_outcome(dag.dag_id, TASK_ID)
        assert (outcome.state, outcome.try_number) == ("failed", 1)
        assert db.runs_of(PAUSED_CHILD) == []
        assert f"{PAUSED_CHILD} is paused" in result.log
