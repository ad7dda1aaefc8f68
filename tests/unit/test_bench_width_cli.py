"""``python -m bench --width`` and its options (``bench/__main__.py``)."""

from __future__ import annotations

import pytest

from bench.__main__ import parse_args, width_options
from bench.waiters import WAITER_COUNTS, WINDOW_SECONDS
from bench.width_runner import COUNTS, SLOTS


def test_width_alone_runs_the_issue_s_whole_width_bench() -> None:
    args = parse_args(["--width"])

    options = width_options(args)

    assert args.width
    assert (options.counts, options.slots, options.waiter_counts) == ((60, 300), (32, 4), (1, 50, 200))
    assert (COUNTS, SLOTS, WAITER_COUNTS) == ((60, 300), (32, 4), (1, 50, 200))
    assert options.window == WINDOW_SECONDS == 180.0
    assert options.child_seconds == 10.0


def test_a_shorter_width_run_takes_its_counts_slots_waiters_and_window() -> None:
    args = parse_args(
        ["--width", "--counts", "60", "--slots", "4,32,4", "--waiters", "1, 50", "--window", "90"]
    )

    options = width_options(args)

    # Each value once, in the order given.
    assert (options.counts, options.slots, options.waiter_counts, options.window) == (
        (60,),
        (4, 32),
        (1, 50),
        90.0,
    )


def test_waiters_none_skips_the_waiters() -> None:
    assert width_options(parse_args(["--width", "--waiters", "none"])).waiter_counts == ()


def test_counts_none_runs_the_waiters_alone_a_thousand_on_request() -> None:
    options = width_options(
        parse_args(["--width", "--counts", "none", "--slots", "32", "--waiters", "50,200,1000"])
    )

    assert (options.counts, options.slots, options.waiter_counts) == ((), (32,), (50, 200, 1000))
    # A thousand is no default: it is asked for.
    assert 1000 not in WAITER_COUNTS


def test_without_width_the_main_bench_runs_as_before() -> None:
    args = parse_args([])

    assert not args.width
    assert (args.counts, args.slots, args.waiters, args.window) == (None, None, None, None)
    assert args.repetitions == 5


@pytest.mark.parametrize(
    "argv",
    [
        ["--counts", "60"],
        ["--slots", "4"],
        ["--waiters", "200"],
        ["--window", "60"],
        ["--width", "--quick"],
        ["--width", "--counts", "0"],
        ["--width", "--counts", "sixty"],
        ["--width", "--slots", ""],
        ["--width", "--waiters", "-1"],
        ["--width", "--window", "0"],
        # Nothing left to run.
        ["--width", "--counts", "none", "--waiters", "none"],
    ],
)
def test_options_that_make_no_sense_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)

    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
