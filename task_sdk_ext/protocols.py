"""The typed view of a task instance that has ``trigger_dag_run()`` installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime


class TriggeringTaskInstance(Protocol):
    """What the operator uses of ``ti``: the trigger accessor, its poll partner, task states and counts."""

    def trigger_dag_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        *,
        conf: dict[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_after: datetime | None = None,
        reset_dag_run: bool = False,
        note: str | None = None,
    ) -> str:
        """Trigger a Dag run and return its id."""
        ...

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        """Return a Dag run's state."""
        ...

    def get_task_states(
        self, dag_id: str, *, run_ids: list[str] | None = None, task_ids: list[str] | None = None
    ) -> dict[str, Any]:
        """Return ``{run_id: {task_key: state}}``; a mapped task's key is ``<task_id>_<map_index>``."""
        ...

    def get_ti_count(
        self,
        dag_id: str,
        *,
        task_ids: list[str] | None = None,
        run_ids: list[str] | None = None,
        states: list[str] | None = None,
    ) -> int:
        """Return how many task instances match; ``"null"`` among ``states`` matches those without one."""
        ...
