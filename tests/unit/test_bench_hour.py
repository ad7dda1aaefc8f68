"""The hour (``bench/hour.py``, ``bench/hour_report.py``): each wait's requests, by where they went."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bench import __main__ as bench_main
from bench import blocks, hour_report
from bench.access_log import parse
from bench.dags.bench import HOUR_SECONDS, LENGTHS
from bench.hour import HourResults, HourWait, as_served, count
from bench.model import WaitSample
from bench.triggerer_requests import parse as parse_in_process
from standard_ext.wait import schedule as poll_schedule
from tests.unit.test_bench_report import MACHINE

if TYPE_CHECKING:
    from pathlib import Path

OURS = ("bench_child_20s_ours_deferrable", "manual__2026-12-07T21:02:40.100000+00:00")
STOCK = ("bench_child_20s_stock_deferrable", "manual__2026-12-07T21:02:40.200000+00:00")

# The api-server's side: both parents trigger their child, ours reads its child Dag's last success and
# checks once before it defers; a heartbeat is no state request.
SERVED = """\
api-server | 2026-12-07T21:02:40.150000Z [info     ] request finished [http.access] method=POST path=/execution/dag-runs/bench_child_20s_ours_deferrable/manual__2026-12-07T21:02:40.100000+00:00 query= status_code=204
api-server | 2026-12-07T21:02:40.250000Z [info     ] request finished [http.access] method=POST path=/execution/dag-runs/bench_child_20s_stock_deferrable/manual__2026-12-07T21:02:40.200000+00:00 query= status_code=204
api-server | 2026-12-07T21:02:40.300000Z [info     ] request finished [http.access] method=GET path=/execution/dag-runs/previous query='dag_id=bench_child_20s_ours_deferrable&logical_date=2026-12-07T21%3A02%3A40%2B00%3A00&state=success' status_code=200
api-server | 2026-12-07T21:02:40.400000Z [info     ] request finished [http.access] method=GET path=/execution/task-instances/states query='dag_id=bench_child_20s_ours_deferrable&run_ids=manual__2026-12-07T21%3A02%3A40.100000%2B00%3A00' status_code=200
api-server | 2026-12-07T21:02:41.000000Z [info     ] request finished [http.access] method=PUT path=/execution/task-instances/0193/heartbeat query= status_code=204
"""
# The triggerer's side: stock counts its run's final states, ours asks the task states, then the state.
IN_PROCESS = """\
2026-12-07T21:02:45.000000Z [info     ] HTTP Request: GET http://in-process.invalid./dag-runs/count?dag_id=bench_child_20s_stock_deferrable&run_ids=manual__2026-12-07T21%3A02%3A40.200000%2B00%3A00&states=success&states=failed "HTTP/1.1 200 OK" [httpx]
2026-12-07T21:02:46.000000Z [info     ] HTTP Request: GET http://in-process.invalid./task-instances/states?dag_id=bench_child_20s_ours_deferrable&run_ids=manual__2026-12-07T21%3A02%3A40.100000%2B00%3A00 "HTTP/1.1 200 OK" [httpx]
2026-12-07T21:03:01.000000Z [info     ] HTTP Request: GET http://in-process.invalid./task-instances/states?dag_id=bench_child_20s_ours_deferrable&run_ids=manual__2026-12-07T21%3A02%3A40.100000%2B00%3A00 "HTTP/1.1 200 OK" [httpx]
2026-12-07T21:03:01.100000Z [info     ] HTTP Request: GET http://in-process.invalid./dag-runs/bench_child_20s_ours_deferrable/manual__2026-12-07T21:02:40.100000+00:00/state "HTTP/1.1 200 OK" [httpx]
"""


def _sample(operator: str, child: tuple[str, str]) -> WaitSample:
    return WaitSample(
        length=20,
        operator=operator,
        path="deferrable",
        repetition=1,
        parent=(f"bench_parent_{operator}_deferrable", f"bench-{operator}"),
        state="success",
        detection=1.0,
        overhead=2.0,
        child=child,
    )


def _waits() -> list[HourWait]:
    in_process = [as_served(r) for r in parse_in_process(IN_PROCESS.splitlines())]
    return count(
        [_sample("ours", OURS), _sample("stock", STOCK)],
        served=parse(SERVED.splitlines()),
        in_process=in_process,
    )


def test_an_in_process_request_reads_as_the_access_log_shows_it() -> None:
    (request,) = (as_served(r) for r in parse_in_process(IN_PROCESS.splitlines()[3:]))

    assert request.path == f"/execution/dag-runs/{OURS[0]}/{OURS[1]}/state"
    assert request.is_state_request
    assert request.run_ids() == [OURS[1]]


def test_each_wait_counts_the_task_s_requests_and_the_triggerer_s_apart() -> None:
    ours, stock = _waits()

    # Ours: the history and one check before it defers; two checks and the state in the triggerer.
    assert (ours.task_requests, ours.triggerer_requests, ours.requests) == (2, 3, 5)
    # Stock: nothing before it defers, one count in the triggerer.
    assert (stock.task_requests, stock.triggerer_requests, stock.requests) == (0, 1, 1)


def test_a_triggerer_request_before_its_run_was_triggered_is_not_part_of_the_wait() -> None:
    early = IN_PROCESS.splitlines()[1].replace("2026-12-07T21:02:46", "2026-12-07T21:02:39")
    in_process = [as_served(r) for r in parse_in_process([early])]

    (ours,) = count([_sample("ours", OURS)], served=parse(SERVED.splitlines()), in_process=in_process)

    assert ours.triggerer_requests == 0


def test_without_history_our_hour_checks_as_often_as_with_it() -> None:
    # The hour's children have no earlier run: the figure must be the one a Dag with history gets.
    def checks(expected: float | None) -> int:
        schedule = poll_schedule.Schedule(
            waiting_since=0.0, poke_interval=60.0, fast_poll_window=5.0, expected_seconds=expected
        ).seen(started=True, after=0.0, waiting_seen=False)
        offsets = poll_schedule.check_offsets(schedule)
        return next(n for n, offset in enumerate(offsets, start=1) if offset >= HOUR_SECONDS)

    assert checks(None) == checks(float(HOUR_SECONDS))


def _results(waits: list[HourWait], *, logged: bool = True) -> HourResults:
    return HourResults(
        started_at=datetime(2026, 12, 7, 21, 0, tzinfo=UTC),
        seconds=3900.0,
        length=20,
        machine=MACHINE,
        waits=tuple(waits),
        triggerer_logged=logged,
    )


def test_the_target_compares_ours_with_stock_on_the_same_path() -> None:
    ours, stock = _waits()
    cheap = replace(ours, task_requests=0.0, triggerer_requests=1.0)

    assert "**missed**" in hour_report.targets(_results([ours, stock])).splitlines()[5]
    assert "1 (stock deferrable 1) = 1.00 x" in hour_report.targets(_results([cheap, stock]))
    assert "**met**" in hour_report.targets(_results([cheap, stock])).splitlines()[5]


def test_a_wait_without_the_triggerer_s_count_is_not_measured() -> None:
    ours, stock = _waits()

    text = hour_report.targets(_results([ours, stock], logged=False))

    assert "not measured" in text
    assert "**met**" not in text
    assert "not a count" in hour_report.section(_results([ours, stock], logged=False))


def test_a_failed_parent_is_not_measured() -> None:
    ours, stock = _waits()
    failed = replace(ours, sample=replace(ours.sample, state="failed", detection=None))

    assert "not measured" in hour_report.targets(_results([failed, stock])).splitlines()[5]


def test_the_stored_run_reads_back_and_the_blocks_are_kept_by_make_bench(tmp_path: Path) -> None:
    results = _results(_waits())

    markdown = hour_report.write(results, tmp_path)

    assert hour_report.load(tmp_path) == results
    text = markdown.read_text()
    assert blocks.extract(text, blocks.HOUR_TARGETS) == hour_report.targets(results)
    rewritten = blocks.carry_over(text, "# R\n\n## Targets\n\n| t |\n\n## Notes\n")
    assert blocks.extract(rewritten, blocks.HOUR_SECTIONS) == hour_report.section(results)


def test_the_cli_s_lengths_are_the_dag_file_s() -> None:
    assert bench_main.HOUR_SECONDS == HOUR_SECONDS
    assert bench_main.HOUR_LENGTHS == (HOUR_SECONDS, *LENGTHS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hour-length", "20"], "--hour-length goes with --hour"),
        (["--hour", "--hour-length", "7"], "--hour-length must be one of"),
        (["--hour", "--width"], "--hour runs alone"),
    ],
)
def test_the_cli_refuses_what_the_hour_cannot_run(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench_main.parse_args(argv)

    assert message in capsys.readouterr().err
