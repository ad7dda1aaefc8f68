"""One scenario's slice of a shared Airflow: trigger tagged runs, find the runs they caused, wait on them."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.polling import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import AirflowClient, Json

FINISHED = frozenset({"success", "failed"})


class Scenario:
    """
    Purpose: let scenarios share one Airflow without seeing each other's runs.

    How it works: every run a scenario triggers carries ``tag`` in its conf, and the example Dags pass
    the conf (tag included) down to the runs they trigger, so the runs a scenario caused in any Dag are
    exactly those whose conf has its tag. ``note()`` keeps a timeline for reports and the demo.

    What it does not do: clean up. Runs stay in Airflow; the failure report reads their logs from it.
    """

    def __init__(
        self,
        client: AirflowClient,
        name: str,
        echo: bool = True,
        started: float | None = None,
        log_files: Callable[[str, str, str, int, int], str] | None = None,
    ) -> None:
        self.client = client
        # Reads a try's log from Airflow's files (EmbeddedAirflow.task_log_files), for log() to fall back on.
        self.log_files = log_files
        self.name = name
        self.tag = f"{name}-{uuid.uuid4().hex[:8]}"
        self.echo = echo
        # Scenarios run side by side can share a start (a ``time.monotonic()``) so their timelines align.
        self.started = time.monotonic() if started is None else started
        self.timeline: list[tuple[float, str]] = []
        self.triggered: list[tuple[str, str]] = []
        self.watched_dags: set[str] = set()

    def note(self, event: str) -> None:
        """Record (and by default print) a timeline event, stamped with seconds since the scenario began."""
        elapsed = time.monotonic() - self.started
        self.timeline.append((elapsed, event))
        if self.echo:
            print(f"[{self.name}] t={elapsed:5.1f}s {event}", flush=True)

    # -- runs ----------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, **conf: Any) -> str:
        """Trigger ``dag_id`` with ``conf`` plus this scenario's tag; return the run id."""
        run = self.client.trigger_dag_run(dag_id, {**conf, "tag": self.tag})
        run_id: str = run["dag_run_id"]
        self.triggered.append((dag_id, run_id))
        self.note(f"triggered {dag_id} run {run_id}")
        return run_id

    def runs_of(self, dag_id: str) -> list[Json]:
        """The runs of ``dag_id`` that this scenario caused, oldest first."""
        self.watched_dags.add(dag_id)
        runs = self.client.dag_runs(dag_id, conf_contains=self.tag)
        return [run for run in runs if (run.get("conf") or {}).get("tag") == self.tag]

    def wait_run_finished(self, dag_id: str, run_id: str, timeout: float) -> Json:
        run = wait_for(
            lambda: _if(self.client.dag_run(dag_id, run_id), lambda r: r["state"] in FINISHED),
            timeout,
            f"{dag_id} run {run_id} to finish",
        )
        self.note(f"{dag_id} run {run_id} finished: {run['state']}")
        return run

    def wait_runs_finished(self, dag_id: str, count: int, timeout: float) -> list[Json]:
        """Wait until this scenario's runs of ``dag_id`` are at least ``count`` and all finished."""

        def finished() -> list[Json] | None:
            runs = self.runs_of(dag_id)
            done = len(runs) >= count and all(run["state"] in FINISHED for run in runs)
            return runs if done else None

        return wait_for(finished, timeout, f"{count} finished {dag_id} run(s) tagged {self.tag}")

    # -- task instances ------------------------------------------------------------------------------

    def wait_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        predicate: Callable[[Json], bool],
        what: str,
        timeout: float,
        map_index: int = -1,
    ) -> Json:
        """
        Wait until the task instance's API record satisfies ``predicate``; return that record.

        A mapped task instance that does not exist yet (its upstream has not expanded it) is waited for.
        """

        def satisfied() -> Json | None:
            try:
                return _if(self.client.task_instance(dag_id, run_id, task_id, map_index), predicate)
            except httpx.HTTPStatusError as e:
                if map_index >= 0 and e.response.status_code == 404:
                    return None
                raise

        return wait_for(
            satisfied,
            timeout,
            f"{dag_id}.{task_id}[{map_index}] in {run_id}: {what}",
            interval=0.5,
        )

    def wait_task_running(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, timeout: float, map_index: int = -1
    ) -> Json:
        """Wait until try ``try_number`` runs and has reported its pid."""
        return self.wait_task(
            dag_id,
            run_id,
            task_id,
            lambda ti: ti["state"] == "running" and ti["try_number"] == try_number and bool(ti["pid"]),
            f"try {try_number} running with a pid",
            timeout,
            map_index,
        )

    def wait_child_working(self, dag_id: str, task_id: str, count: int, timeout: float) -> list[Json]:
        """
        Wait until ``count`` of this scenario's ``dag_id`` runs have ``task_id`` running; return the runs.

        Then each parent that triggered one is certainly inside its wait, which is where a crash hurts.
        """

        def working() -> list[Json] | None:
            runs = [run for run in self.runs_of(dag_id) if run["state"] == "running"]
            busy = [
                run
                for run in runs
                if self.client.task_instance(dag_id, run["dag_run_id"], task_id)["state"] == "running"
            ]
            return busy if len(busy) >= count else None

        runs = wait_for(working, timeout, f"{count} {dag_id} run(s) tagged {self.tag} with {task_id} running")
        self.note(f"{len(runs)} {dag_id} run(s) working")
        return runs

    def wait_logged(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        text: str,
        timeout: float,
        map_index: int = -1,
    ) -> str:
        """Wait until try ``try_number``'s log (read while it runs) has a line with ``text``; return it."""

        def logged() -> str | None:
            log = self.client.task_log(dag_id, run_id, task_id, try_number, map_index)
            return next((line for line in log.splitlines() if text in line), None)

        return wait_for(logged, timeout, f"{dag_id}.{task_id}[{map_index}] try {try_number} to log {text!r}")

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """
        Return one try's log, through the REST API.

        The API serves a try's log through the try's history row, which Airflow can lose: under the
        stale defer-exit race (apache/airflow#67287) it may start one try more while a resumed try is
        finishing; the extra try finds the task done and exits, and the try it displaced has no history
        row, so the API answers 404 for a try that ran and logged. Only then, and only if Airflow's
        files hold that try's log, is it read from them.
        """
        try:
            return self.client.task_log(dag_id, run_id, task_id, try_number, map_index)
        except httpx.HTTPStatusError as e:
            if e.response.status_code != 404 or self.log_files is None:
                raise
            if not (text := self.log_files(dag_id, run_id, task_id, try_number, map_index)):
                raise
            self.note(f"log of {dag_id}.{task_id}[{map_index}] try {try_number} read from its file (API 404)")
            return text


def _if(value: Json, predicate: Callable[[Json], bool]) -> Json | None:
    return value if predicate(value) else None
