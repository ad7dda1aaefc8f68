"""A large child run is followed by counts: a synchronous check costs the same whatever the run's size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.comms import GetTaskStates, GetTICount, TriggerDagRun

from standard_ext.wait.counts import COUNT_ABOVE

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent

WAITING: dict[str, Any] = {"wait_for_completion": True, "logical_date": None}
SHARDS = 1000


def wide_child(supervisor: FakeSupervisor, *, failing: int | None = None, seconds: float = 30) -> None:
    """A child whose mapped task ``shard`` has 1,000 instances, each done at ``seconds`` (one may fail)."""
    timeline = {
        f"shard_{i}": [(0.0, "running"), (seconds, "failed" if i == failing else "success")]
        for i in range(SHARDS)
    }
    supervisor.add_dag("child", run_seconds=seconds, task_timeline=timeline)


def answered(supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch) -> list[tuple[BaseModel, int]]:
    """Every message sent after the trigger, with the size of its answer in bytes (JSON, as on the wire)."""
    sizes: list[tuple[BaseModel, int]] = []
    send = supervisor.send

    def sizing(msg: BaseModel) -> BaseModel | None:
        answer = send(msg)
        if supervisor.sent_of(TriggerDagRun):
            sizes.append((msg, 0 if answer is None else len(answer.model_dump_json())))
        return answer

    monkeypatch.setattr(supervisor, "send", sizing)
    return sizes


class TestALargeChild:
    def test_after_the_first_look_each_check_is_two_counts_of_a_few_bytes(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        wide_child(supervisor)
        sizes = answered(supervisor, monkeypatch)

        make_parent(**WAITING).run()

        full = [size for msg, size in sizes if isinstance(msg, GetTaskStates)]
        counts = [size for msg, size in sizes if isinstance(msg, GetTICount)]
        # One full read, which tells the run is large; every later check counts instead.
        assert len(full) == 1
        assert full[0] > 20_000  # 21,980 bytes: "shard_<i>": "running" a thousand times
        assert max(counts) < 60
        checks = len(counts) // 2
        assert len(counts) == 2 * checks
        assert checks >= 5

    def test_its_progress_line_counts_the_tasks_done(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        wide_child(supervisor)

        with structlog.testing.capture_logs() as logs:
            make_parent(**WAITING).run()

        lines = [e["progress"] for e in logs if e["event"] == "Dag run progress"]
        assert lines[0] == f"0/{SHARDS} tasks done, {SHARDS} running, 0 failed"
        assert f"0/{SHARDS} tasks done" in lines[1:]

    def test_fail_fast_counts_failures_and_names_the_one_found(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        wide_child(supervisor, failing=7, seconds=20)
        # The run goes on after its shard fails (a teardown, say): only fail_fast ends the wait then.
        supervisor.dags["child"].run_seconds = 600

        with pytest.raises(AirflowException, match=r"Task 'shard_7' of Dag 'child' run .* is 'failed'"):
            make_parent(fail_fast=True, **WAITING).run()

    def test_the_result_is_ready_when_the_counts_say_every_result_instance_succeeded(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag(
            "child",
            run_seconds=600,
            mapped_returns={"shard": list(range(COUNT_ABOVE + 1))},
            task_timeline={"teardown": [(0.0, "running"), (600.0, "success")]},
        )
        # Every shard succeeds at once in the fake (its instances share the run's state until it ends),
        # so give them a timeline of their own.
        for i in range(COUNT_ABOVE + 1):
            supervisor.dags["child"].task_timeline[f"shard_{i}"] = [(0.0, "running"), (10.0, "success")]

        result = make_parent(result_task_ids=["shard"], **WAITING).run()

        assert result == {"shard": list(range(COUNT_ABOVE + 1))}


class TestASmallChild:
    def test_every_check_reads_its_task_states(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", run_seconds=10)

        make_parent(**WAITING).run()

        assert not supervisor.sent_of(GetTICount)
        assert len(supervisor.sent_of(GetTaskStates)) > 5
