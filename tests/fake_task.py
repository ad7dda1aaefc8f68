"""The task's side of the fakes: its ``task_state_store``, its Dag run and its task instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from task_sdk_ext import trigger_dag_run

if TYPE_CHECKING:
    from datetime import timedelta


class FakeTaskStateStore:
    """A dict-backed ``task_state_store``; it survives "retries" because tests keep one per task instance."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.writes: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.writes.append((key, value))
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def clear(self) -> None:
        self.values.clear()


@dataclass
class FakeDagRun:
    """The parent's run as the task context has it: only what the operator reads."""

    clear_number: int = 0


@dataclass
class FakeTaskInstance:
    """
    The parts of ``RuntimeTaskInstance`` the operator uses.

    The Dag-run accessors are the real ones, so every call reaches the fake supervisor as a message.
    """

    dag_id: str = "parent"
    run_id: str = "manual__parent"
    task_id: str = "trigger"
    map_index: int = -1
    try_number: int = 1
    retries: int = 0
    max_tries: int = 0
    xcoms: dict[str, Any] = field(default_factory=dict)
    stats_tags: dict[str, str] = field(default_factory=dict)
    dag_run: FakeDagRun = field(default_factory=FakeDagRun)

    trigger_dag_run = staticmethod(trigger_dag_run)
    get_dagrun_state = staticmethod(RuntimeTaskInstance.get_dagrun_state)
    get_dag = staticmethod(RuntimeTaskInstance.get_dag)
    get_task_states = staticmethod(RuntimeTaskInstance.get_task_states)
    get_ti_count = staticmethod(RuntimeTaskInstance.get_ti_count)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, *, task_ids: str, key: str) -> Any:
        """This task's own XCom (what it pushed this try); the operator reads no other with this."""
        assert task_ids == self.task_id, f"the fake holds only task {self.task_id!r}'s XComs"
        return self.xcoms.get(key)

    def retry(self) -> None:
        """What the scheduler does on an automatic retry: the try number grows, max_tries does not."""
        self.try_number += 1
        self.xcoms.clear()

    def clear(self) -> None:
        """
        What a person's clear does (``clear_task_instances``): ``max_tries`` raised past the last try.

        The run's ``clear_number`` goes up too (the clear resets the run, the UI's default). A running
        task's ``max_tries`` is raised only once the executor reports its end as a success, which is
        what Airflow's executors report for a try the server stopped.
        """
        self.max_tries = self.try_number + self.retries
        self.dag_run.clear_number += 1
        self.try_number += 1
        self.xcoms.clear()
