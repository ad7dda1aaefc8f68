"""The issue's targets at width, each judged against what the width run measured: met, missed, or not run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.dags.bench import CHILDREN_ALONE, ONE_TASK_FAN_OUT, WIDTH_PARENTS
from bench.targets import Target
from bench.width_model import IDLE

if TYPE_CHECKING:
    from bench.width_model import WaitersSample, WidthCase, WidthResults

# The one-task fan-out's makespan over the children alone's.
ONE_TASK_FACTOR = 1.15
# Each child's end noticed this soon (p95) by the one-task fan-out, on a child Dag only fan-outs run.
NOTICE_P95_SECONDS = 5.0
# The counts and slots the notice target is asked at (where there are more children than slots).
NOTICE_AT = ((32, 60),)
# Ours mapped: over the children alone's, and over stock's mapped.
MAPPED_FACTOR = 1.5
MAPPED_VS_STOCK = 0.85
# "Flat": ours' requests per second at FLAT_TO waiters at most this many times those at FLAT_FROM.
FLAT_FROM, FLAT_TO = 50, 200
FLAT_FACTOR = 1.5
# Ours' triggerer CPU per waiter, "flat or falling" from FLAT_FROM to FLAT_TO: at most this many times,
# the noise of single samples (a tenth of a CPU second over a window) left room.
CPU_FLAT_FACTOR = 1.1
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


def notice_target(results: WidthResults, *, slots: int, count: int) -> Target:
    """How soon the one-task fan-out noticed each child end (p95), at one slots and count."""
    name = (
        f"width, {slots} slots, {count} children: ours TriggerDagRunsOperator, each child's end noticed (p95)"
    )
    target = f"<= {NOTICE_P95_SECONDS:g} s"
    ours = results.case(slots=slots, count=count, label=ONE_TASK_FAN_OUT)
    if ours is None or ours.notice_p95 is None or ours.notice_p50 is None:
        return _not_run(name, target, "not measured" if ours is not None else "-")
    measured = (
        f"p95 {ours.notice_p95:.1f} s, p50 {ours.notice_p50:.1f} s (n={ours.noticed} of {ours.children})"
    )
    complete = ours.noticed == ours.children
    return Target(name, measured, target, _verdict(complete and ours.notice_p95 <= NOTICE_P95_SECONDS))


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


def _rate(sample: WaitersSample | None) -> str:
    if sample is None:
        return "not run"
    rate = sample.requests_per_second
    if rate is None:
        return "not logged"
    return f"{rate:.3f}/s" + (f" ({sample.counted})" if sample.computed else "")


def _samples(results: WidthResults, operator: str) -> dict[int, WaitersSample]:
    return {s.waiters: s for s in results.waiters if s.operator == operator}


def flat_poll_target(results: WidthResults) -> Target:
    """Ours' requests per second on a real triggerer at the most waiters the target names, against the fewest."""
    name = (
        f"real triggerer: ours' requests per second at {FLAT_TO} waiters against {FLAT_FROM} "
        "(flat in the number of waiters)"
    )
    target = f"<= {FLAT_FACTOR:g} x at {FLAT_FROM}"
    ours = _samples(results, "ours")
    fewest, most = ours.get(FLAT_FROM), ours.get(FLAT_TO)
    measured = f"{FLAT_FROM} waiters: {_rate(fewest)}; {FLAT_TO} waiters: {_rate(most)}"
    low = None if fewest is None else fewest.requests_per_second
    high = None if most is None else most.requests_per_second
    if low is None or high is None:
        return _not_run(name, target, measured)
    if low:
        measured += f" = {high / low:.2f} x"
    return Target(name, measured, target, _verdict(high <= FLAT_FACTOR * low))


def below_stock_target(results: WidthResults) -> Target:
    """Ours' requests per second on a real triggerer below stock's, at each count the target names."""
    counts = (FLAT_FROM, FLAT_TO)
    name = (
        "real triggerer: ours' requests per second below stock's at "
        + " and ".join(str(n) for n in counts)
        + " waiters"
    )
    target = "ours < stock at each"
    ours, stock = _samples(results, "ours"), _samples(results, "stock")
    measured = "; ".join(f"{n} waiters: {_rate(ours.get(n))} (stock {_rate(stock.get(n))})" for n in counts)
    rates = [
        (mine, theirs)
        for n in counts
        if n in ours
        and n in stock
        and (mine := ours[n].requests_per_second) is not None
        and (theirs := stock[n].requests_per_second) is not None
    ]
    if len(rates) < len(counts):
        return _not_run(name, target, measured)
    return Target(name, measured, target, _verdict(all(mine < theirs for mine, theirs in rates)))


def _cpu(sample: WaitersSample | None, idle: WaitersSample | None) -> str:
    per_waiter = None if sample is None else sample.cpu_ms_per_waiter_minute(idle)
    return "not run" if per_waiter is None else f"{per_waiter:.1f} ms"


def cpu_per_waiter_target(results: WidthResults) -> Target:
    """Ours' triggerer CPU per waiter, flat or falling from the fewest waiters the target names to the most."""
    name = f"real triggerer: ours' CPU per waiter from {FLAT_FROM} to {FLAT_TO} waiters"
    target = f"flat or falling: at {FLAT_TO} <= {CPU_FLAT_FACTOR:g} x at {FLAT_FROM}"
    ours = _samples(results, "ours")
    idle = _samples(results, IDLE).get(0)
    fewest, most = ours.get(FLAT_FROM), ours.get(FLAT_TO)
    baseline = "above the idle triggerer's" if idle is not None else "the idle triggerer's not taken off"
    measured = (
        f"{FLAT_FROM} waiters: {_cpu(fewest, idle)}; {FLAT_TO} waiters: {_cpu(most, idle)} per waiter per "
        f"minute, {baseline}"
    )
    low = None if fewest is None else fewest.cpu_ms_per_waiter_minute(idle)
    high = None if most is None else most.cpu_ms_per_waiter_minute(idle)
    if low is None or high is None:
        return _not_run(name, target, measured)
    if low > 0:
        measured += f" ({high / low:.2f} x)"
    return Target(name, measured, target, _verdict(high <= CPU_FLAT_FACTOR * low))


def evaluate(results: WidthResults) -> list[Target]:
    """
    Judge every width target against ``results``: per slots and count asked for, then the waiters'.

    :param results: what the width run measured.
    """
    lines = []
    for slots in results.slots:
        for count in results.counts:
            lines.append(one_task_target(results, slots=slots, count=count))
            if (slots, count) in NOTICE_AT:
                lines.append(notice_target(results, slots=slots, count=count))
            lines.append(mapped_target(results, slots=slots, count=count))
    if results.waiter_counts:
        lines += [flat_poll_target(results), below_stock_target(results), cpu_per_waiter_target(results)]
    return lines
