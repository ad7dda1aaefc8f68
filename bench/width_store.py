"""
Every width run's figures, kept in ``bench/width-runs.json``, and the report's view of them merged.

The whole width bench takes about three hours on 2 cores, so it is often run in parts (``--counts``,
``--slots``, ``--waiters``). Each part's figures are appended here as a run of their own; the report
shows, for every slots and count and for the waiters, the newest run that measured them, and names each
run it draws on. Nothing is averaged across runs: every figure is one run's single sample.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench.model import Machine
from bench.width_model import CaseCpu, WaitersSample, WidthCase, WidthResults

if TYPE_CHECKING:
    from pathlib import Path

STORE = "width-runs.json"


def _encode(results: WidthResults) -> dict[str, Any]:
    data = asdict(results)
    data["started_at"] = results.started_at.isoformat()
    data["runs"] = []  # a stored run is one run: its own description is rebuilt from its fields
    return data


def _decode(data: dict[str, Any]) -> WidthResults:
    cases = [
        WidthCase(**{**case, "cpu": None if case["cpu"] is None else CaseCpu(**case["cpu"])})
        for case in data["cases"]
    ]
    machine = data["machine"]
    return WidthResults(
        **{
            **{f.name: data[f.name] for f in fields(WidthResults) if f.name in data},
            "started_at": datetime.fromisoformat(data["started_at"]),
            "counts": tuple(data["counts"]),
            "slots": tuple(data["slots"]),
            "waiter_counts": tuple(data["waiter_counts"]),
            "machine": Machine(**{**machine, "load_at_start": tuple(machine["load_at_start"])}),
            "cases": cases,
            "waiters": [WaitersSample(**sample) for sample in data["waiters"]],
            "runs": [],
        }
    )


def load(out_dir: Path) -> list[WidthResults]:
    """
    The width runs stored in ``out_dir``, oldest first (none if nothing is stored yet).

    :param out_dir: the report's directory.
    """
    path = out_dir / STORE
    if not path.exists():
        return []
    return [_decode(run) for run in json.loads(path.read_text())]


def append(results: WidthResults, out_dir: Path) -> list[WidthResults]:
    """
    Store ``results`` after the runs already kept in ``out_dir``; return them all, oldest first.

    :param results: what this width run measured.
    :param out_dir: the report's directory (created if missing).
    """
    runs = [*load(out_dir), results]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STORE).write_text(json.dumps([_encode(run) for run in runs], indent=1) + "\n")
    return runs


def merge(runs: list[WidthResults]) -> WidthResults:
    """
    One view of ``runs``: each slots and count from the newest run that ran it, the newest waiters.

    The view's ``runs`` are the runs it draws on, oldest first; its notes are theirs, each named by its
    run's start; its machine, the newest run's.

    :param runs: the stored runs, oldest first; at least one.
    """
    newest = runs[-1]
    chosen: dict[tuple[int, int], WidthResults] = {}
    for run in runs:
        for slots in run.slots:
            for count in run.counts:
                chosen[(slots, count)] = run
    waiters_run = next((run for run in reversed(runs) if run.waiters), None)
    drawn_on = {id(run) for run in chosen.values()} | {id(waiters_run)}
    used = [run for run in runs if id(run) in drawn_on]
    slots_order = sorted({slots for slots, _ in chosen}, reverse=True)
    counts_order = sorted({count for _, count in chosen})
    cases = [
        case
        for (slots, count), run in chosen.items()
        for case in run.cases
        if (case.slots, case.count) == (slots, count)
    ]
    return WidthResults(
        started_at=newest.started_at,
        seconds=sum(run.seconds for run in used),
        planned=sum(run.planned for run in used),
        counts=tuple(counts_order),
        slots=tuple(slots_order),
        waiter_counts=() if waiters_run is None else waiters_run.waiter_counts,
        window=newest.window if waiters_run is None else waiters_run.window,
        child_seconds=newest.child_seconds,
        machine=newest.machine,
        waiters_slots=None if waiters_run is None else waiters_run.waiters_slots,
        cases=cases,
        waiters=[] if waiters_run is None else waiters_run.waiters,
        notes=[f"Run of {run.started_at:%Y-%m-%d %H:%M} UTC: {note}" for run in used for note in run.notes],
        runs=used,
    )
