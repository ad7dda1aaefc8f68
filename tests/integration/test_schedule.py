"""The wait's schedule under dag.test(): the child Dag's last success, read through the real execution API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.integration import db
from tests.integration.dags.child import WIDE
from tests.integration.dags.parents import OURS, TASK_ID, parent
from tests.integration.names import CHILD, WIDE_CHILD
from tests.integration.scheduler import ChildFinisher

if TYPE_CHECKING:
    from tests.integration.conftest import RunDag

EARLIER = datetime(2026, 1, 1, tzinfo=UTC)


def expected_seconds_logged(log: str) -> list[str]:
    return re.findall(r"Waiting for Dag run.*?expected_seconds=(\S+)", log)


@pytest.mark.parametrize("case", ["wait", "wait_deferrable"])
def test_the_wait_predicts_the_end_from_the_child_dags_last_success(run_dag: RunDag, case: str) -> None:
    db.create_run(CHILD, "earlier", logical_date=EARLIER, took=timedelta(seconds=7))
    dag = parent(OURS, case)

    with ChildFinisher(CHILD, after=1.0):
        result = run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    # On the deferrable path the trigger logs it, in the task's log.
    assert set(expected_seconds_logged(result.log)) == {"7.0"}


def test_without_an_earlier_success_the_wait_has_no_prediction(run_dag: RunDag) -> None:
    dag = parent(OURS, "wait")

    with ChildFinisher(CHILD, after=1.0):
        result = run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert expected_seconds_logged(result.log) == ["None"]


def test_a_large_child_is_followed_by_counts_through_the_real_execution_api(run_dag: RunDag) -> None:
    dag = parent(OURS, "wait_wide")

    with ChildFinisher(WIDE_CHILD, after=3.0) as finisher:
        result = run_dag(dag)

    assert db.task_outcome(dag.dag_id, TASK_ID).state == "success"
    assert [state for _, state in finisher.finished] == ["success"]
    lines = re.findall(r"Dag run progress.*?progress='([^']*)'", result.log)
    # The first look reads every state; the next checks count (the 150 instances have no state yet,
    # which the count route matches as "null").
    assert lines[0] == f"0/{WIDE} tasks done, 0 running, 0 failed"
    assert f"0/{WIDE} tasks done" in lines[1:]
