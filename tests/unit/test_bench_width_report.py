"""The width bench's part of the report: its targets judged, its tables, and its blocks kept in results.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bench import blocks, report, width_report
from bench.dags.bench import CHILDREN_ALONE, ONE_TASK_FAN_OUT
from bench.width_model import IDLE, CaseCpu, WaitersSample, WidthCase, WidthResults
from bench.width_runner import notes
from bench.width_targets import OURS_MAPPED, STOCK_MAPPED, evaluate
from tests.unit.test_bench_report import MACHINE
from tests.unit.test_bench_report import results as main_results

if TYPE_CHECKING:
    from pathlib import Path

ONE_TASK = "width, {slots} slots, {count} children: ours TriggerDagRunsOperator makespan"
MAPPED = "width, {slots} slots, {count} children: ours mapped deferrable + durable makespan"
FLAT = "real triggerer: ours' requests per second at 200 waiters against 50 (flat in the number of waiters)"
BELOW_STOCK = "real triggerer: ours' requests per second below stock's at 50 and 200 waiters"
CPU_PER_WAITER = "real triggerer: ours' CPU per waiter from 50 to 200 waiters"
# Makespans by (slots, count, case): on 32 slots every target met; on 4 slots, 300 children, ours mapped is
# within 1.5 x the children alone but not 0.85 x stock, and the one task is 1.2 x the children alone.
MAKESPANS = {
    CHILDREN_ALONE: {(32, 60): 50.0, (4, 300): 1000.0},
    STOCK_MAPPED: {(32, 60): 120.0, (4, 300): 1600.0},
    OURS_MAPPED: {(32, 60): 70.0, (4, 300): 1450.0},
    ONE_TASK_FAN_OUT: {(32, 60): 55.0, (4, 300): 1200.0},
}


def case(slots: int, count: int, label: str, makespan: float | None) -> WidthCase:
    return WidthCase(
        slots=slots,
        count=count,
        label=label,
        state="success" if makespan is not None else "stalled",
        makespan=makespan,
        children=count,
        children_succeeded=count,
        seconds=(makespan or 900.0) + 30.0,
        planned=120.0,
        processes=2 * count + 2 if "mapped" in label else count + 2,
        tries=count + 1,
        cpu=CaseCpu(scheduler=12.5, executor=200.0, triggerer=3.25, api_server=40.0),
        execution_requests=10 * count,
        poll_ticks=42 if label.startswith("ours") else None,
        run_end_lag=None if label == CHILDREN_ALONE else 1.5,
        # The triggerer's in-process requests: none without a deferred parent.
        triggerer_requests=0 if label == CHILDREN_ALONE else 2 * count,
        # How soon each child's end was noticed: no parent notices the children alone's.
        notice_p50=None if label == CHILDREN_ALONE else 0.8,
        notice_p95=None if label == CHILDREN_ALONE else 2.5,
        noticed=None if label == CHILDREN_ALONE else count,
    )


def waiters(
    operator: str, n: int, ticks: int | None, requests: int | None, routes: dict[str, int] | None = None
) -> WaitersSample:
    return WaitersSample(
        operator=operator,
        waiters=n,
        deferred=n,
        settled=2.0 * n,
        window=180.0,
        # The idle triggerer's 1.8 s, and 8 ms more per waiter: the same CPU per waiter above idle.
        triggerer_cpu=1.8 + 0.008 * n,
        poke_interval=60.0,
        poll_ticks=ticks,
        poller_waiting=n if ticks is not None else None,
        requests=requests,
        routes=routes or {},
    )


# Requests in 180 s. Ours: 20, 25 and 27 at 1, 50 and 200 waiters (1.08 x from 50 to 200, within 1.5 x), one
# task-state question per tick; stock's, one count per trigger per minute, far more at 50 and 200.
WAITERS = [
    waiters(IDLE, 0, None, 0),
    waiters("stock", 1, None, 3),
    waiters("ours", 1, 20, 20),
    waiters("stock", 50, None, 150, {"GET /dag-runs/count": 150}),
    waiters("ours", 50, 25, 25),
    waiters("stock", 200, None, 600, {"GET /dag-runs/count": 600}),
    waiters(
        "ours", 200, 27, 27, {"GET /task-instances/states": 26, "GET /dag-runs/{dag_id}/{run_id}/state": 1}
    ),
]
# A run made before the triggerer's log carried its requests: ticks only, every rate computed.
UNLOGGED_WAITERS = [replace(sample, requests=None, routes={}) for sample in WAITERS]


def width_results(**overrides: object) -> WidthResults:
    cases = [
        case(slots, count, label, makespan)
        for label, by_setting in MAKESPANS.items()
        for (slots, count), makespan in by_setting.items()
    ]
    base = WidthResults(
        started_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        seconds=5400.0,
        planned=6000.0,
        counts=(60, 300),
        slots=(32, 4),
        waiter_counts=(1, 50, 200),
        window=180.0,
        child_seconds=10.0,
        machine=MACHINE,
        waiters_slots=32,
        cases=cases,
        waiters=list(WAITERS),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def verdicts(results: WidthResults) -> dict[str, tuple[str, str]]:
    return {t.name: (t.measured, t.verdict) for t in evaluate(results)}


def test_the_targets_are_judged_per_slots_and_count_and_those_that_did_not_run_say_so() -> None:
    found = verdicts(width_results())

    assert found[ONE_TASK.format(slots=32, count=60)] == ("55 s = 1.10 x 50 s", "met")
    assert found[MAPPED.format(slots=32, count=60)] == (
        "70 s = 1.40 x the children alone, 0.58 x stock's 120 s",
        "met",
    )
    assert found[ONE_TASK.format(slots=4, count=300)] == ("1200 s = 1.20 x 1000 s", "missed")
    assert found[MAPPED.format(slots=4, count=300)] == (
        "1450 s = 1.45 x the children alone, 0.91 x stock's 1600 s",
        "missed",
    )
    # Asked for, never run: 32 slots with 300 children, 4 slots with 60.
    assert found[ONE_TASK.format(slots=32, count=300)] == ("not run (the children alone: not run)", "not run")
    assert found[MAPPED.format(slots=4, count=60)][1] == "not run"


def test_a_case_with_no_end_misses_and_a_baseline_with_none_leaves_it_unjudged() -> None:
    stalled = [
        c if c.label != OURS_MAPPED else replace(c, makespan=None, state="stalled")
        for c in width_results().cases
    ]
    found = verdicts(width_results(cases=stalled))
    assert found[MAPPED.format(slots=32, count=60)] == (
        "no end (stalled) (the children alone: 50 s)",
        "missed",
    )

    no_baseline = [
        c if c.label != CHILDREN_ALONE else replace(c, makespan=None, state="failed")
        for c in width_results().cases
    ]
    found = verdicts(width_results(cases=no_baseline))
    assert found[ONE_TASK.format(slots=32, count=60)] == (
        "55 s (the children alone: no end (failed))",
        "not run",
    )


def test_stock_without_an_end_leaves_ours_judged_against_the_children_alone_only() -> None:
    cases = [
        c if c.label != STOCK_MAPPED else replace(c, makespan=None, state="stalled")
        for c in width_results().cases
    ]

    measured, verdict = verdicts(width_results(cases=cases))[MAPPED.format(slots=32, count=60)]

    assert measured == "70 s = 1.40 x the children alone; stock mapped: no end (stalled), not compared"
    assert verdict == "met"


class TestWaitersTargets:
    def test_ours_is_flat_below_stock_and_its_cpu_per_waiter_flat_all_measured(self) -> None:
        found = verdicts(width_results())

        assert found[FLAT] == ("50 waiters: 0.139/s; 200 waiters: 0.150/s = 1.08 x", "met")
        assert found[BELOW_STOCK] == (
            "50 waiters: 0.139/s (stock 0.833/s); 200 waiters: 0.150/s (stock 3.333/s)",
            "met",
        )
        # 0.4 s and 1.6 s above the idle triggerer's 1.8 s, over 3 min: 2.7 ms per waiter per minute both.
        assert found[CPU_PER_WAITER] == (
            "50 waiters: 2.7 ms; 200 waiters: 2.7 ms per waiter per minute, above the idle triggerer's "
            "(1.00 x)",
            "met",
        )

    def test_figures_computed_for_want_of_logged_requests_say_so_in_the_target(self) -> None:
        found = verdicts(width_results(waiters=UNLOGGED_WAITERS))

        assert found[FLAT][0] == (
            "50 waiters: 0.278/s (computed from ticks); 200 waiters: 0.300/s (computed from ticks) = 1.08 x"
        )
        assert found[BELOW_STOCK][0] == (
            "50 waiters: 0.278/s (computed from ticks) (stock 0.833/s (computed)); "
            "200 waiters: 0.300/s (computed from ticks) (stock 3.333/s (computed))"
        )

    @pytest.mark.parametrize(
        ("samples", "flat", "below"),
        [
            # Eight times the requests at 200 waiters as at 50: not flat; above stock's at 200.
            (
                [waiters("ours", 50, 10, 100), waiters("ours", 200, 90, 800), *WAITERS[3:6:2]],
                "missed",
                "missed",
            ),
            # A count whose requests and ticks were not logged: no judgement.
            (
                [waiters("ours", 50, 10, 10), waiters("ours", 200, None, None), *WAITERS[3:6:2]],
                "not run",
                "not run",
            ),
            # One count alone, or stock's missing: nothing to compare.
            ([waiters("ours", 200, 30, 30), WAITERS[5]], "not run", "not run"),
            ([waiters("ours", 50, 10, 10), waiters("ours", 200, 12, 12)], "met", "not run"),
            ([], "not run", "not run"),
        ],
    )
    def test_the_request_targets_miss_or_are_not_run_without_their_figures(
        self, samples: list[WaitersSample], flat: str, below: str
    ) -> None:
        found = verdicts(width_results(waiters=samples))

        assert (found[FLAT][1], found[BELOW_STOCK][1]) == (flat, below)

    def test_cpu_per_waiter_rising_misses_and_without_the_idle_window_counts_it_in(self) -> None:
        rising = [WAITERS[0], WAITERS[4], replace(WAITERS[6], triggerer_cpu=1.8 + 0.016 * 200)]
        no_idle = [WAITERS[4], WAITERS[6]]

        assert verdicts(width_results(waiters=rising))[CPU_PER_WAITER][1] == "missed"
        measured, verdict = verdicts(width_results(waiters=no_idle))[CPU_PER_WAITER]
        # 2.2 s and 3.4 s over 3 min: 14.7 and 5.7 ms per waiter per minute, the idle triggerer's in both.
        assert measured == (
            "50 waiters: 14.7 ms; 200 waiters: 5.7 ms per waiter per minute, the idle triggerer's not taken "
            "off (0.39 x)"
        )
        assert verdict == "met"
        assert verdicts(width_results(waiters=[WAITERS[6]]))[CPU_PER_WAITER][1] == "not run"

    def test_no_waiters_asked_for_gives_no_waiters_target(self) -> None:
        found = verdicts(width_results(waiter_counts=(), waiters=[]))

        assert not {FLAT, BELOW_STOCK, CPU_PER_WAITER} & found.keys()


def test_the_width_tables_show_every_case_with_its_figures_and_the_floor(tmp_path: Path) -> None:
    text = width_report.write(width_results(), tmp_path).read_text()

    assert "### 32 slots" in text
    assert "### 4 slots" in text
    assert f"| 300 | not run (see the notes) |{' |' * 15}" in text
    assert (
        f"| 60 | {OURS_MAPPED} | success | 70 s | 1.40 | 1.5 | 0.8 / 2.5 (60) | 60 (60) | 122 (61) | 12.5 | "
        "200.0 | 3.2 | 40.0 | 600 | 120 | 42 | 1.7 min (2.0) |" in text
    )
    assert f"| 60 | {CHILDREN_ALONE} | success | 50 s | 1.00 | - | - | 60 (60) | 62 (61) |" in text
    assert f"| 60 | {STOCK_MAPPED} | success | 120 s | 2.40 | 1.5 |" in text
    assert "| 600 | 0 | - | 1.3 min (2.0) |" in text
    assert "| 600 | 120 | - | 2.5 min (2.0) |" in text
    # The floor: 60 x 10 s over 16 runs at once on 32 slots, over 4 on 4 slots.
    assert f"| 60 | *floor*: 60 x 10 s / 16 runs at once | | 38 s |{' |' * 13}" in text
    assert "| 300 | *floor*: 300 x 10 s / 4 runs at once | | 750 s |" in text


def test_ours_with_no_tick_logged_is_not_logged_and_stock_has_none_to_log(tmp_path: Path) -> None:
    cases = [replace(c, poll_ticks=None) for c in width_results().cases]

    text = width_report.write(width_results(cases=cases), tmp_path).read_text()

    assert (
        f"| 60 | {OURS_MAPPED} | success | 70 s | 1.40 | 1.5 | 0.8 / 2.5 (60) | 60 (60) | 122 (61) | 12.5 | "
        "200.0 | 3.2 | 40.0 | 600 | 120 | not logged |" in text
    )
    assert (
        f"| 60 | {STOCK_MAPPED} | success | 120 s | 2.40 | 1.5 | 0.8 / 2.5 (60) | 60 (60) | 122 (61) | 12.5 | "
        "200.0 | 3.2 | 40.0 | 600 | 120 | - |" in text
    )
    assert any("logged no poll tick" in n for n in notes(width_results(cases=cases), tmp_path))


def test_a_triggerer_log_without_requests_leaves_the_parents_not_logged(tmp_path: Path) -> None:
    cases = [replace(c, triggerer_requests=None) for c in width_results().cases]

    text = width_report.write(width_results(cases=cases), tmp_path).read_text()

    assert "| 600 | not logged | - | 2.5 min (2.0) |" in text
    assert "| 600 | - | - | 1.3 min (2.0) |" in text


class TestWaitersTable:
    def test_each_row_shows_cpu_per_waiter_above_idle_and_the_requests_measured_by_route(
        self, tmp_path: Path
    ) -> None:
        text = width_report.write(width_results(), tmp_path).read_text()

        assert "## 8. Deferred parents on a real triggerer" in text
        assert "| 0 | none (idle) | 0 | - | 1.80 | 1.0 | - | - | 0.000 | measured | - | - |" in text
        # 3.4 s over 180 s for 200 waiters: 5.7 ms per waiter per minute, 2.7 of them above idle.
        assert (
            "| 200 | ours | 200 | 400 s | 3.40 | 1.9 | 5.7 | 2.7 | 0.150 | measured | "
            "26 `GET /task-instances/states`, 1 `GET /dag-runs/{dag_id}/{run_id}/state` | 27 (200) |" in text
        )
        assert (
            "| 200 | stock | 200 | 400 s | 3.40 | 1.9 | 5.7 | 2.7 | 3.333 | measured | "
            "600 `GET /dag-runs/count` | - |" in text
        )

    def test_rates_computed_for_want_of_logged_requests_say_so_in_their_row(self, tmp_path: Path) -> None:
        text = width_report.write(width_results(waiters=UNLOGGED_WAITERS), tmp_path).read_text()

        assert "| 0 | none (idle) | 0 | - | 1.80 | 1.0 | - | - | - | - | - | - |" in text
        assert (
            "| 200 | ours | 200 | 400 s | 3.40 | 1.9 | 5.7 | 2.7 | 0.300 | computed from ticks | - | 27 (200) |"
            in text
        )
        assert "| 200 | stock | 200 | 400 s | 3.40 | 1.9 | 5.7 | 2.7 | 3.333 | computed | - | - |" in text
        found = notes(width_results(waiters=UNLOGGED_WAITERS), tmp_path)
        assert any("computed, not counted: stock at 1 waiters (computed)" in note for note in found)

    def test_a_window_with_no_request_from_its_waiters_is_noted(self, tmp_path: Path) -> None:
        silent = [*WAITERS[:5], replace(WAITERS[5], requests=0, routes={})]

        found = notes(width_results(waiters=silent), tmp_path)

        assert any("logged no in-process request" in note and "stock at 200" in note for note in found)


def test_a_thousand_waiters_are_noted_as_filling_the_triggerer(tmp_path: Path) -> None:
    thousand = [*WAITERS, waiters("stock", 1000, None, 3000), waiters("ours", 1000, 30, 30)]

    found = notes(width_results(waiters=thousand), tmp_path)

    assert any(note.startswith("1000 waiters fill the triggerer's default") for note in found)
    assert not any("fill the triggerer" in note for note in notes(width_results(), tmp_path))


def test_a_waiters_only_run_shows_no_fan_out_table(tmp_path: Path) -> None:
    only = width_results(counts=(), slots=(32,), cases=[], waiter_counts=(50, 200, 1000))

    text = width_report.write(only, tmp_path).read_text()

    assert "no fan-out; on 32 slots; deferred parents: 50, 200, 1000" in text
    assert "### 32 slots" not in text
    assert "## 8. Deferred parents on a real triggerer" in text


def test_the_report_says_which_part_of_the_width_bench_ran(tmp_path: Path) -> None:
    short = width_results(counts=(60,), slots=(32,), waiter_counts=(), waiters=[], waiters_slots=None)

    text = width_report.write(short, tmp_path).read_text()

    assert "60 children of 10 s on 32 slots; deferred parents: none" in text
    assert "300 children" not in text
    assert "## 8. Deferred parents" not in text
    assert "### 4 slots" not in text


def test_the_width_blocks_go_into_the_main_report_and_the_main_bench_keeps_them(tmp_path: Path) -> None:
    report.write(main_results(), tmp_path)
    width_report.write(width_results(), tmp_path)
    text = (tmp_path / "results.md").read_text()

    # The width targets close the Targets section; the width sections come before the Notes.
    assert text.index("## Targets") < text.index(blocks.WIDTH_TARGETS.begin) < text.index("## 1. Detection")
    assert text.index("## 6. Varying") < text.index(blocks.WIDTH_SECTIONS.begin) < text.index("\n## Notes\n")
    assert "| detection p50, 2 s child, ours sync |" in text
    assert "60 and 300 children of 10 s on 32 and 4 slots; deferred parents: 1, 50, 200" in text

    # A second width run replaces its blocks, once each; the main bench's rewrite carries them over.
    width_report.write(width_results(seconds=60.0), tmp_path)
    report.write(main_results(), tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert text.count(blocks.WIDTH_TARGETS.begin) == text.count(blocks.WIDTH_SECTIONS.begin) == 1
    assert ", 1.0 min (planned 100 min)" in text
    assert text.index(blocks.WIDTH_SECTIONS.end) < text.index("\n## Notes\n") < text.index("## Every sample")


def test_a_width_run_before_any_main_run_writes_a_report_of_its_own(tmp_path: Path) -> None:
    text = width_report.write(width_results(), tmp_path).read_text()

    assert text.startswith("# Benchmark")
    assert "`make bench` has not written its part of this report yet." in text
    assert text.index("## Targets") < text.index(blocks.WIDTH_TARGETS.begin) < text.index("## 7. Width")


def test_blocks_are_found_placed_and_carried_over() -> None:
    block = blocks.WIDTH_TARGETS
    plain = "# R\n\n## Targets\n\n| t |\n\n## 1. A\n\ntext\n"

    placed = blocks.place(plain, block, "width rows")
    assert (
        placed == f"# R\n\n## Targets\n\n| t |\n\n{block.begin}\nwidth rows\n{block.end}\n\n## 1. A\n\ntext\n"
    )
    assert blocks.extract(placed, block) == "width rows"
    assert blocks.extract(plain, block) is None
    assert blocks.place(placed, block, "new rows").count("rows") == 1
    # Nothing to go after or before: the end.
    assert blocks.place("# R\n", blocks.WIDTH_SECTIONS, "s").endswith(f"{blocks.WIDTH_SECTIONS.end}\n")
    assert blocks.carry_over(placed, plain) == placed
    assert blocks.carry_over("", plain) == plain
