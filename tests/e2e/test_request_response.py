"""Calling a Dag like a function (``dags/example_request_response.py``), synchronously and deferred.

The child ``example_answer_question`` has its result ready after about 2 s, then a teardown runs on. The
parent returns the result (or fails, when the answer fails) within seconds, not after the teardown, and
a client reads the result through the parent's own ``/wait``. Two requests with one request id share one
child run.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import pytest

from tests.e2e.flows import TRIGGERED_EVENT, lines_with, seconds_between

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import Json
    from tests.e2e.scenario import Scenario

CHILD = "example_answer_question"
TASK = "ask"
PARENTS = ["example_ask_question_sync", "example_ask_question"]
QUESTION = "what is six times seven"
TEARDOWN = 60
# From the child's result being ready (or its answer failing) to the parent task's end. The checks are a
# second apart in the parents' 30 s fast window; the rest is the task's own exit (synchronous), or the
# trigger pushing the result and ending the task from the triggerer (deferrable).
FEW_SECONDS = 15.0
PROGRESS_EVENT = "Dag run progress"
ATTACHING_EVENT = "Attaching to the Dag run that already exists"
OURS_EVENT = "The trigger answered 'already exists' for the run this task planned; it is ours"


def expected_result(question: str) -> Json:
    return {
        "answer": {"question": question, "words": len(question.split())},
        "parts": [f"{question}#{index}" for index in range(3)],
    }


def result_ready_at(scenario: Scenario, child_run_id: str) -> str:
    """When the last result task instance of the child run ended (the API's ISO timestamp)."""
    client = scenario.client
    ends = [client.task_instance(CHILD, child_run_id, "answer")["end_date"]]
    ends += [client.task_instance(CHILD, child_run_id, "parts", index)["end_date"] for index in range(3)]
    assert all(ends), ends
    last: str = max(ends)
    return last


def progress_of(line: str) -> str:
    """The ``3/7 tasks done, ...`` text of a progress log line."""
    match = re.search(r'progress="([^"]+)"', line)
    assert match, line
    return match.group(1)


def note_lag(
    scenario: Scenario, record_property: Callable[[str, object], None], name: str, lag: float
) -> float:
    """Keep a measured lag in the timeline and as a JUnit property; return it."""
    scenario.note(f"{name} lag {lag:.1f}s")
    record_property(f"{name}_lag_seconds", round(lag, 1))
    return lag


@pytest.mark.parametrize("parent", PARENTS)
@pytest.mark.timeout(300, method="signal")
def test_the_result_comes_back_through_the_parents_wait_long_before_the_childs_teardown_ends(
    scenario: Scenario, parent: str, record_property: Callable[[str, object], None]
) -> None:
    client = scenario.client
    run_id = scenario.trigger(parent, question=QUESTION, work=2, teardown=TEARDOWN)

    # What a request/response client does: wait on the parent's own run and read the parent's result.
    final = client.wait_dag_run(parent, run_id, result=[TASK], timeout=180)

    assert final == {"state": "success", "results": {TASK: expected_result(QUESTION)}}
    (child,) = scenario.runs_of(CHILD)
    # The teardown still runs: the parent did not wait for the run to end.
    assert child["state"] == "running"
    assert client.task_instance(CHILD, child["dag_run_id"], "close_session")["state"] == "running"
    # The wait logged the child's progress, each line once (deferred: the trigger's lines, in the task's log).
    progress = lines_with(scenario.log(parent, run_id, TASK, 1), PROGRESS_EVENT)
    assert progress
    assert all(child["dag_run_id"] in line for line in progress)
    seen = [progress_of(line) for line in progress]
    assert all(before != after for before, after in itertools.pairwise(seen)), seen
    asked = client.task_instance(parent, run_id, TASK)
    lag = seconds_between(result_ready_at(scenario, child["dag_run_id"]), asked["end_date"])
    assert 0 < note_lag(scenario, record_property, f"{parent}_result", lag) <= FEW_SECONDS


@pytest.mark.parametrize("parent", PARENTS)
@pytest.mark.timeout(300, method="signal")
def test_a_failed_answer_fails_the_parent_within_seconds_while_the_childs_teardown_runs(
    scenario: Scenario, parent: str, record_property: Callable[[str, object], None]
) -> None:
    client = scenario.client
    run_id = scenario.trigger(parent, question=QUESTION, work=2, teardown=TEARDOWN, fail=True)

    parent_run = scenario.wait_run_finished(parent, run_id, timeout=180)

    assert parent_run["state"] == "failed"
    # Each of the two tries (retries=1) asked afresh: the run it asked first had failed (fail_fast).
    tries = client.task_tries(parent, run_id, TASK)
    children = scenario.runs_of(CHILD)
    assert [t["state"] for t in tries] == ["failed", "failed"]
    assert len(children) == 2
    first_child = children[0]["dag_run_id"]
    assert client.task_instance(CHILD, first_child, "answer")["state"] == "failed"
    # The first child's teardown was still running when the parent had given up on it twice over.
    assert client.dag_run(CHILD, first_child)["state"] == "running"
    try_1 = scenario.log(parent, run_id, TASK, 1)
    assert lines_with(try_1, f"Task 'answer' of Dag '{CHILD}' run '{first_child}' is 'failed'")
    failed_at = client.task_instance(CHILD, first_child, "answer")["end_date"]
    lag = seconds_between(failed_at, tries[0]["end_date"])
    assert 0 < note_lag(scenario, record_property, f"{parent}_failure", lag) <= FEW_SECONDS


@pytest.mark.parametrize("parent", PARENTS)
@pytest.mark.timeout(300, method="signal")
def test_two_requests_with_one_request_id_share_one_child_run_and_both_get_its_result(
    scenario: Scenario, parent: str
) -> None:
    request_id = f"request-{scenario.tag}"
    first = scenario.trigger(parent, question=QUESTION, request_id=request_id, work=3, teardown=1)
    second = scenario.trigger(parent, question=QUESTION, request_id=request_id, work=3, teardown=1)

    finals = [
        scenario.client.wait_dag_run(parent, run_id, result=[TASK], timeout=180) for run_id in (first, second)
    ]

    expected = {"state": "success", "results": {TASK: expected_result(QUESTION)}}
    assert finals == [expected, expected]
    assert [run["dag_run_id"] for run in scenario.runs_of(CHILD)] == [request_id]
    logs = "\n".join(scenario.log(parent, run_id, TASK, 1) for run_id in (first, second))
    # One of them triggered the run; the other found it and attached, or (both checking at once) had
    # its trigger answered "already exists" and waited on it as well.
    assert len(lines_with(logs, TRIGGERED_EVENT)) == 1
    assert len(lines_with(logs, ATTACHING_EVENT) + lines_with(logs, OURS_EVENT)) == 1
