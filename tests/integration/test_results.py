"""``result_task_ids`` through Airflow's real task runner: the child's result is the parent task's return value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.utils.state import TaskInstanceState

from tests.integration import db
from tests.integration.dags.parents import OURS, TASK_ID, parent
from tests.integration.names import RESULTS_CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag

RETURNS = {"answer": {"label": "cat", "score": 0.9}, "shard": ["s0", "s1", "s2"]}


@pytest.mark.parametrize("case", ["results", "results_deferrable_durable"])
def test_the_parent_returns_each_result_task_value_and_the_mapped_one_in_map_order(
    run_dag: RunDag, case: str
) -> None:
    dag = parent(OURS, case)

    with ChildFinisher(RESULTS_CHILD, after=1.0, returns=RETURNS):
        run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert db.xcom(dag.dag_id, TASK_ID, "return_value") == RETURNS


def test_a_result_task_that_pushed_nothing_fails_the_parent_naming_it(run_dag: RunDag) -> None:
    dag = parent(OURS, "results")

    with ChildFinisher(RESULTS_CHILD, after=1.0, returns={"answer": None, "shard": ["s0", "s1", "s2"]}):
        result = run_dag(dag)

    (child,) = db.runs_of(RESULTS_CHILD)
    assert db.task_outcome(dag.dag_id, TASK_ID).state == "failed"
    assert (
        f"Task 'answer' of Dag '{RESULTS_CHILD}' run '{child.run_id}' pushed no return_value XCom"
        in result.log
    )


@pytest.mark.parametrize("case", ["results", "results_deferrable_durable"])
def test_the_parent_returns_as_soon_as_the_result_tasks_succeeded_while_the_child_runs_on(
    run_dag: RunDag, case: str
) -> None:
    dag = parent(OURS, case)
    done = {"answer": TaskInstanceState.SUCCESS, "shard": TaskInstanceState.SUCCESS}

    with ChildFinisher(RESULTS_CHILD, after=1.0, returns=RETURNS, only_tasks=done):
        run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert db.xcom(dag.dag_id, TASK_ID, "return_value") == RETURNS
    # The parent did not wait for the run: it is still active (queued: no scheduler runs it here).
    assert [run.state for run in db.runs_of(RESULTS_CHILD)] == ["queued"]


@pytest.mark.parametrize("case", ["fail_fast", "fail_fast_deferrable_durable"])
def test_a_failed_child_task_fails_the_parent_while_the_child_runs_on(run_dag: RunDag, case: str) -> None:
    dag = parent(OURS, case)

    with ChildFinisher(RESULTS_CHILD, after=1.0, only_tasks={"answer": TaskInstanceState.FAILED}):
        result = run_dag(dag)

    (child,) = db.runs_of(RESULTS_CHILD)
    assert child.state == "queued"  # still active: no scheduler runs it here
    assert db.task_outcome(dag.dag_id, TASK_ID).state == "failed"
    assert f"Task 'answer' of Dag '{RESULTS_CHILD}' run '{child.run_id}' is 'failed'" in result.log
