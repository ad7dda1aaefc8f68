"""
Measure a 30-way fan-out on 4 worker slots three ways, one after the other on one embedded Airflow.

- the stock operator, ``deferrable=True``;
- ours, ``deferrable=True, durable=True``;
- ours, synchronous and durable: it stalls (every slot held by a waiting parent, no child can start),
  so it gets ``--stall-window`` seconds, is reported as stalled with what had finished, and is then
  marked failed to free the slots.

Each fan-out is reported with its makespan (the parent run's start to end) beside the floor the slots
set (the children's total runtime divided by the slots), and its child run count. Run with
``python -m bench.fan_out``; the table is printed and written to ``bench/fan_out.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.e2e.flows import child_task_seconds, seconds_between
from tests.e2e.harness import DAGS_FOLDER, E2E_DAGS_FOLDER, PROJECT_ROOT, EmbeddedAirflow, exit_on_sigterm
from tests.e2e.polling import WaitTimeout
from tests.e2e.scenario import FINISHED, Scenario
from tests.e2e.settings import NARROW

WIDTH = 30
CHILD_SLEEP = 10
FAN_OUTS = {
    "stock, deferrable": "fan_out_stock_deferrable",
    "ours, deferrable + durable": "fan_out_deferrable",
    "ours, synchronous + durable": "fan_out_sync",
}


@dataclass(frozen=True)
class Outcome:
    """One fan-out's result: how its parent run ended, how long it took, and the children it made."""

    label: str
    state: str
    makespan: float | None
    floor: float
    children: int
    children_succeeded: int


def fan_out(airflow: EmbeddedAirflow, label: str, dag_id: str, stall_window: float) -> Outcome:
    """Run one fan-out; if it has not ended after ``stall_window`` seconds, fail it and call it stalled."""
    scenario = Scenario(airflow.client, dag_id.replace("_", "-"))
    run_id = scenario.trigger(dag_id, count=WIDTH, sleep=CHILD_SLEEP)
    try:
        parent = scenario.wait_run_finished(dag_id, run_id, timeout=stall_window)
    except WaitTimeout:
        scenario.note(f"no end after {stall_window:.0f}s: marking the run failed to free the slots")
        airflow.client.set_dag_run_state(dag_id, run_id, "failed")
        parent = {**airflow.client.dag_run(dag_id, run_id), "state": "stalled"}
    children = scenario.runs_of("child")
    assert NARROW.parallelism is not None
    finished = [run for run in children if run["state"] in FINISHED]
    floor = child_task_seconds(airflow.client, finished) / NARROW.parallelism
    return Outcome(
        label=label,
        state=parent["state"],
        makespan=seconds_between(parent["start_date"], parent["end_date"])
        if parent["state"] in FINISHED
        else None,
        floor=floor,
        children=len(children),
        children_succeeded=sum(run["state"] == "success" for run in children),
    )


def table(outcomes: list[Outcome], stall_window: float) -> str:
    """The outcomes as the Markdown table the README shows."""
    lines = [
        f"{WIDTH} children of {CHILD_SLEEP} s each, `[core] parallelism = {NARROW.parallelism}`, "
        "one embedded Airflow (SQLite, LocalExecutor), run one after the other.",
        "",
        "| fan-out | parent run | makespan | children's runtime / slots | ratio | child runs (succeeded) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        if o.makespan is None:
            makespan, ratio = f"none after {stall_window:.0f} s", "-"
        else:
            makespan, ratio = f"{o.makespan:.0f} s", f"{o.makespan / o.floor:.2f}" if o.floor else "-"
        lines.append(
            f"| {o.label} | {o.state} | {makespan} | {o.floor:.0f} s | {ratio} | {o.children} ({o.children_succeeded}) |"
        )
    return "\n".join(lines)


def main() -> int:
    """Start a 4-slot Airflow, run the three fan-outs one after the other, print and save the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stall-window", type=float, default=240.0, help="seconds before a fan-out counts as stalled"
    )
    args = parser.parse_args()
    exit_on_sigterm()
    logs = PROJECT_ROOT / "bench-logs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    with EmbeddedAirflow(
        dags_folders=(DAGS_FOLDER, E2E_DAGS_FOLDER), setup=NARROW, keep_logs_in=logs
    ) as airflow:
        outcomes = []
        for label, dag_id in FAN_OUTS.items():
            outcomes.append(fan_out(airflow, label, dag_id, args.stall_window))
            # Let a stalled fan-out's killed tasks and queued children drain before the next one.
            time.sleep(10)
    report = table(outcomes, args.stall_window)
    print(f"\n{report}\n")
    (Path(__file__).parent / "fan_out.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
