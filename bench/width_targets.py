"""The issue's targets at width, each judged against what the width run measured: met, missed, or not run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.dags.bench import CHILDREN_ALONE, ONE_TASK_FAN_OUT, WIDTH_PARENTS
from bench.targets import Target

if TYPE_CHECKING:
    from bench.width_model import WaitersSample, WidthCase, WidthResults

# The one-task fan-out's makespan over the children alone's.
ONE_TASK_FACTOR = 1.15
# Ours mapped: over the children alone's, and over stock's mapped.
MAPPED_FACTOR = 1.5
MAPPED_VS_STOCK = 0.85
# "Flat": ours' requests per second at the most waiters at most this many times those at the fewest.
FLAT_FACTOR = 1.5
STOCK_MAPPED, OURS_MAPPED = tuple(label for label in WIDTH_PARENTS if label != ONE_TASK_FAN_OUT)


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _not_run(name: str, target: str, measured: str = "-") -> Target:
    return Target(name=name, measured=measured, target=target, verdict="not run")


def _makespan(case: WidthCase | None) -> float | None:
    return None if case is None else case.makespan


def _seconds(case: WidthCase | None) -> str:
    if case is None:
        return "not run"
    return f"no end ({case.state})" if case.makespan is None else f"{case.makespan:.0f} s"


def one_task_target(results: WidthResults, *, slots: int, count: int) -> Target:
    """The one-task fan-out's makespan against the children alone's, at one slots and count."""
    name = f"width, {slots} slots, {count} children: ours TriggerDagRunsOperator makespan"
    target = f"<= {ONE_TASK_FACTOR:g} x the children alone"
    alone = results.case(slots=slots, count=count, label=CHILDREN_ALONE)
    ours = results.case(slots=slots, count=count, label=ONE_TASK_FAN_OUT)
    base = _makespan(alone)
    if ours is None or base is None:
        return _not_run(name, target, f"{_seconds(ours)} (the children alone: {_seconds(alone)})")
    if ours.makespan is None:
        return Target(name, f"{_seconds(ours)} (the children alone: {base:.0f} s)", target, "missed")
    ratio = ours.makespan / base
    measured = f"{ours.makespan:.0f} s = {ratio:.2f} x {base:.0f} s"
    return Target(name, measured, target, _verdict(ratio <= ONE_TASK_FACTOR))


def mapped_target(results: WidthResults, *, slots: int, count: int) -> Target:
    """Ours mapped against the children alone and against stock mapped, at one slots and count."""
    name = f"width, {slots} slots, {count} children: ours mapped deferrable + durable makespan"
    target = f"<= {MAPPED_FACTOR:g} x the children alone and <= {MAPPED_VS_STOCK:g} x stock mapped"
    alone = results.case(slots=slots, count=count, label=CHILDREN_ALONE)
    ours = results.case(slots=slots, count=count, label=OURS_MAPPED)
    stock = results.case(slots=slots, count=count, label=STOCK_MAPPED)
    base = _makespan(alone)
    if ours is None or base is None:
        return _not_run(name, target, f"{_seconds(ours)} (the children alone: {_seconds(alone)})")
    if ours.makespan is None:
        return Target(name, f"{_seconds(ours)} (the children alone: {base:.0f} s)", target, "missed")
    measured = f"{ours.makespan:.0f} s = {ours.makespan / base:.2f} x the children alone"
    ok = ours.makespan <= MAPPED_FACTOR * base
    stock_makespan = _makespan(stock)
    if stock_makespan is None:
        # Stock gave no makespan: only the first half can be judged, and the figure says so.
        measured += f"; stock mapped: {_seconds(stock)}, not compared"
    else:
        measured += f", {ours.makespan / stock_makespan:.2f} x stock's {stock_makespan:.0f} s"
        ok = ok and ours.makespan <= MAPPED_VS_STOCK * stock_makespan
    return Target(name, measured, target, _verdict(ok))


def _rate(sample: WaitersSample) -> str:
    rate = sample.requests_per_second
    return "not logged" if rate is None else f"{rate:.3f}/s"


def flat_poll_target(results: WidthResults) -> Target:
    """Ours' requests per second on a real triggerer, from the fewest waiters to the most."""
    name = "shared poll on a real triggerer: requests per second flat in the number of waiters"
    target = f"most waiters <= {FLAT_FACTOR:g} x fewest"
    ours = sorted((s for s in results.waiters if s.operator == "ours"), key=lambda s: s.waiters)
    stock = {s.waiters: s for s in results.waiters if s.operator == "stock"}
    measured = "; ".join(
        f"{s.waiters} waiters: {_rate(s)}"
        + (f" (stock {_rate(stock[s.waiters])})" if s.waiters in stock else "")
        for s in ours
    )
    rates = [rate for s in ours if (rate := s.requests_per_second) is not None]
    if len(rates) < 2 or len(rates) < len(ours):
        return _not_run(name, target, measured or "-")
    fewest, most = rates[0], rates[-1]
    return Target(name, measured, target, _verdict(most <= FLAT_FACTOR * fewest))


def evaluate(results: WidthResults) -> list[Target]:
    """
    Judge every width target against ``results``: per slots and count asked for, then the waiters'.

    :param results: what the width run measured.
    """
    lines = []
    for slots in results.slots:
        for count in results.counts:
            lines.append(one_task_target(results, slots=slots, count=count))
            lines.append(mapped_target(results, slots=slots, count=count))
    if results.waiter_counts:
        lines.append(flat_poll_target(results))
    return lines
