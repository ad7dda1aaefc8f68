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
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
from pathlib import Path

from tests.airflow_home import isolated_airflow_home

OUT_DIR = Path(__file__).resolve().parent
# The quick path's children: the short ones (the 120 s child alone would double its time).
QUICK_MAX_LENGTH = 20
# The quick path's case 6: ours alone, under a minute (stock's 60 s poke_interval would double it).
QUICK_VARYING_VARIANTS = ("ours_sync", "ours_deferrable")


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
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark and write its report; return 1 if a case failed.

    :param argv: the arguments (``sys.argv[1:]`` when ``None``).
    """
    args = parse_args(argv)
    # Before anything imports Airflow: the bench's modules do, so they are imported only after this.
    home = isolated_airflow_home(prefix="airflow-bench-", who="the bench")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
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


if __name__ == "__main__":
    sys.exit(main())
