"""``results.png``: detection latency and requests per wait, stock against ours, readable at a glance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

# No display: the chart is only ever written to a file (and the bench may run where there is no screen).
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)
from matplotlib.patches import Patch  # noqa: E402

from bench.dags.bench import CHILDREN_ALONE  # noqa: E402
from bench.model import OPERATORS, PATHS, operators_of  # noqa: E402
from bench.stats import summarize  # noqa: E402
from bench.targets import FAN_OUT_FACTOR, detection_limit  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    from matplotlib.axes import Axes

    from bench.model import Results

COLOURS = {"stock": "#9e9e9e", "ours": "#1f77b4"}
BASELINE_COLOUR = "#e0e0e0"
WIDTH = 0.38


def draw(results: Results, path: Path) -> None:
    """
    Draw the chart of ``results`` into ``path`` (PNG).

    :param results: what the run measured.
    :param path: the file to write.
    """
    # The detection panel the widest: three paths per child length, the end_from_trigger one's label long.
    figure, axes = plt.subplots(1, 3, figsize=(19, 5.5), gridspec_kw={"width_ratios": [3.8, 2, 1.4]})
    _detection(axes[0], results)
    _requests(axes[1], results)
    _fan_out(axes[2], results)
    figure.suptitle(
        f"Stock TriggerDagRunOperator vs ours - Airflow {results.machine.airflow}, "
        f"{results.machine.cores} cores, {results.repetitions} repetition(s)"
    )
    # One legend for every panel, clear of the bars.
    figure.legend(handles=[Patch(color=COLOURS[op], label=op) for op in OPERATORS], loc="upper left", ncols=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(
    ax: Axes,
    groups: list[str],
    values: dict[str, list[tuple[float, float] | None]],
    *,
    alone: Collection[int] = (),
) -> None:
    """
    Grouped bars, stock beside ours: each value a (p50, p95) pair, the p95 as a whisker.

    The groups at the indexes in ``alone`` have one operator's bar only (a path stock lacks), drawn
    centred rather than beside a gap that would read as a stock figure missing.
    """
    for offset, operator in zip((-WIDTH / 2, WIDTH / 2), OPERATORS, strict=True):
        xs = [i + (0.0 if i in alone else offset) for i, v in enumerate(values[operator]) if v is not None]
        found = [v for v in values[operator] if v is not None]
        p50s = [max(p50, 1e-2) for p50, _ in found]
        whiskers = [[0.0] * len(found), [max(p95 - p50, 0.0) for p50, p95 in found]]
        ax.bar(xs, p50s, WIDTH, yerr=whiskers, capsize=3, color=COLOURS[operator], label=operator)
        for x, p50, (_, p95) in zip(xs, p50s, found, strict=True):
            # Above the whisker, where nothing else is drawn.
            ax.annotate(
                f"{p50:.1f}",
                (x, max(p50, p95)),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(groups)), groups, fontsize=8)


def _detection(ax: Axes, results: Results) -> None:
    groups: list[str] = []
    values: dict[str, list[tuple[float, float] | None]] = {op: [] for op in OPERATORS}
    alone: list[int] = []
    for length in results.lengths:
        for path in PATHS:
            # On two lines: the end_from_trigger label is too wide for its group on one.
            label = path.replace(" + ", "\n+ ")
            groups.append(f"{length} s\n{label}")
            if len(operators_of(path)) == 1:
                alone.append(len(groups) - 1)
            for op in OPERATORS:
                s = summarize(
                    w.detection
                    for w in results.waits_of(length=length, operator=op, path=path)
                    if w.detection is not None
                )
                values[op].append(None if s is None else (s.p50, s.p95))
            # The target, as a short line over the group.
            i = len(groups) - 1
            ax.hlines(detection_limit(length), i - WIDTH, i + WIDTH, colors="#d62728", linestyles="--")
    _bars(ax, groups, values, alone=alone)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(
        "1. Detection: parent task end - child run end\n(bars p50, whiskers p95, red dashes: target)"
    )


def _requests(ax: Axes, results: Results) -> None:
    groups: list[str] = []
    values: dict[str, list[tuple[float, float] | None]] = {op: [] for op in OPERATORS}
    for length in results.lengths:
        if length < 10:
            continue  # a few requests at most: nothing to compare
        groups.append(f"{length} s\nsync, counted")
        for op in OPERATORS:
            s = summarize(
                w.requests
                for w in results.waits_of(length=length, operator=op, path="sync")
                if w.requests is not None
            )
            values[op].append(None if s is None else (s.p50, s.p95))
    for figure in results.schedule:
        if figure.child_seconds in results.lengths:
            continue
        groups.append(f"{figure.child_seconds / 60:.0f} min\ncomputed")
        for op in OPERATORS:
            value = float(getattr(figure, op))
            values[op].append((value, value))
        i = len(groups) - 1
        ax.hlines(1.2 * figure.stock, i - WIDTH, i + WIDTH, colors="#d62728", linestyles="--")
    _bars(ax, groups, values)
    ax.set_ylabel("state requests per wait")
    ax.set_title(
        "2. State requests per wait\n(access log; 60 min computed from the schedule; red: 1.2 x stock)"
    )


def _fan_out_colour(label: str) -> str:
    # The children alone are neither operator's: Airflow's own baseline, drawn apart from both.
    if label == CHILDREN_ALONE:
        return BASELINE_COLOUR
    return COLOURS["stock"] if label.startswith("stock") else COLOURS["ours"]


def _fan_out(ax: Axes, results: Results) -> None:
    outcomes = results.fan_outs
    labels = [o.label.replace(", ", "\n").replace(" + ", "\n+ ").replace(" (", "\n(") for o in outcomes]
    # A stalled fan-out has no makespan: its bar stands, hatched, for the window it was given.
    makespans = [o.stall_window if o.makespan is None else o.makespan for o in outcomes]
    colours = [_fan_out_colour(o.label) for o in outcomes]
    bars = ax.bar(range(len(outcomes)), makespans, color=colours)
    for bar, o in zip(bars, outcomes, strict=True):
        if o.makespan is None:
            bar.set_hatch("//")
            bar.set_alpha(0.35)
    for i, o in enumerate(outcomes):
        text = (
            f"{o.makespan:.0f} s" if o.makespan is not None else f"stalled:\nno end in {o.stall_window:.0f} s"
        )
        ax.annotate(
            text,
            (i, makespans[i]),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
        if o.makespan is not None and o.floor:
            ax.hlines(FAN_OUT_FACTOR * o.floor, i - 0.4, i + 0.4, colors="#d62728", linestyles="--")
    ax.set_xticks(range(len(outcomes)), labels, fontsize=8)
    ax.set_ylabel("makespan, seconds")
    ax.set_title(f"4. Fan-out makespan\n(red: {FAN_OUT_FACTOR} x floor)")
