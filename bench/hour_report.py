"""
The hour's part of ``results.md`` (``make bench-hour``): its targets and its section, and its stored run.

The run is kept in ``bench/hour-run.json`` so the blocks can be written again without waiting another
hour (``write(load(dir), dir)``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench import blocks
from bench.hour import HourResults, HourWait
from bench.model import Machine, WaitSample
from bench.schedule_count import figure
from bench.stats import ratio

if TYPE_CHECKING:
    from pathlib import Path

STORE = "hour-run.json"
# The request budget: at most this many times stock's requests for the same wait (the bench's case 2 target).
BUDGET = 1.2
# ours variant's path -> the stock path it is held to (stock has no end_from_trigger).
STOCK_PATH = {"sync": "sync", "deferrable": "deferrable", "deferrable + end_from_trigger": "deferrable"}


def write(results: HourResults, out_dir: Path) -> Path:
    """
    Store ``results`` and write the hour's blocks into ``out_dir``'s report, keeping the rest; return it.

    :param results: what ``bench.hour.run`` measured.
    :param out_dir: where the report is (created if missing).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STORE).write_text(json.dumps(_encode(results), indent=1) + "\n")
    return blocks.write(
        out_dir, {blocks.HOUR_TARGETS: targets(results), blocks.HOUR_SECTIONS: section(results)}
    )


def load(out_dir: Path) -> HourResults:
    """
    Read the stored run back.

    :param out_dir: the report's directory.
    """
    data = json.loads((out_dir / STORE).read_text())
    machine = data["machine"]
    return HourResults(
        started_at=datetime.fromisoformat(data["started_at"]),
        seconds=data["seconds"],
        length=data["length"],
        machine=Machine(**{**machine, "load_at_start": tuple(machine["load_at_start"])}),
        waits=tuple(
            HourWait(
                sample=WaitSample(
                    **{
                        **wait["sample"],
                        "parent": tuple(wait["sample"]["parent"]),
                        "child": None if wait["sample"]["child"] is None else tuple(wait["sample"]["child"]),
                    }
                ),
                task_requests=wait["task_requests"],
                triggerer_requests=wait["triggerer_requests"],
            )
            for wait in data["waits"]
        ),
        triggerer_logged=data["triggerer_logged"],
    )


def _encode(results: HourResults) -> dict[str, Any]:
    data = asdict(results)
    data["started_at"] = results.started_at.isoformat()
    return data


def _wait(results: HourResults, operator: str, path: str) -> HourWait | None:
    found = [w for w in results.waits if w.sample.operator == operator and w.sample.path == path]
    return found[0] if found else None


def _counted(wait: HourWait) -> bool:
    # A wait counts once its parent succeeded on a child that ran to its end.
    return wait.sample.state == "success" and wait.sample.detection is not None


def targets(results: HourResults) -> str:
    """The hour's rows of the Targets table: ours against stock on each path, measured."""
    lines = [
        f"The hour (`make bench-hour`: {_run_line(results)}):",
        "",
        "| target | measured | asked | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for path, stock_path in STOCK_PATH.items():
        ours, stock = _wait(results, "ours", path), _wait(results, "stock", stock_path)
        name = f"state requests, {_length(results.length)} child, ours {path} (measured)"
        if (
            ours is None
            or stock is None
            or not (_counted(ours) and _counted(stock) and results.triggerer_logged)
        ):
            lines.append(f"| {name} | not measured (see the section) | <= {BUDGET} x stock | **missed** |")
            continue
        r = ratio(ours.requests, stock.requests)
        verdict = "met" if r is not None and r <= BUDGET else "missed"
        lines.append(
            f"| {name} | {ours.requests:g} (stock {stock_path} {stock.requests:g}) = {r:.2f} x | "
            f"<= {BUDGET} x stock | **{verdict}** |"
        )
    return "\n".join(lines)


def section(results: HourResults) -> str:
    """The hour's section: every wait's requests, by where they went, beside the schedule's figure."""
    computed = figure(float(results.length))
    lines = [
        f"## The hour: requests of one wait on a {_length(results.length)} child",
        "",
        f"`make bench-hour` ({_run_line(results)}): one parent per variant, triggered together, each on a "
        f"{results.length} s child of its own, on PostgreSQL and the LocalExecutor. Requests are the "
        "state requests about the child run after its trigger: the parent task's in the api-server's "
        "access log, the triggerer's in-process ones in its log. Ours' deferred checks run in the "
        "shared poller, so its triggerer column is one shared-poll waiter's cost. The child Dags had no "
        "earlier run (no prediction of the length). *Computed*: the synchronous wait's requests by its "
        "schedule (`bench/schedule_count.py`), as case 2 gives them.",
        "",
        "| path | operator | parent task | detection | task's requests | triggerer's | total | computed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for wait in results.waits:
        s = wait.sample
        detection = "-" if s.detection is None else f"{s.detection:.1f} s"
        by_schedule = str(getattr(computed, s.operator)) if s.path == "sync" else ""
        lines.append(
            f"| {s.path} | {s.operator} | {s.state} | {detection} | {wait.task_requests:g} | "
            f"{wait.triggerer_requests:g} | {wait.requests:g} | {by_schedule} |"
        )
    if not results.triggerer_logged:
        lines += [
            "",
            "The triggerer's log did not say it logs its in-process requests: its column is not a count.",
        ]
    return "\n".join(lines)


def _length(seconds: int) -> str:
    """A child's length as the report says it: whole minutes, or seconds for a trial's short child."""
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _run_line(results: HourResults) -> str:
    m = results.machine
    load = "/".join(f"{x:.2f}" for x in m.load_at_start)
    return (
        f"{results.started_at:%Y-%m-%d %H:%M} UTC, {results.seconds / 60:.1f} min, Airflow {m.airflow}, "
        f"{m.cores} cores, load average at start {load}"
    )
