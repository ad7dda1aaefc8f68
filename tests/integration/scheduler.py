"""``ChildFinisher``: plays the scheduler for the child Dag, which ``dag.test()`` never runs."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.sdk.serde import serialize
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from sqlalchemy.orm import Session

ACTIVE = (DagRunState.QUEUED, DagRunState.RUNNING)


class ChildFinisher:
    """
    Purpose: let a parent that waits for its child see the child end, with no scheduler running.

    How it works: a background thread looks in the database every ``poll`` seconds for runs of
    ``dag_id`` that are queued or running. ``after`` seconds after it first sees such a run, it sets the
    run to ``state``, as the scheduler does when a run's tasks end. A run that is cleared (reset) is
    queued again with a higher ``clear_number`` and counts as new, so it gets its own delay. Use it as a
    context manager: the thread is stopped and joined when the block exits, even when the test fails,
    and an error inside the thread is raised there.

    When the delay must count from a moment of the test's scenario rather than from the trigger (say,
    the parent's second try), ``start_when`` is a function the thread calls on each look until it
    returns true; runs are only noticed from then on.

    Every task instance of a run it ends is set to the run's state first, as the scheduler ends a run
    only once its task instances have finished. ``returns`` plays the child's workers too:
    ``{task_id: value}`` for each task instance of that task (every map index of a mapped one, whose
    value is then a list indexed by map index), stored as its ``return_value`` XCom when the run is
    finished. A value of ``None`` stores nothing, as a task that returned ``None``.

    ``only_tasks`` plays a run whose teardown goes on: ``{task_id: state}`` sets just those tasks'
    instances (with their ``returns``) and leaves the run active, so a parent can only end early.

    What it does not do: run the child's tasks, or touch runs that are already final.

    Example::

        with ChildFinisher("child", after=2.0, state=DagRunState.FAILED) as finisher:
            parent.test()
        assert [state for _, state in finisher.finished] == [DagRunState.FAILED]
    """

    def __init__(
        self,
        dag_id: str,
        *,
        after: float,
        state: DagRunState = DagRunState.SUCCESS,
        start_when: Callable[[], bool] | None = None,
        poll: float = 0.1,
        returns: dict[str, Any] | None = None,
        only_tasks: dict[str, TaskInstanceState] | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.returns = returns
        self.only_tasks = only_tasks
        # Runs whose only_tasks were set: still active, never touched again.
        self._left_running: set[tuple[str, int]] = set()
        self.after = after
        self.state = state
        self.poll = poll
        self._start_when = start_when
        #: (run_id, state) of every run this finisher ended, in order.
        self.finished: list[tuple[str, DagRunState]] = []
        self._first_seen: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"finish-{dag_id}-runs", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError(f"The thread finishing {self.dag_id} runs did not stop")
        # The test's own failure, if any, says more; do not replace it.
        if self._error is not None and exc_type is None:
            raise RuntimeError(f"Finishing {self.dag_id} runs failed") from self._error

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self._finish_due_runs()
            except BaseException as error:
                self._error = error
                return

    def _finish_due_runs(self) -> None:
        if self._start_when is not None:
            if not self._start_when():
                return
            self._start_when = None
        now = time.monotonic()
        with create_session() as session:
            active = session.execute(
                select(DagRun.run_id, DagRun.clear_number).where(
                    DagRun.dag_id == self.dag_id, DagRun.state.in_(ACTIVE)
                )
            ).all()
            for run_id, clear_number in active:
                first_seen = self._first_seen.setdefault((run_id, clear_number), now)
                if now - first_seen < self.after or (run_id, clear_number) in self._left_running:
                    continue
                if self.only_tasks is not None:
                    self._set_tasks(session, run_id, self.only_tasks)
                    self._left_running.add((run_id, clear_number))
                    continue
                run = session.scalars(
                    select(DagRun).where(DagRun.dag_id == self.dag_id, DagRun.run_id == run_id)
                ).one()
                # As the scheduler does: a run ends once its task instances have, and a parent that reads
                # their states sees them finished first.
                self._set_tasks(session, run_id, None)
                run.set_state(self.state)
                self.finished.append((run_id, self.state))

    def _set_tasks(self, session: Session, run_id: str, states: dict[str, TaskInstanceState] | None) -> None:
        """Set the run's task instances (of ``states``' tasks only, if given) and store their returns."""
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == self.dag_id, TaskInstance.run_id == run_id)
        ).all()
        for ti in tis:
            if states is not None and ti.task_id not in states:
                continue
            ti.state = TaskInstanceState(self.state.value) if states is None else states[ti.task_id]
            if ti.state != TaskInstanceState.SUCCESS:
                continue
            value = (self.returns or {}).get(ti.task_id)
            if ti.map_index >= 0 and value is not None:
                value = value[ti.map_index]
            if value is not None:
                # Stored as a worker's push stores it: serialized by the SDK, not again by the model.
                XComModel.set(
                    "return_value",
                    serialize(value),
                    dag_id=self.dag_id,
                    task_id=ti.task_id,
                    run_id=run_id,
                    map_index=ti.map_index,
                    serialize=False,
                    session=session,
                )
        session.flush()
