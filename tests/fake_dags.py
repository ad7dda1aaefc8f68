"""The child Dags and Dag runs the fake supervisor's server holds; fake runs age with the test's clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def now() -> datetime:
    # datetime.now is what time-machine moves, so fake children age with the test's clock.
    return datetime.now(tz=UTC)


@dataclass
class FakeDag:
    dag_id: str
    is_paused: bool = False
    import_errors: bool = False
    denies_operator_runs: bool = False
    # How long each new run takes, and how it ends.
    run_seconds: float = 5.0
    outcome: str = "success"
    # Its tasks and what each returns once its run has succeeded (None: the task pushes no XCom); a
    # mapped task returns one value per map index.
    returns: dict[str, Any] = field(default_factory=dict)
    mapped_returns: dict[str, list[Any]] = field(default_factory=dict)
    # Task instances that move on their own: key -> [(seconds after the run started, state), ...]. Any
    # other task instance shares its run's state.
    task_timeline: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    # How each new run goes, by its conf: (seconds, outcome). None: every run takes run_seconds and ends
    # in outcome. Lets one item of a fan-out fail (or fail only its first run).
    run_for: Callable[[dict[str, Any] | None], tuple[float, str]] | None = None

    def task_keys(self) -> list[str]:
        mapped = [
            f"{task_id}_{i}" for task_id, values in self.mapped_returns.items() for i in range(len(values))
        ]
        # A real run always has task instances; a Dag that names none has one, as dags/example_child.py does.
        return list(dict.fromkeys([*self.returns, *mapped, *self.task_timeline])) or ["work"]


@dataclass
class FakeRun:
    dag_id: str
    run_id: str
    created_at: datetime
    seconds: float
    outcome: str
    conf: dict[str, Any] | None = None
    resets: int = 0
    # As triggered (None: without one); Airflow keeps one run per Dag and logical date.
    logical_date: datetime | None = None
    # The tasks left failed or upstream_failed when the run ends failed (an empty tuple: none, as in a
    # run marked failed by hand or timed out, whose unfinished tasks were skipped).
    failed_tasks: tuple[str, ...] = ("work",)
    # The outcome of each next attempt after a clear of its failed tasks, in order (then success).
    then: list[str] = field(default_factory=list)
    # How many clears of its failed tasks took.
    clears: int = 0

    def state(self) -> str:
        return self.outcome if now() >= self.created_at + timedelta(seconds=self.seconds) else "running"

    def task_state(self, dag: FakeDag, key: str) -> str | None:
        if key not in dag.task_timeline:
            return self.state()
        elapsed = (now() - self.created_at).total_seconds()
        reached = [state for at, state in dag.task_timeline[key] if elapsed >= at]
        return reached[-1] if reached else None
