"""
The width bench's order of work (``python -m bench --width``): one Airflow per slots setting, in turn.

On each: the four fan-out cases per count (``bench.width``), then, on the Airflow with the most slots,
the deferred waiters (``bench.waiters``). Each Airflow is a fresh PostgreSQL database, dropped when it
stops, its logs kept in ``bench-logs/width-<time>/``. A case that fails is reported as such and the others
still run. The plan (``bench.width_plan``) is printed first, and each case's planned and actual time as
it runs.
"""

from __future__ import annotations

import os
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import waiters, width
from bench.fan_out import CHILD_SECONDS
from bench.model import Machine
from bench.runner import progress
from bench.width_airflow import PostgresLocalAirflow
from bench.width_model import WidthResults
from bench.width_plan import minutes, plan
from tests.e2e.harness import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COUNTS = (60, 300)
SLOTS = (32, 4)
# Airflow's default [triggerer] capacity: the triggers one triggerer runs at once.
TRIGGERER_CAPACITY = 1000


@dataclass(frozen=True)
class WidthOptions:
    """What to run: children per fan-out, the Airflows' slots, the deferred parents per measurement."""

    counts: tuple[int, ...] = COUNTS
    slots: tuple[int, ...] = SLOTS
    waiter_counts: tuple[int, ...] = waiters.WAITER_COUNTS
    window: float = waiters.WINDOW_SECONDS
    child_seconds: float = CHILD_SECONDS


def run(options: WidthOptions) -> tuple[WidthResults, list[str]]:
    """
    Run every width case and return the results and the cases that failed.

    :param options: what to run.
    """
    started_at = datetime.now(UTC)
    began = time.monotonic()
    steps = plan(
        counts=options.counts,
        slots=options.slots,
        waiter_counts=options.waiter_counts,
        window=options.window,
        child_seconds=options.child_seconds,
    )
    results = WidthResults(
        started_at=started_at,
        seconds=0.0,
        planned=sum(step.seconds for step in steps),
        counts=options.counts,
        slots=options.slots,
        waiter_counts=options.waiter_counts,
        window=options.window,
        child_seconds=options.child_seconds,
        machine=Machine.here(),
        waiters_slots=max(options.slots) if options.waiter_counts else None,
    )
    progress(f"[width] the plan, {minutes(results.planned)} in all:")
    for step in steps:
        progress(f"[width]   {step.name}: {minutes(step.seconds)}")
    logs = PROJECT_ROOT / "bench-logs" / started_at.strftime("width-%Y%m%d-%H%M%S")
    failed: list[str] = []

    def on_error(name: str, e: Exception) -> None:
        traceback.print_exc()
        failed.append(name)
        results.notes.append(f"{name} failed: `{type(e).__name__}: {str(e)[:300]}`.")

    for slots in options.slots:
        if not options.counts and slots != results.waiters_slots:
            # Nothing to run on it (--counts none): not even started.
            continue
        try:
            with _airflow(slots, logs / f"airflow-{slots}-slots") as airflow:
                for count in options.counts:
                    width.run(
                        airflow,
                        count=count,
                        child_seconds=options.child_seconds,
                        on_case=results.cases.append,
                        on_error=on_error,
                        progress=progress,
                    )
                if slots == results.waiters_slots:
                    waiters.run(
                        airflow,
                        waiter_counts=options.waiter_counts,
                        window=options.window,
                        on_sample=results.waiters.append,
                        on_error=on_error,
                        progress=progress,
                    )
        except Exception as e:
            on_error(f"The Airflow with {slots} slots", e)
    results.notes.extend(notes(results, logs))
    results.seconds = time.monotonic() - began
    return results, failed


@contextmanager
def _airflow(slots: int, logs: Path) -> Iterator[PostgresLocalAirflow]:
    """Start a width Airflow with ``slots`` slots; its context manager stops it whatever happens."""
    progress(f"[airflow] starting an embedded Airflow on PostgreSQL, LocalExecutor, {slots} slots")
    with PostgresLocalAirflow(slots=slots, keep_logs_in=logs) as airflow:
        progress(f"[airflow] ready at {airflow.base_url}")
        yield airflow
    progress(f"[airflow] stopped, its database dropped; its logs are in {logs}")


def notes(results: WidthResults, logs: Path) -> list[str]:
    """
    What a reader needs to judge this run's figures, from its own data.

    :param results: what the run measured.
    :param logs: where the Airflows' logs were kept.
    """
    found = []
    if unlogged := [c for c in results.cases if c.label.startswith("ours") and c.poll_ticks is None]:
        found.append(
            f"{len(unlogged)} of our cases logged no poll tick: the triggerer's log did not carry the "
            "poller's debug lines (see `bench/triggerer_log.py`), so their poller's wakes are unknown."
        )
    if computed := [s for s in results.waiters if s.computed]:
        found.append(
            "The triggerer's log carried none of its in-process requests (the plugin of "
            "`bench/triggerer_plugins/request_log.py` did not say it loaded), so these requests per second "
            "are computed, not counted: "
            + ", ".join(f"{s.operator} at {s.waiters} waiters ({s.counted})" for s in computed)
            + "."
        )
    if silent := [s for s in results.waiters if s.requests == 0 and s.waiters]:
        found.append(
            "Waiters whose window logged no in-process request although the triggerer logged its requests: "
            + ", ".join(f"{s.operator} at {s.waiters}" for s in silent)
            + "; a poll interval longer than the window, or httpx's logger set back to warning."
        )
    if full := sorted({s.waiters for s in results.waiters if s.waiters >= TRIGGERER_CAPACITY}):
        found.append(
            f"{', '.join(map(str, full))} waiters fill the triggerer's default `[triggerer] capacity` of "
            f"{TRIGGERER_CAPACITY} triggers: one deferral more would wait for a trigger to end."
        )
    if short := [s for s in results.waiters if s.deferred < s.waiters]:
        found.append(
            "Waiters that stopped waiting before the window ended (fewer still deferred than started): "
            + ", ".join(f"{s.operator} {s.deferred} of {s.waiters}" for s in short)
            + "."
        )
    start, end, cores = results.machine.load_at_start[0], os.getloadavg()[1], results.machine.cores
    found.append(
        f"Load average on {cores} cores: {start:.2f} (1 min) when the width bench began, {end:.2f} (5 min) "
        "when it ended; more than the bench's own Airflow means other work shared the machine."
    )
    where = logs.relative_to(PROJECT_ROOT) if logs.is_relative_to(PROJECT_ROOT) else logs
    found.append(f"The width run's Airflow logs (access, triggerer, scheduler, task logs) are in `{where}`.")
    return found
