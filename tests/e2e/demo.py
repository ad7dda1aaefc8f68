"""Demo: kill a stock and a durable TriggerDagRunOperator mid-wait side by side; count the child runs."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from tests.e2e.flows import PARENT_TASK, RECONNECT_EVENT, kill_parent_mid_wait, lines_with
from tests.e2e.harness import PROJECT_ROOT, EmbeddedAirflow, exit_on_sigterm
from tests.e2e.scenario import Scenario

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.flows import KillOutcome

PARENTS = {"stock": "example_parent_stock", "durable": "example_parent_durable"}
# Long enough that the child is still running when try 2 starts, so the durable retry reconnects.
CHILD_SLEEP = 20


def run_side_by_side(airflow: EmbeddedAirflow) -> dict[str, tuple[Scenario, KillOutcome]]:
    """Run the kill-mid-wait scenario for both operators at once, each thread with its own client."""
    started = time.monotonic()
    scenarios = {label: Scenario(airflow.new_client(), label, started=started) for label in PARENTS}
    pool = ThreadPoolExecutor(max_workers=len(scenarios))
    try:
        futures = {
            label: pool.submit(kill_parent_mid_wait, scenario, PARENTS[label], CHILD_SLEEP)
            for label, scenario in scenarios.items()
        }
        return {label: (scenarios[label], future.result()) for label, future in futures.items()}
    finally:
        # On failure or Ctrl-C, do not wait for the other thread: stopping Airflow ends its polling.
        pool.shutdown(wait=False, cancel_futures=True)


def timeline(results: dict[str, tuple[Scenario, KillOutcome]]) -> str:
    events = sorted(
        (t, label, event) for label, (scenario, _) in results.items() for t, event in scenario.timeline
    )
    return "\n".join(f"  t={t:5.1f}s  {label:8} {event}" for t, label, event in events)


def table(results: dict[str, tuple[Scenario, KillOutcome]]) -> str:
    header = ("operator", "child runs triggered", "parent outcome", "try number", "time (s)")
    rows = [header] + [
        (
            label,
            str(len(outcome.child_runs)),
            outcome.parent_run["state"],
            str(outcome.task_instance["try_number"]),
            f"{outcome.seconds:.1f}",
        )
        for label, (_, outcome) in results.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def reconnect_line(results: dict[str, tuple[Scenario, KillOutcome]]) -> str:
    scenario, outcome = results["durable"]
    log = scenario.log(PARENTS["durable"], outcome.run_id, PARENT_TASK, 2)
    found = lines_with(log, RECONNECT_EVENT)
    return found[0] if found else f"(try 2 of the durable parent logged no {RECONNECT_EVENT!r})"


def main() -> int:
    exit_on_sigterm()
    logs: Path = PROJECT_ROOT / "demo-logs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    print("Starting an embedded Airflow (about a minute)...", flush=True)
    begun = time.monotonic()
    with EmbeddedAirflow(keep_logs_in=logs) as airflow:
        print(f"Airflow is up on {airflow.base_url} after {time.monotonic() - begun:.0f}s", flush=True)
        airflow.require_dags(*PARENTS.values(), "example_child")
        print("Triggering both parents; each task process is SIGKILLed once its child run is working.")
        results = run_side_by_side(airflow)
        report = "\n\n".join(
            [
                f"Timeline (seconds since both parents were triggered):\n{timeline(results)}",
                table(results),
                f"The durable retry's log:\n  {reconnect_line(results)}",
            ]
        )
        print(f"\n{report}\n\nStopping Airflow...", flush=True)
    (logs / "summary.txt").write_text(report + "\n")
    print(f"Logs (standalone.log, task logs, summary.txt) are in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
