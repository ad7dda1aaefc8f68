"""The API paths ``cancel_api`` builds: each id one segment, as it is; ``.``, ``..`` and empty ones refused."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from standard_ext.cancel import api as cancel_api
from standard_ext.cancel.decision import Parent
from tests.fake_api import DAG_RUN_GET, DAG_RUN_PATCH, TASK_INSTANCE, TOKEN
from tests.unit.conftest import API_LOGIN, API_PASSWORD

if TYPE_CHECKING:
    from tests.fake_api import FakeApi

pytestmark = pytest.mark.timeout(30)

# Each would end the segment (/), the path (? #) or change what follows (%) if it were not quoted; a
# %-escape that must come back as written, not decoded.
AWKWARD_IDS = ["manual__2026/11/21", "why?not", "run#2", "100%", "a/b?c#d%e", "%2E%2E", "a..b", "+:@ !"]
UNSAFE = ["", ".", ".."]
RUNNERS = ["sync", "async"]


def run(exchange: cancel_api.Exchange[cancel_api.T], runner: str) -> cancel_api.T:
    if runner == "sync":
        return cancel_api.run_sync(exchange, seconds=5, per_request=2)
    return asyncio.run(cancel_api.run_async(exchange, seconds=5, per_request=2))


def access_to(api: FakeApi) -> cancel_api.ApiAccess:
    return cancel_api.ApiAccess(
        conn_id="api", base_url=api.base_url, username=API_LOGIN, password=API_PASSWORD
    )


class TestEachIdIsOneSegment:
    @pytest.mark.parametrize("run_id", AWKWARD_IDS)
    @pytest.mark.parametrize("runner", RUNNERS)
    def test_a_run_id_reaches_the_server_as_it_is(self, api: FakeApi, run_id: str, runner: str) -> None:
        api.runs[("child", run_id)] = "running"

        outcome = run(
            cancel_api.cancel_run(access_to(api), dag_id="child", run_id=run_id, reason="r"), runner
        )

        assert outcome.cancelled
        assert api.routes() == [TOKEN, DAG_RUN_GET, DAG_RUN_PATCH]
        assert [request.path for request in api.requests[1:]] == [
            ["api", "v2", "dags", "child", "dagRuns", run_id]
        ] * 2
        assert api.runs[("child", run_id)] == "failed"

    @pytest.mark.parametrize("task_id", AWKWARD_IDS)
    def test_the_parent_task_instance_too(self, api: FakeApi, task_id: str) -> None:
        api.task_instances[("parent", "p/1", task_id, -1)] = {"state": "running", "try_number": 1}
        task = cancel_api.TaskRef(dag_id="parent", run_id="p/1", task_id=task_id, map_index=-1, try_number=1)

        parent = run(cancel_api.read_task_instance(access_to(api), task), "sync")

        assert parent == Parent(state="running", try_number=1)
        assert api.requests[-1].path == [
            "api",
            "v2",
            "dags",
            "parent",
            "dagRuns",
            "p/1",
            "taskInstances",
            task_id,
        ]


class TestUnsafeSegmentsAreRefused:
    @pytest.mark.parametrize("segment", UNSAFE)
    def test_by_url_naming_the_segment(self, segment: str) -> None:
        access = cancel_api.ApiAccess(conn_id="api", base_url="http://api", username="u", password="pw")

        with pytest.raises(ValueError, match=f"refusing the path segment {segment!r}") as info:
            access.url("api", "v2", "dags", "child", "dagRuns", segment)

        # Also an ApiError: the callers report it as a request that could not be made, and go on.
        assert isinstance(info.value, cancel_api.ApiError)
        assert info.value.status is None

    @pytest.mark.parametrize("segment", UNSAFE)
    @pytest.mark.parametrize("field", ["dag_id", "run_id"])
    @pytest.mark.parametrize("runner", RUNNERS)
    def test_before_anything_is_sent(self, api: FakeApi, segment: str, field: str, runner: str) -> None:
        ids = {"dag_id": "child", "run_id": "r1", field: segment}
        api.runs[("child", "r1")] = "running"

        with pytest.raises(cancel_api.UnsafePathError, match=f"segment {segment!r}"):
            run(cancel_api.cancel_run(access_to(api), reason="r", **ids), runner)

        # Not even signed in.
        assert api.requests == []

    @pytest.mark.parametrize("segment", UNSAFE)
    def test_in_the_parent_task_instance_before_anything_is_sent(self, api: FakeApi, segment: str) -> None:
        task = cancel_api.TaskRef(dag_id="parent", run_id="p", task_id=segment, map_index=-1, try_number=1)

        with pytest.raises(cancel_api.UnsafePathError):
            run(cancel_api.read_task_instance(access_to(api), task), "sync")

        assert api.requests == []
        assert TASK_INSTANCE not in api.routes()
