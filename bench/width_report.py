"""
The width bench's part of ``results.md``: its targets, a table per slots setting, the waiters' table, notes.

``make bench-width`` writes only these blocks into the report (``bench.blocks``), beside what
``make bench`` wrote, and ``make bench`` keeps them when it rewrites the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import blocks
from bench.dags.bench import CHILDREN_ALONE
from bench.triggerer_log import REQUESTS_PER_TICK
from bench.width_model import IDLE
from bench.width_plan import (
    MAX_ACTIVE_RUNS_PER_DAG,
    MAX_ACTIVE_TASKS_PER_RUN,
    TIMEOUT_FACTOR,
    TIMEOUT_MIN_SECONDS,
    floor_seconds,
)
from bench.width_targets import evaluate

if TYPE_CHECKING:
    from pathlib import Path

    from bench.width_model import WaitersSample, WidthCase, WidthResults


def write(results: WidthResults, out_dir: Path) -> Path:
    """
    Write the width blocks into ``out_dir``'s report, keeping the rest of it; return its path.

    :param results: what the width run measured.
    :param out_dir: where the report is (created if missing).
    """
    return blocks.write(
        out_dir, {blocks.WIDTH_TARGETS: targets(results), blocks.WIDTH_SECTIONS: sections(results)}
    )


def _run_line(results: WidthResults) -> str:
    if results.runs:
        return "; ".join(f"run {i}: {_run_line(run)}" for i, run in enumerate(results.runs, start=1))
    ran = " and ".join(str(n) for n in results.slots) + " slots"
    counts = " and ".join(str(n) for n in results.counts)
    fan_outs = (
        f"{counts} children of {results.child_seconds:.0f} s on {ran}"
        if results.counts
        else f"no fan-out; on {results.waiters_slots} slots"
    )
    waiters = ", ".join(str(n) for n in results.waiter_counts) or "none"
    return (
        f"{results.started_at:%Y-%m-%d %H:%M} UTC, {results.seconds / 60:.1f} min (planned "
        f"{results.planned / 60:.0f} min); {fan_outs}; deferred parents: {waiters}"
    )


def targets(results: WidthResults) -> str:
    """The width targets' table (``make bench-width``'s part of the Targets section)."""
    lines = [
        f"At width (`make bench-width`: {_run_line(results)}):",
        "",
        "| target | measured | asked | verdict |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {t.name} | {t.measured} | {t.target} | **{t.verdict}** |" for t in evaluate(results)]
    return "\n".join(lines)


def sections(results: WidthResults) -> str:
    """The width sections: the run, a table per slots setting, the waiters, the notes."""
    parts = [_width_intro(results)]
    parts += [_width_table(results, slots) for slots in results.slots if results.counts]
    parts += [_waiters(results), _notes(results)]
    return "\n\n".join(part for part in parts if part)


def _width_intro(results: WidthResults) -> str:
    m = results.machine
    return (
        "## 7. Width on PostgreSQL\n\n"
        f"`make bench-width` ({_run_line(results)}). Airflow {m.airflow} on PostgreSQL with the "
        f"LocalExecutor, each component a process of its own, on {m.cores} cores; every setting at "
        "Airflow's default but the slots (`[core] parallelism`), two loggers at debug, for the poll "
        "ticks (`bench/triggerer_log.py`), and in the triggerer alone a plugin that lets httpx log each "
        "in-process request (`bench/triggerer_plugins/request_log.py`): so a Dag has at most "
        f"{MAX_ACTIVE_RUNS_PER_DAG} active runs, and every child is a run of `bench_fan_out_child`, "
        f"whose task sleeps {results.child_seconds:.0f} s. The cases ran one after the other on one "
        "Airflow per slots setting, one repetition each: single samples.\n\n"
        "- *makespan*: the parent run's start to end; the children alone's, the first child run's "
        "creation to the last one's end (REST API). *Run end - last child end*: how long after its last "
        "child the parent run ended (case 4's lag). *Floor*: the children's length over the runs that "
        "can work at once.\n"
        "- *task processes (tries)*: the `PATCH /execution/task-instances/<id>/run` each task process "
        "sends as it starts, in the api-server's access log over the case, children's and parents' "
        "alike; the tries are the distinct task-instance ids among them (Airflow 3 gives each try its "
        "own), the rest are deferred tasks resumed.\n"
        "- *CPU s*: user + system seconds over the case (psutil): the scheduler's own process; "
        "*executor + tasks*, all it forked (the LocalExecutor's workers and the task processes, the "
        "tasks' own work included); the triggerer's and the api-server's processes with all they forked.\n"
        "- *execution-API requests*: every `/execution/` request in the access log over the case: the "
        "task processes' (heartbeats included). The triggerer's are not there: it calls the API "
        "in-process. *Triggerer requests*: those, counted from httpx's `HTTP Request` lines in the "
        "triggerer's log over the case (`bench/triggerer_requests.py`; *not logged* where its log did not "
        "carry them). *Poll ticks*: our shared poller's ticks on the child Dag in the triggerer's log; "
        "stock's `DagStateTrigger` logs nothing per poll."
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(case: WidthCase, alone: WidthCase | None) -> str:
    if case.makespan is None or alone is None or not alone.makespan:
        return "-"
    return f"{case.makespan / alone.makespan:.2f}"


def _ticks(case: WidthCase) -> str:
    if case.poll_ticks is not None:
        return str(case.poll_ticks)
    # Ours waits through the shared poller: nothing logged is a figure missing, not none made.
    return "not logged" if case.label.startswith("ours") else "-"


def _triggerer_requests(case: WidthCase) -> str:
    if case.triggerer_requests is not None:
        return str(case.triggerer_requests)
    # A deferrable parent waits in the triggerer: nothing logged is a figure missing, not none made.
    return "-" if case.label == CHILDREN_ALONE else "not logged"


def _notice(case: WidthCase) -> str:
    if case.notice_p50 is None or case.notice_p95 is None:
        return "-"
    return f"{case.notice_p50:.1f} / {case.notice_p95:.1f} ({case.noticed})"


def _width_table(results: WidthResults, slots: int) -> str:
    lines = [
        f"### {slots} slots",
        "",
        "| children | case | parent run | makespan | / children alone | run end - last child end | "
        "each child's end noticed p50 / p95 (n) | children (succeeded) | task processes (tries) | scheduler CPU s | executor + tasks CPU s | "
        "triggerer CPU s | api-server CPU s | execution-API requests | triggerer requests | poll ticks | "
        "wall time (planned) |",
        "|" + " --- |" * 17,
    ]
    for count in results.counts:
        floor = floor_seconds(count=count, child_seconds=results.child_seconds, slots=slots)
        alone = results.case(slots=slots, count=count, label=CHILDREN_ALONE)
        ran = [c for c in results.cases if (c.slots, c.count) == (slots, count)]
        if not ran:
            lines.append(f"| {count} | not run (see the notes) |{' |' * 15}")
            continue
        for case in ran:
            cpu = case.cpu
            makespan = f"no end ({case.state})" if case.makespan is None else f"{case.makespan:.0f} s"
            processes = "-" if case.processes is None else f"{case.processes} ({case.tries})"
            lines.append(
                f"| {count} | {case.label} | {case.state} | {makespan} | {_ratio(case, alone)} | "
                f"{_fmt(case.run_end_lag)} | {_notice(case)} | {case.children} ({case.children_succeeded}) | "
                f"{processes} | "
                f"{_fmt(None if cpu is None else cpu.scheduler)} | "
                f"{_fmt(None if cpu is None else cpu.executor)} | "
                f"{_fmt(None if cpu is None else cpu.triggerer)} | "
                f"{_fmt(None if cpu is None else cpu.api_server)} | "
                f"{'-' if case.execution_requests is None else case.execution_requests} | "
                f"{_triggerer_requests(case)} | {_ticks(case)} | "
                f"{case.seconds / 60:.1f} min ({case.planned / 60:.1f}) |"
            )
        lines.append(
            f"| {count} | *floor*: {count} x {results.child_seconds:.0f} s / "
            f"{min(slots, MAX_ACTIVE_RUNS_PER_DAG)} runs at once | | {floor:.0f} s |{' |' * 13}"
        )
    return "\n".join(lines)


def _rate(sample: WaitersSample) -> str:
    rate = sample.requests_per_second
    return "-" if rate is None else f"{rate:.3f}"


def _routes(sample: WaitersSample) -> str:
    return ", ".join(f"{count} `{route}`" for route, count in sample.routes.items()) or "-"


def _waiters(results: WidthResults) -> str:
    if not results.waiters:
        return ""
    idle = next((s for s in results.waiters if s.operator == IDLE), None)
    lines = [
        "## 8. Deferred parents on a real triggerer",
        "",
        f"On the {results.waiters_slots}-slot Airflow: a mapped deferrable parent per row, one task per "
        "waiter, each waiting on a run of the paused `bench_paused_target` (queued for good: the same "
        f"waiters from the window's start to its end), each operator at its defaults. Once all were "
        f"deferred, {results.window:.0f} s with no request from the bench. *Requests/s*: the triggerer's "
        "in-process requests over the window, ours' and stock's alike, one httpx `HTTP Request` line each "
        "in its log (`bench/triggerer_requests.py`), *by route* below. Where the log carried none (runs "
        "before it did), the figure is *computed*: ours from the poller's ticks logged, "
        f"{REQUESTS_PER_TICK} requests each (what a tick asked then), stock's as one count per trigger "
        "per `poke_interval`. *Triggerer CPU*: its process and the trigger runner, over the window; the "
        "idle row is the triggerer with nothing to wait on, and *above idle* takes its CPU off.",
        "",
        "| parents waiting | operator | still deferred | all deferred after | triggerer CPU s | "
        "% of a core | CPU ms per waiter per min | above idle | requests/s | counted | by route | "
        "poll ticks (waiting) |",
        "|" + " --- |" * 12,
    ]
    for s in results.waiters:
        per_waiter = s.cpu_ms_per_waiter_minute()
        above = s.cpu_ms_per_waiter_minute(idle) if idle is not None else None
        ticks = "-" if s.poll_ticks is None else f"{s.poll_ticks} ({s.poller_waiting})"
        settled = "-" if s.operator == IDLE else f"{s.settled:.0f} s"
        lines.append(
            f"| {s.waiters} | {s.operator} | {s.deferred} | {settled} | {s.triggerer_cpu:.2f} | "
            f"{100 * s.triggerer_cpu / s.window:.1f} | {_fmt(per_waiter)} | {_fmt(above)} | {_rate(s)} | "
            f"{s.counted} | {_routes(s)} | {ticks} |"
        )
    return "\n".join(lines)


def _notes(results: WidthResults) -> str:
    found = [
        "The triggerer asks the execution API in-process, so none of its requests are in the "
        "execution-API column; they are in the triggerer-requests column, from its own log.",
        "Each deferred parent that resumes starts a task process of its own: a mapped deferrable parent "
        "costs two per child (trigger, resume), the one-task fan-out one or two in all.",
        f"A run has at most {MAX_ACTIVE_TASKS_PER_RUN} tasks running at once (`[core] "
        "max_active_tasks_per_dag`), deferred ones not counted: the mapped parents start at most that "
        "many tasks at a time.",
        "CPU seconds are the kernel's accounting of each process tree; a process that ended between "
        "two looks and was not yet reaped is missed (at most one per sample).",
        f"A case runs until its runs finish or for {TIMEOUT_FACTOR:g} times its plan (at least "
        f"{TIMEOUT_MIN_SECONDS:.0f} s); one that ran out is failed and shows no end.",
        *results.notes,
    ]
    return "### Width notes\n\n" + "\n".join(f"- {note}" for note in found)
