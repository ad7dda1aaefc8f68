"""
The width cases on one Airflow (``python -m bench --width``): fan-outs of 60 and 300 children, four ways.

For each count, one after the other: the children alone (triggered through the REST API, no parent:
Airflow's own time for them on these slots), the stock operator mapped and deferrable, ours mapped,
deferrable and durable, and one ``TriggerDagRunsOperator`` task, deferrable and durable, every child at
once (``bench/dags/bench.py``). Case 4's machinery runs each (``bench.fan_out``: the makespan, the
children). Over each case, from its start to the moment its runs are seen finished:

- **task processes**: the ``PATCH .../run`` each task process sends as it starts, in the api-server's
  access log, children's and parents' alike; the distinct task-instance ids among them are the tries
  (Airflow 3 gives each try an id of its own), the rest the resumes of deferred tries;
- **execution-API requests**: every ``/execution/`` request in that log; the triggerer's in-process
  requests are not among them (``bench.access_log``);
- **triggerer requests**: those in-process requests, one httpx line each in the triggerer's log
  (``bench.triggerer_requests``);
- **CPU seconds** of the scheduler, what it forked (the LocalExecutor's workers and their tasks), the
  triggerer and the api-server, from the kernel's accounting (``bench.cpu``);
- **poll ticks**: our shared poller's ticks on the child Dag, in the triggerer's log.

Cases run one at a time with a pause between them, so each window holds one case's work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import access_log, fan_out, triggerer_log, triggerer_requests
from bench.dags.bench import CHILDREN_ALONE, FAN_OUT_CHILD, ONE_TASK_CHILD, WIDTH_PARENTS, fan_out_child
from bench.model import FanOutSetup
from bench.stats import summarize
from bench.width_model import WidthCase, case_cpu
from bench.width_plan import case_name, case_seconds, case_timeout, minutes
from tests.e2e.scenario import FINISHED

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.cpu import TreeCpu
    from bench.model import FanOutOutcome
    from bench.width_airflow import PostgresLocalAirflow
    from tests.e2e.client import AirflowClient

# Between two cases: the scheduler ends the last run, the triggerer drops the last triggers, the last
# requests are logged; none of it belongs to the next case.
PAUSE_SECONDS = 10.0
CASES = (CHILDREN_ALONE, *WIDTH_PARENTS)


@dataclass
class Marks:
    """
    When a case began and ended, every component's CPU seconds at both moments, and where its logs began.

    The offsets spare reading the logs of every earlier case again: the window still decides what counts.
    """

    start: datetime
    before: dict[str, TreeCpu]
    api_offset: int
    triggerer_offset: int
    end: datetime | None = None
    after: dict[str, TreeCpu] = field(default_factory=dict)


def size(path: Path) -> int:
    """How many bytes ``path`` holds now (0 if it does not exist yet)."""
    return path.stat().st_size if path.exists() else 0


def read_from(path: Path, offset: int) -> list[str]:
    """
    The lines of ``path`` from byte ``offset`` on; a line cut at the offset began before it and is dropped.

    :param path: a log that only grows.
    :param offset: what ``size`` gave before.
    """
    with path.open("rb") as log:
        # From the byte before the offset: a newline there means the offset begins a line.
        log.seek(max(offset - 1, 0))
        data = log.read()
    if offset:
        cut = data.find(b"\n")
        data = b"" if cut < 0 else data[cut + 1 :]
    return data.decode(errors="replace").splitlines()


def run(
    airflow: PostgresLocalAirflow,
    *,
    count: int,
    child_seconds: float,
    on_case: Callable[[WidthCase], None],
    on_error: Callable[[str, Exception], None],
    progress: Callable[[str], None] = print,
) -> None:
    """
    Run the four cases of ``count`` children one after the other; a case that fails does not stop the rest.

    :param airflow: a running width Airflow.
    :param count: the children per case.
    :param child_seconds: each child's length.
    :param on_case: given each case's record as it ends.
    :param on_error: given the name of a case that failed and why.
    :param progress: where the progress lines go.
    """
    for label in CASES:
        name = case_name(airflow.slots, count, label)
        planned = case_seconds(label, count=count, child_seconds=child_seconds, slots=airflow.slots)
        progress(f"[width] {name}: planned {minutes(planned)}")
        try:
            found = measure(airflow, label=label, count=count, child_seconds=child_seconds, planned=planned)
        except Exception as e:
            on_error(name, e)
            stop_leftovers(airflow.client, progress)
        else:
            progress(line(found))
            on_case(found)
            if found.state not in FINISHED:
                # Stalled: its parent failed, its children may still run.
                stop_leftovers(airflow.client, progress)
        time.sleep(PAUSE_SECONDS)


def measure(
    airflow: PostgresLocalAirflow, *, label: str, count: int, child_seconds: float, planned: float
) -> WidthCase:
    """
    Run one case and return its record.

    :param airflow: a running width Airflow.
    :param label: the case (``CHILDREN_ALONE`` or a key of ``WIDTH_PARENTS``).
    :param count: its children.
    :param child_seconds: each child's length.
    :param planned: its planned seconds (it gets ``case_timeout`` of them).
    """
    setup = FanOutSetup(width=count, child_seconds=child_seconds, slots=airflow.slots, repetitions=1)
    began = time.monotonic()
    marks = Marks(
        start=datetime.now(UTC),
        before=airflow.cpu_seconds(),
        api_offset=size(airflow.api_server_log),
        triggerer_offset=size(airflow.triggerer_log),
    )

    def finished() -> None:
        marks.end, marks.after = datetime.now(UTC), airflow.cpu_seconds()

    timeout = case_timeout(planned)
    outcome = (
        fan_out.children_alone(airflow, setup=setup, timeout=timeout, on_finished=finished)
        if label == CHILDREN_ALONE
        else fan_out.fan_out(
            airflow,
            label=label,
            dag_id=WIDTH_PARENTS[label],
            setup=setup,
            stall_window=timeout,
            timeout=timeout,
            on_finished=finished,
        )
    )
    if marks.end is None:
        finished()
    return record(
        airflow,
        outcome=outcome,
        marks=marks,
        count=count,
        seconds=time.monotonic() - began,
        planned=planned,
    )


def record(
    airflow: PostgresLocalAirflow,
    *,
    outcome: FanOutOutcome,
    marks: Marks,
    count: int,
    seconds: float,
    planned: float,
) -> WidthCase:
    """Read the case's figures from the logs, over its window, beside the fan-out's outcome."""
    assert marks.end is not None
    requests = access_log.between(
        access_log.parse(airflow.api_server_log.read_text(errors="replace").splitlines()),
        marks.start,
        marks.end,
    )
    starts = access_log.task_starts(requests)
    triggerer_lines = read_from(airflow.triggerer_log, marks.triggerer_offset)
    ticks = triggerer_log.ticks_between(
        triggerer_log.ticks(triggerer_lines, dag_id=fan_out_child(outcome.label)), marks.start, marks.end
    )
    in_process = (
        len(triggerer_requests.between(triggerer_requests.parse(triggerer_lines), marks.start, marks.end))
        if airflow.logs_requests()
        else None
    )
    notice = None if outcome.noticed is None else summarize(outcome.noticed.lags)
    return WidthCase(
        slots=airflow.slots,
        count=count,
        label=outcome.label,
        state=outcome.state,
        makespan=outcome.makespan,
        children=outcome.children,
        children_succeeded=outcome.children_succeeded,
        seconds=seconds,
        planned=planned,
        processes=starts.processes,
        tries=starts.tries,
        cpu=case_cpu(marks.before, marks.after),
        execution_requests=access_log.execution_requests(requests),
        poll_ticks=len(ticks) or None,
        triggerer_requests=in_process,
        run_end_lag=None if outcome.noticed is None else outcome.noticed.run_end,
        notice_p50=None if notice is None else notice.p50,
        notice_p95=None if notice is None else notice.p95,
        noticed=None if notice is None else notice.n,
    )


def stop_leftovers(client: AirflowClient, progress: Callable[[str], None]) -> None:
    """
    Fail whatever runs a failed case left going, so they do not run on into the next case's window.

    :param client: the Airflow's REST client.
    :param progress: where to say what was stopped, or that it could not be.
    """
    try:
        for dag_id in (FAN_OUT_CHILD, ONE_TASK_CHILD, *WIDTH_PARENTS.values()):
            active = [run for run in client.dag_runs(dag_id) if run["state"] not in FINISHED]
            for run in active:
                client.set_dag_run_state(dag_id, run["dag_run_id"], "failed")
            if active:
                progress(f"[width] marked {len(active)} run(s) of {dag_id} left by the failed case failed")
    except Exception as e:  # best effort: the failure itself is already reported
        progress(f"[width] could not stop the failed case's runs: {type(e).__name__}: {e}")


def line(case: WidthCase) -> str:
    """The progress line of a finished case."""
    makespan = "no end" if case.makespan is None else f"makespan {case.makespan:.0f} s"
    cpu = case.cpu
    spent = (
        ""
        if cpu is None
        else f", CPU s scheduler {cpu.scheduler:.1f} / executor {cpu.executor:.1f} / "
        f"triggerer {cpu.triggerer:.1f}"
    )
    in_process = "" if case.triggerer_requests is None else f" (+{case.triggerer_requests} in the triggerer)"
    return (
        f"[width] {case_name(case.slots, case.count, case.label)}: {case.state}, {makespan}, "
        f"{case.children_succeeded}/{case.children} children, {case.processes} task processes "
        f"({case.tries} tries), {case.execution_requests} execution-API requests{in_process}{spent}; "
        f"took {minutes(case.seconds)} (planned {minutes(case.planned)})"
    )
