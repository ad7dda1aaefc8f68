"""
``python -m bench`` (``make bench``): the stock ``TriggerDagRunOperator`` against ours, on real Airflows.

Runs six cases and writes ``bench/results.md`` (p50/p95, ours/stock, and whether each target is met)
and ``bench/results.png``:

1. detection latency (child end to parent task end) and parent overhead for 2 s, 20 s and 120 s
   children, synchronous and deferrable, and ours deferrable with ``end_from_trigger=True`` too;
2. state requests per wait, counted in the api-server's access log, and computed from the schedule
   for a 60 min child;
3. the durable cost: extra time per trigger of ``durable=True``;
4. a 30-way fan-out on 4 worker slots, and how soon its last child is noticed;
5. the shared poll with 1, 100 and 1,000 deferred waiters in one triggerer process (fake supervisor);
6. a varying length: a 20 s child run right after its Dag's 2 s success, synchronous and deferrable.

About 25 minutes on 2 cores; ``--quick`` checks the whole pipeline in a few.

``--width`` (``make bench-width``) runs the width bench instead, on PostgreSQL (127.0.0.1:5432) with the
LocalExecutor: 60 and 300 children of 10 s on 32 and on 4 slots, alone and under three fan-outs (stock
mapped, ours mapped, ours ``TriggerDagRunsOperator``), then 1, 50 and 200 deferred parents on a real
triggerer. About three hours on 2 cores with the defaults (the plan is printed first; 300 children on 4
slots take half of it); ``--counts``, ``--slots`` and ``--waiters`` run a part of it, and ``--waiters
1000`` adds a count the defaults leave out. The waiters alone, on one Airflow of 32 slots::

    python -m bench --width --counts none --slots 32 --waiters 50,200

It writes only its own blocks of ``results.md`` (``--out`` elsewhere for a trial run).

``--hour`` (``make bench-hour``) waits once per parent variant on a 60-minute child, on PostgreSQL, and
counts each wait's requests: the task's and the triggerer's (``bench.hour``). About 65 minutes; it
writes only its own blocks. ``--hour-length 20`` tries the pipeline on a 20 s child instead.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tests.airflow_home import isolated_airflow_home

if TYPE_CHECKING:
    from bench.width_runner import WidthOptions

OUT_DIR = Path(__file__).resolve().parent
# The quick path's children: the short ones (the 120 s child alone would double its time).
QUICK_MAX_LENGTH = 20
# The quick path's case 6: ours alone, under a minute (stock's 60 s poke_interval would double it).
QUICK_VARYING_VARIANTS = ("ours_sync", "ours_deferrable")
# The hour's child lengths: the hour itself, or case 1's for a trial of the pipeline. Spelled out: the
# bench's Dag file imports Airflow, which must not load before the isolated home is set up.
HOUR_SECONDS = 3600
HOUR_LENGTHS = (HOUR_SECONDS, 2, 20, 120)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """
    Read the command line.

    :param argv: the arguments (``sys.argv[1:]`` when ``None``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=5, help="repetitions per case (default 5)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the smoke path: 1 repetition, the 2 s and 20 s children, a narrower fan-out, case 6 for ours",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write results.md and results.png")
    parser.add_argument(
        "--stall-window",
        type=float,
        default=None,
        help="seconds before the synchronous fan-out counts as stalled (default 90, quick 45)",
    )
    width = parser.add_argument_group("the width bench (--width)")
    width.add_argument("--width", action="store_true", help="run the width bench instead (make bench-width)")
    width.add_argument(
        "--counts",
        type=_optional_counts,
        default=None,
        help="children per fan-out, comma-separated; 'none' runs no fan-out, the waiters alone (default 60,300)",
    )
    width.add_argument(
        "--slots",
        type=_counts,
        default=None,
        help="one Airflow per slots setting, comma-separated (default 32,4)",
    )
    width.add_argument(
        "--waiters",
        type=_optional_counts,
        default=None,
        help="deferred parents per measurement, comma-separated; 'none' skips them (default 1,50,200; "
        "1000 on request)",
    )
    width.add_argument(
        "--window", type=float, default=None, help="seconds each waiters measurement lasts (default 180)"
    )
    hour = parser.add_argument_group("the hour (--hour)")
    hour.add_argument("--hour", action="store_true", help="wait the hour instead (make bench-hour)")
    hour.add_argument(
        "--hour-length",
        type=int,
        default=None,
        help="the child's seconds: 3600 (the default), or one of case 1's lengths for a trial run",
    )
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    width_only = [
        f"--{name}" for name in ("counts", "slots", "waiters", "window") if getattr(args, name) is not None
    ]
    if width_only and not args.width:
        parser.error(f"{', '.join(width_only)} go with --width")
    if args.width and args.quick:
        parser.error("--quick is the main bench's; a short width run is --counts/--slots/--waiters")
    if args.window is not None and args.window <= 0:
        parser.error("--window must be positive")
    if args.counts == () and args.waiters == ():
        parser.error("--counts none and --waiters none leave nothing to run")
    if args.hour_length is not None and not args.hour:
        parser.error("--hour-length goes with --hour")
    if args.hour and (args.width or args.quick):
        parser.error("--hour runs alone: not with --width or --quick")
    if args.hour_length is not None and args.hour_length not in HOUR_LENGTHS:
        parser.error(f"--hour-length must be one of {', '.join(map(str, HOUR_LENGTHS))}")
    return args


def _counts(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, each once, in the order given."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"give positive integers: {text!r}")
    return tuple(dict.fromkeys(values))


def _optional_counts(text: str) -> tuple[int, ...]:
    """Like ``_counts``, or ``none``: none of them run."""
    return () if text.strip().lower() == "none" else _counts(text)


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark and write its report; return 1 if a case failed.

    :param argv: the arguments (``sys.argv[1:]`` when ``None``).
    """
    args = parse_args(argv)
    # Before anything imports Airflow: the bench's modules do, so they are imported only after this.
    home = isolated_airflow_home(prefix="airflow-bench-", who="the bench")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    if args.width:
        return width_main(args)
    if args.hour:
        return hour_main(args)
    from bench import fan_out, latency, report, runner
    from bench.dags.bench import LENGTHS, VARYING_VARIANTS
    from tests.e2e.harness import exit_on_sigterm

    exit_on_sigterm()
    options = runner.Options(
        repetitions=1 if args.quick else args.repetitions,
        lengths=tuple(n for n in LENGTHS if n <= QUICK_MAX_LENGTH) if args.quick else LENGTHS,
        quick=args.quick,
        fan_out_width=8 if args.quick else fan_out.WIDTH,
        stall_window=args.stall_window or (45.0 if args.quick else fan_out.STALL_WINDOW_SECONDS),
        stagger=10.0 if args.quick else latency.STAGGER_SECONDS,
        varying_variants=QUICK_VARYING_VARIANTS if args.quick else VARYING_VARIANTS,
    )
    results, failed = runner.run(options)
    markdown, png = report.write(results, args.out)
    runner.progress(f"[bench] done in {results.seconds / 60:.1f} min: wrote {markdown} and {png}")
    if failed:
        runner.progress(f"[bench] these cases failed (see above and the notes): {', '.join(failed)}")
        return 1
    return 0


def width_main(args: argparse.Namespace) -> int:
    """
    Run the width bench and write its blocks of the report; return 1 if a case failed.

    :param args: what ``parse_args`` read, ``--width`` among it.
    """
    from bench import width_report, width_runner, width_store
    from bench.runner import progress
    from tests.e2e.harness import exit_on_sigterm

    exit_on_sigterm()
    results, failed = width_runner.run(width_options(args))
    markdown = width_report.write(width_store.merge(width_store.append(results, args.out)), args.out)
    progress(f"[width] done in {results.seconds / 60:.1f} min: wrote its part of {markdown}")
    if failed:
        progress(f"[width] these cases failed (see above and the notes): {', '.join(failed)}")
        return 1
    return 0


def hour_main(args: argparse.Namespace) -> int:
    """
    Wait the hour and write its blocks of the report; return 1 if a wait has no count.

    :param args: what ``parse_args`` read, ``--hour`` among it.
    """
    from bench import hour, hour_report
    from bench.runner import progress
    from tests.e2e.harness import exit_on_sigterm

    exit_on_sigterm()
    results = hour.run(length=args.hour_length or HOUR_SECONDS, progress=progress)
    markdown = hour_report.write(results, args.out)
    progress(f"[hour] done in {results.seconds / 60:.1f} min: wrote its part of {markdown}")
    missing = [f"{w.sample.operator} {w.sample.path}" for w in results.waits if w.sample.state != "success"]
    if missing or not results.triggerer_logged:
        progress(f"[hour] not counted: {', '.join(missing) or 'the triggerer did not log its requests'}")
        return 1
    return 0


def width_options(args: argparse.Namespace) -> WidthOptions:
    """
    The width run ``args`` ask for, the defaults where they say nothing.

    :param args: what ``parse_args`` read.
    """
    from bench.width_runner import WidthOptions

    defaults = WidthOptions()
    return WidthOptions(
        counts=defaults.counts if args.counts is None else args.counts,
        slots=args.slots or defaults.slots,
        waiter_counts=defaults.waiter_counts if args.waiters is None else args.waiters,
        window=args.window or defaults.window,
    )


if __name__ == "__main__":
    sys.exit(main())
