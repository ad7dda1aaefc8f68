"""The benchmark's report: both files written from synthetic samples, and the targets judged on them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bench import report
from bench.model import (
    END_FROM_TRIGGER,
    DurableCost,
    FanOutOutcome,
    FanOutSetup,
    Machine,
    PollScale,
    Results,
    WaitSample,
    operators_of,
)
from bench.runner import notes
from bench.schedule_count import ScheduleFigure
from bench.targets import detection_limit, evaluate

if TYPE_CHECKING:
    from pathlib import Path

MACHINE = Machine(
    cores=2,
    system="Linux test x86_64",
    python="3.11.0",
    airflow="3.3.2",
    standard_provider="1.21.0",
    load_at_start=(0.5, 0.4, 0.3),
)
# Ours noticed within target on every path but the 2 s child's deferrable one (which a worker resumes);
# ended in the triggerer, the 20 s child's misses.
OURS_DETECTION = {
    (2, "sync"): 0.9,
    (2, "deferrable"): 4.0,
    (2, END_FROM_TRIGGER): 1.2,
    (20, "sync"): 2.5,
    (20, "deferrable"): 2.7,
    (20, END_FROM_TRIGGER): 3.5,
}


def samples() -> list[WaitSample]:
    found = []
    for (length, path), detection in OURS_DETECTION.items():
        # The Dag id scheme's variant suffix (bench/dags/bench.py): ours_deferrable_end_from_trigger.
        variant_path = path.replace(" + ", "_")
        for rep in (1, 2, 3):
            # Stock only on the paths it has: it has no end_from_trigger.
            for operator in operators_of(path):
                seconds = detection if operator == "ours" else 58.0 - length
                found.append(
                    WaitSample(
                        length=length,
                        operator=operator,
                        path=path,
                        repetition=rep,
                        parent=(f"bench_parent_{operator}_{variant_path}", f"parent-{length}-{rep}"),
                        state="success",
                        detection=seconds + rep / 10,
                        overhead=seconds + 2.0,
                        child=(f"bench_child_{length}s_{operator}_{variant_path}", f"run-{rep}"),
                        requests=(length + 3.0) if operator == "ours" else 1.0,
                    )
                )
    return found


def results(**overrides: object) -> Results:
    base = Results(
        started_at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
        seconds=600.0,
        repetitions=3,
        quick=False,
        lengths=(2, 20),
        machine=MACHINE,
        waits=samples(),
        schedule=[ScheduleFigure(20.0, 13, 1), ScheduleFigure(3600.0, 72, 60)],
        durable=DurableCost(on_ms=[80.0, 90.0, 100.0], off_ms=[60.0, 65.0, 70.0], repetitions=3, items=1),
        fan_out_setup=FanOutSetup(width=30, child_seconds=10.0, slots=4, repetitions=1),
        fan_outs=[
            FanOutOutcome("stock, deferrable", "success", 150.0, 80.0, 30, 30, 90.0),
            FanOutOutcome("ours, deferrable + durable", "success", 100.0, 80.0, 30, 30, 90.0),
            FanOutOutcome("ours, synchronous + durable", "stalled", None, 0.0, 4, 0, 90.0),
        ],
        poll=[
            PollScale(waiters=1, requests=[2, 2], cpu_ms=[0.5, 0.6], virtual_seconds=600.0),
            PollScale(waiters=1000, requests=[20, 20], cpu_ms=[40.0, 50.0], virtual_seconds=600.0),
        ],
        notes=["A note the reader needs."],
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


def test_write_creates_the_markdown_and_a_png(tmp_path: Path) -> None:
    markdown, png = report.write(results(), tmp_path / "out")

    assert markdown == tmp_path / "out" / "results.md"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    text = markdown.read_text()
    for heading in (
        "## Targets",
        "## 1. Detection latency",
        "## 2. State requests",
        "## 3. Durable cost",
        "## 4. Fan-out",
        "## 5. Shared poll",
        "## Notes",
        "## Every sample",
    ):
        assert heading in text
    assert "- A note the reader needs." in text
    # Every figure comes from the samples: ours on the 2 s child, sync, p50 of 1.0/1.1/1.2.
    assert "| 2 s | sync | ours | 3 | 1.1 s |" in text
    assert "| ours, synchronous + durable | stalled | stalled: no end after 90 s |" in text
    assert "Extra time per trigger (difference of the p50s): **25.0 ms**." in text
    assert "| 20 s | ours | deferrable | 3 | success | 3.0 s | 4.7 s | 23.0 |" in text


def test_targets_are_judged_on_the_measured_figures() -> None:
    verdicts = {t.name: (t.measured, t.verdict) for t in evaluate(results())}

    assert verdicts["detection p50, 2 s child, ours sync"] == ("1.10 s (n=3)", "met")
    assert verdicts["detection p50, 2 s child, ours deferrable"] == ("4.20 s (n=3)", "missed")
    assert verdicts["detection p50, 20 s child, ours deferrable"][1] == "met"
    assert verdicts["detection p50, 120 s child, ours sync"] == ("-", "not run")
    # The path only ours has answers to the same limits.
    assert verdicts[f"detection p50, 2 s child, ours {END_FROM_TRIGGER}"] == ("1.40 s (n=3)", "met")
    assert verdicts[f"detection p50, 20 s child, ours {END_FROM_TRIGGER}"] == ("3.70 s (n=3)", "missed")
    assert verdicts[f"detection p50, 120 s child, ours {END_FROM_TRIGGER}"] == ("-", "not run")
    assert verdicts["state requests, 60 min child (from the schedule)"] == ("72 (stock 60)", "met")
    assert verdicts["durable cost per trigger (p50 durable=True - p50 durable=False)"] == ("25.0 ms", "met")
    assert verdicts["fan-out makespan, ours deferrable + durable"] == ("100 s = 1.25 x 80 s", "met")
    assert verdicts["shared poll: requests per tick independent of the number of waiters"] == (
        "1 waiters: 2, 1000 waiters: 20",
        "missed",
    )


def test_a_case_that_did_not_run_is_reported_as_such(tmp_path: Path) -> None:
    empty = results(waits=[], durable=None, fan_outs=[], poll=[], schedule=[])

    markdown, png = report.write(empty, tmp_path)

    assert {t.verdict for t in evaluate(empty)} == {"not run"}
    assert "## 1. Detection latency" not in markdown.read_text()
    assert png.exists()


@pytest.mark.parametrize(("length", "limit"), [(2, 1.5), (20, 3.0), (120, 12.0), (600, 60.0)])
def test_detection_limits_follow_the_issue(length: int, limit: float) -> None:
    assert detection_limit(length) == pytest.approx(limit)


def test_the_notes_name_failed_parents_and_the_airflow_race_behind_them(tmp_path: Path) -> None:
    waits = samples()
    failed = replace(waits[0], state="failed", detection=None, overhead=None, requests=None)
    run = results(waits=[failed, *waits[1:]], stale_exits={failed.parent})

    found = notes(run, tmp_path)

    (note,) = [n for n in found if "failed and gave no figure" in n]
    assert note.startswith(f"1 parent task(s) failed and gave no figure: {failed.operator} {failed.path} on")
    assert "For 1 of them the scheduler's log shows Airflow's stale-exit race" in note
    assert any(
        n.startswith("Deferrable waits: the triggerer asks the execution API in-process") for n in found
    )


def test_the_path_only_ours_has_gets_ours_rows_compared_with_stock_deferrable(tmp_path: Path) -> None:
    markdown, _ = report.write(results(), tmp_path)
    text = markdown.read_text()

    # Detection: ours 1.4 (p50) against stock's deferrable 56.2 on the 2 s child.
    ratio = f"{1.4 / 56.2:.3g}"
    assert f"| 2 s | {END_FROM_TRIGGER} | ours | 3 | 1.4 s | 1.5 s | 3.2 s | 3.2 s | {ratio} |" in text
    # Requests: ours 5 against stock's deferrable 1, the † of a deferrable wait kept.
    assert f"| 2 s | {END_FROM_TRIGGER} † | ours | 3 | 5.0 | 5.0 |  | 5 |" in text
    # No stock rows, empty or not, for the path stock lacks.
    assert f"| {END_FROM_TRIGGER} | stock |" not in text
    assert f"| {END_FROM_TRIGGER} † | stock |" not in text
    assert f"| 20 s | ours | {END_FROM_TRIGGER} | 1 | success | 3.6 s |" in text


def test_the_notes_say_what_the_end_from_trigger_path_is_only_when_it_ran(tmp_path: Path) -> None:
    found = notes(results(), tmp_path)

    (note,) = [n for n in found if n.startswith(f"`{END_FROM_TRIGGER}`")]
    assert "`end_from_trigger=True`" in note
    assert "off by default" in note
    assert "`on_success_callback`" in note
    assert "resumes on a worker anyway" in note
    without = [w for w in samples() if w.path != END_FROM_TRIGGER]
    assert not [n for n in notes(results(waits=without), tmp_path) if n.startswith(f"`{END_FROM_TRIGGER}`")]
