"""
The benchmark's order of work: case 5 in-process, then cases 1-3 and 6 on one Airflow, case 4 on another.

Case 6 (varying length) runs last on the first Airflow, so the earlier cases' figures are those they
had without it; at 5 repetitions it adds about 3 minutes (see ``bench.varying``).

The two Airflows run one after the other (each takes about a minute to start on 2 cores), each at
Airflow's defaults for how soon it reacts (``tests.e2e.settings.BENCH`` and ``BENCH_NARROW``), and each
is stopped, its logs kept in ``bench-logs/<time>/``, whatever happens. A case that fails is reported
as such and the others still run, so one failure does not cost the whole run.
"""

from __future__ import annotations

import os
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import durable_cost, fan_out, latency, schedule_count, shared_poll, varying
from bench.dags.bench import VARYING_PRIME_SECONDS, VARYING_VARIANTS
from bench.model import END_FROM_TRIGGER, FanOutSetup, Machine, Results, is_deferrable
from tests.e2e.harness import BENCH_DAGS_FOLDER, PROJECT_ROOT, EmbeddedAirflow
from tests.e2e.settings import BENCH, BENCH_NARROW

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from bench.schedule_count import ScheduleFigure
    from tests.e2e.settings import Setup


@dataclass(frozen=True)
class Options:
    """What to run: ``quick`` is the smoke path (fewer, shorter cases) that checks the whole pipeline."""

    repetitions: int
    lengths: tuple[int, ...]
    quick: bool
    fan_out_width: int
    stall_window: float
    stagger: float
    waiter_counts: tuple[int, ...] = shared_poll.WAITERS
    # Case 6's parent variants (keys of bench.dags.bench.VARIANTS).
    varying_variants: tuple[str, ...] = VARYING_VARIANTS


def progress(line: str) -> None:
    """Print one progress line at once (the bench's output is often piped)."""
    print(line, flush=True)


def run(options: Options) -> tuple[Results, list[str]]:
    """
    Run every case and return the results and the cases that failed.

    :param options: what to run.
    """
    started_at = datetime.now(UTC)
    began = time.monotonic()
    results = Results(
        started_at=started_at,
        seconds=0.0,
        repetitions=options.repetitions,
        quick=options.quick,
        lengths=options.lengths,
        machine=Machine.here(),
    )
    logs = PROJECT_ROOT / "bench-logs" / started_at.strftime("%Y%m%d-%H%M%S")
    failed: list[str] = []

    def case(name: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as e:
            traceback.print_exc()
            failed.append(name)
            results.notes.append(f"Case {name} failed: `{type(e).__name__}: {str(e)[:300]}`.")

    results.schedule = schedule_figures(options.lengths)

    def case_5() -> None:
        results.poll = shared_poll.run(waiter_counts=options.waiter_counts, progress=progress)

    case("5 (shared poll)", case_5)

    def on_default_slots() -> None:
        with _airflow(BENCH, logs / "airflow-default-slots") as airflow:

            def cases_1_2() -> None:
                samples = latency.run(
                    airflow,
                    lengths=options.lengths,
                    repetitions=options.repetitions,
                    stagger=options.stagger,
                    progress=progress,
                )
                text = airflow.api_server_log.read_text(errors="replace")
                results.waits = latency.attach_requests(samples, text)
                results.stale_exits = latency.stale_defer_exits(text)
                if "request finished" not in text:
                    results.notes.append(
                        "The api-server's log had no access-log lines: requests not counted."
                    )

            def case_3() -> None:
                results.durable = durable_cost.run(
                    airflow, repetitions=options.repetitions, progress=progress
                )

            def case_6() -> None:
                results.varying = varying.run(
                    airflow,
                    repetitions=options.repetitions,
                    variants=options.varying_variants,
                    stagger=options.stagger,
                    progress=progress,
                )

            case("1-2 (latency, requests)", cases_1_2)
            case("3 (durable cost)", case_3)
            case("6 (varying length)", case_6)

    assert BENCH_NARROW.parallelism is not None
    fan_out_setup = FanOutSetup(
        width=options.fan_out_width,
        child_seconds=fan_out.CHILD_SECONDS,
        slots=BENCH_NARROW.parallelism,
        repetitions=1,
    )

    def on_four_slots() -> None:
        with _airflow(BENCH_NARROW, logs / "airflow-4-slots") as airflow:
            results.fan_out_setup = fan_out_setup
            case(
                "4 (fan-out)",
                lambda: results.fan_outs.extend(
                    fan_out.run(
                        airflow, setup=fan_out_setup, stall_window=options.stall_window, progress=progress
                    )
                ),
            )

    case("Airflow with the default slots", on_default_slots)
    case("Airflow with 4 slots", on_four_slots)
    results.notes.extend(notes(results, logs))
    results.seconds = time.monotonic() - began
    return results, failed


def schedule_figures(lengths: tuple[int, ...]) -> list[ScheduleFigure]:
    """
    Return the requests computed from the operators' schedules: one per child length, then the hour.

    :param lengths: the latency case's child lengths, in seconds.
    """
    return [
        *(schedule_count.figure(float(n)) for n in lengths),
        schedule_count.figure(schedule_count.LONG_CHILD_SECONDS),
    ]


@contextmanager
def _airflow(setup: Setup, logs: Path) -> Iterator[EmbeddedAirflow]:
    """Start an embedded Airflow on the bench's Dags; its context manager stops it whatever happens."""
    progress(f"[airflow] starting an embedded Airflow ({setup.name}); about a minute")
    with EmbeddedAirflow(dags_folders=(BENCH_DAGS_FOLDER,), setup=setup, keep_logs_in=logs) as airflow:
        progress(f"[airflow] ready at {airflow.base_url}")
        yield airflow
    progress(f"[airflow] stopped; its logs are in {logs}")


def notes(results: Results, logs: Path) -> list[str]:
    """
    What a reader needs to judge the figures, from this run's own data.

    :param results: what the run measured.
    :param logs: where the Airflows' logs were kept.
    """
    found = []
    if any(is_deferrable(w.path) for w in results.waits):
        found.append(
            "Deferrable waits: the triggerer asks the execution API in-process "
            "(`TriggerRunnerSupervisor.make_client` uses `InProcessExecutionAPI`, whose app has no "
            "access-log middleware), so its checks appear in no log at the default log level; only the "
            "parent task's requests before it defers and after it resumes (if it does) are counted (†). Case 5 "
            "measures the triggerer's side instead."
        )
    if any(w.path == END_FROM_TRIGGER for w in results.waits):
        found.append(
            f"`{END_FROM_TRIGGER}`: ours deferrable with `end_from_trigger=True`, whose child's success "
            "ends the parent task in the triggerer (a `TaskSuccessEvent`) instead of resuming it on a "
            "worker; off by default because a task so ended skips the worker's success handling "
            "(`on_success_callback`, the success metrics, `[state_store] clear_on_success`), and when "
            "any of those is asked for the operator resumes on a worker anyway."
        )
    ours = [w for w in results.waits if w.operator == "ours" and w.child is not None]
    if ours:
        without = sum(not latency.had_previous_run(w, results.waits) for w in ours)
        found.append(
            f"{without} of our {len(ours)} waits had no earlier finished run of their child Dag to "
            "predict its end from (each child Dag's first repetition, and any that started before it "
            "ended)."
        )
    if failed := [w for w in results.waits if w.state != "success"]:
        stale = sum(w.parent in results.stale_exits for w in failed)
        found.append(
            f"{len(failed)} parent task(s) failed and gave no figure: "
            + ", ".join(
                f"{w.operator} {w.path} on the {w.length} s child (repetition {w.repetition})" for w in failed
            )
            + f". For {stale} of them the scheduler's log shows Airflow's stale-exit race after a quick "
            'deferral ("finished with state success, but the task instance\'s state attribute is queued": '
            "apache/airflow#67287, see docs/deferrable.md); the parents run at their default `retries=0`."
        )
    if unprimed := [v for v in results.varying if not v.primed]:
        found.append(
            f"Varying length: {len(unprimed)} of {len(results.varying)} waits left out, their child Dag's "
            f"last success before the run not the repetition's {VARYING_PRIME_SECONDS} s run: "
            + ", ".join(f"{v.operator} {v.path} (repetition {v.repetition})" for v in unprimed)
            + "."
        )
    if failed_varying := [v for v in results.varying if v.primed and v.detection is None]:
        found.append(
            f"Varying length: {len(failed_varying)} parent task(s) gave no figure: "
            + ", ".join(
                f"{v.operator} {v.path} ({v.state}, repetition {v.repetition})" for v in failed_varying
            )
            + "."
        )
    if results.fan_outs:
        found.append(
            "Fan-out: one repetition of each (each takes minutes); its makespans are single samples."
        )
    # Only the load averages say whether something else ran meanwhile (this machine may be shared).
    start, end, cores = results.machine.load_at_start[0], os.getloadavg()[1], results.machine.cores
    found.append(
        f"Load average on {cores} cores: {start:.2f} (1 min) when the bench began, {end:.2f} (5 min) when "
        "it ended. The bench's own Airflow accounts for some of it; more means other work shared the "
        "machine: absolute figures carry that load, and stock and ours, run side by side, bore it alike."
    )
    # Relative to the checkout: the committed report must not name one machine's paths.
    where = logs.relative_to(PROJECT_ROOT) if logs.is_relative_to(PROJECT_ROOT) else logs
    found.append(f"Airflow's logs of this run (the access log and every task log) are in `{where}`.")
    return found
