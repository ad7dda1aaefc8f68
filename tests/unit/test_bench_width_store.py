"""The width runs kept between parts of the width bench, and the one view the report makes of them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench import width_report, width_store
from bench.dags.bench import CHILDREN_ALONE
from tests.unit.test_bench_width_report import WAITERS, case, width_results

if TYPE_CHECKING:
    from pathlib import Path

    from bench.width_model import WidthResults


def part(*, day: int, slots: int, count: int, makespan: float, waiters: bool = False) -> WidthResults:
    return width_results(
        started_at=datetime(2026, 12, day, 3, 0, tzinfo=UTC),
        seconds=600.0 * day,
        planned=700.0 * day,
        counts=(count,),
        slots=(slots,),
        waiter_counts=(1, 50, 200) if waiters else (),
        waiters_slots=slots if waiters else None,
        cases=[case(slots, count, CHILDREN_ALONE, makespan)],
        waiters=list(WAITERS) if waiters else [],
        notes=[f"note of day {day}"],
    )


def test_a_stored_run_reads_back_as_it_was_written(tmp_path: Path) -> None:
    run = width_results()

    assert width_store.append(run, tmp_path) == [run]
    assert width_store.load(tmp_path) == [run]


def test_each_slots_and_count_comes_from_the_newest_run_that_measured_it(tmp_path: Path) -> None:
    width_store.append(part(day=2, slots=4, count=60, makespan=185.0), tmp_path)
    width_store.append(part(day=3, slots=32, count=60, makespan=40.0, waiters=True), tmp_path)
    runs = width_store.append(part(day=4, slots=4, count=60, makespan=190.0), tmp_path)

    merged = width_store.merge(runs)

    assert merged.slots == (32, 4)
    assert merged.counts == (60,)
    assert merged.case(slots=4, count=60, label=CHILDREN_ALONE).makespan == 190.0  # type: ignore[union-attr]
    assert merged.case(slots=32, count=60, label=CHILDREN_ALONE).makespan == 40.0  # type: ignore[union-attr]
    assert merged.waiters == WAITERS
    assert merged.waiters_slots == 32
    # The day-2 run is replaced everywhere: neither its time nor its notes are drawn on.
    assert [run.started_at.day for run in merged.runs] == [3, 4]
    assert merged.seconds == 600.0 * 3 + 600.0 * 4
    assert merged.notes == [
        "Run of 2026-12-03 03:00 UTC: note of day 3",
        "Run of 2026-12-04 03:00 UTC: note of day 4",
    ]


def test_the_report_names_every_run_it_draws_on(tmp_path: Path) -> None:
    width_store.append(part(day=2, slots=4, count=60, makespan=185.0), tmp_path)
    runs = width_store.append(replace(part(day=3, slots=32, count=300, makespan=90.0)), tmp_path)

    text = width_report.write(width_store.merge(runs), tmp_path).read_text()

    assert "run 1: 2026-12-02 03:00 UTC, 20.0 min (planned 23 min); 60 children of 10 s on 4 slots" in text
    assert "run 2: 2026-12-03 03:00 UTC, 30.0 min (planned 35 min); 300 children of 10 s on 32 slots" in text
    # Pairs no run measured are asked of the view and say so rather than vanish.
    assert "width, 4 slots, 300 children: ours TriggerDagRunsOperator makespan | not run" in text


def test_a_run_stored_before_requests_were_logged_reads_back_with_its_rates_computed(tmp_path: Path) -> None:
    # A waiters sample as the runs of 2026-12 stored it: no requests, no routes.
    width_store.append(part(day=6, slots=32, count=60, makespan=40.0, waiters=True), tmp_path)
    store = tmp_path / width_store.STORE
    data = json.loads(store.read_text())
    for sample in data[0]["waiters"]:
        del sample["requests"], sample["routes"]
    for stored_case in data[0]["cases"]:
        del stored_case["triggerer_requests"]
    store.write_text(json.dumps(data))

    (run,) = width_store.load(tmp_path)

    assert [s.counted for s in run.waiters if s.operator != "none (idle)"] == [
        "computed",
        "computed from ticks",
    ] * 3
    assert run.cases[0].triggerer_requests is None
    # A run that logged its requests keeps them, by route, beside it.
    width_store.append(part(day=7, slots=32, count=60, makespan=40.0, waiters=True), tmp_path)
    assert width_store.load(tmp_path)[1].waiters == WAITERS
    assert any(sample.routes for sample in WAITERS)
