"""The issue's targets, each judged against what this run measured: met, missed, or not run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.dags.bench import (
    CHILDREN_ALONE,
    LENGTHS,
    VARIANTS,
    VARYING_CHILD_SECONDS,
    VARYING_PRIME_SECONDS,
    VARYING_VARIANTS,
)
from bench.model import PATHS
from bench.schedule_count import LONG_CHILD_SECONDS
from bench.stats import percentile

if TYPE_CHECKING:
    from bench.model import Results

# Detection p50 at defaults: at most this many seconds for a child up to this long ...
DETECTION_LIMITS = ((2, 1.5), (20, 3.0))
# ... and beyond those, at most this fraction of the child's length.
DETECTION_FRACTION = 0.10
REQUESTS_FACTOR = 1.2
DURABLE_COST_LIMIT_MS = 50.0
FAN_OUT_FACTOR = 1.3
OUR_FAN_OUT = "ours, deferrable + durable"
STOCK_FAN_OUT = "stock, deferrable"
# The last child of the fan-out noticed this soon after its end (its mapped task's end minus its end).
LAST_CHILD_NOTICED_SECONDS = 5.0
# The varying-length case: a 20 s child after a 2 s success, noticed as soon as a 20 s child is asked to be
# (DETECTION_LIMITS) when its Dag's last success predicted it well.
VARYING_DETECTION_SECONDS = 3.0
# The paths of case 6 ours answers for, in VARYING_VARIANTS' order.
VARYING_PATHS = tuple(dict.fromkeys(VARIANTS[v][1] for v in VARYING_VARIANTS))


@dataclass(frozen=True)
class Target:
    """One target's line: what was measured, what was asked, and the verdict."""

    name: str
    measured: str
    target: str
    verdict: str


def detection_limit(length: int) -> float:
    """
    Return the detection p50 allowed for a child of ``length`` seconds, in seconds.

    :param length: the child's length.
    """
    for up_to, limit in DETECTION_LIMITS:
        if length <= up_to:
            return limit
    return DETECTION_FRACTION * length


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _not_run(name: str, target: str) -> Target:
    return Target(name=name, measured="-", target=target, verdict="not run")


def detection_targets(results: Results) -> list[Target]:
    """
    One line per child length and path: our detection p50 against its limit.

    The ``end_from_trigger`` path answers to the same limits: the issue's targets are for our operator's
    detection whatever way it waits.
    """
    lines = []
    for length in LENGTHS:
        limit = detection_limit(length)
        for path in PATHS:
            name = f"detection p50, {length} s child, ours {path}"
            target = f"<= {limit:g} s"
            found = [
                w.detection
                for w in results.waits_of(length=length, operator="ours", path=path)
                if w.detection is not None
            ]
            if not found:
                lines.append(_not_run(name, target))
                continue
            p50 = percentile(found, 50)
            lines.append(Target(name, f"{p50:.2f} s (n={len(found)})", target, _verdict(p50 <= limit)))
    return lines


def requests_target(results: Results) -> Target:
    """Our requests on the long child (computed from the schedule) against 1.2 times stock's."""
    name = f"state requests, {LONG_CHILD_SECONDS / 60:.0f} min child (computed from the schedule)"
    long = [f for f in results.schedule if f.child_seconds == LONG_CHILD_SECONDS]
    if not long:
        return _not_run(name, f"<= {REQUESTS_FACTOR}x stock")
    figure = long[0]
    limit = REQUESTS_FACTOR * figure.stock
    return Target(
        name,
        f"{figure.ours} computed (stock {figure.stock} computed)",
        f"<= {REQUESTS_FACTOR:g} x stock = {limit:g}",
        _verdict(figure.ours <= limit),
    )


def durable_target(results: Results) -> Target:
    """The difference of the start-to-trigger medians, durable against plain."""
    name = "durable cost per trigger (p50 durable=True - p50 durable=False)"
    target = f"< {DURABLE_COST_LIMIT_MS:g} ms"
    cost = results.durable
    if cost is None or not cost.on_ms or not cost.off_ms:
        return _not_run(name, target)
    extra = percentile(cost.on_ms, 50) - percentile(cost.off_ms, 50)
    return Target(name, f"{extra:.1f} ms", target, _verdict(extra < DURABLE_COST_LIMIT_MS))


def fan_out_target(results: Results) -> Target:
    """Our deferrable durable fan-out's makespan against 1.3 times the floor the slots set."""
    name = "fan-out makespan, ours deferrable + durable"
    target = f"<= {FAN_OUT_FACTOR:g} x children's runtime / slots"
    ours = [o for o in results.fan_outs if o.label == OUR_FAN_OUT]
    if not ours:
        return _not_run(name, target)
    outcome = ours[0]
    if outcome.makespan is None or not outcome.floor:
        return Target(name, f"no makespan ({outcome.state})", target, "missed")
    ratio = outcome.makespan / outcome.floor
    measured = f"{outcome.makespan:.0f} s = {ratio:.2f} x {outcome.floor:.0f} s"
    alone = [o for o in results.fan_outs if o.label == CHILDREN_ALONE and o.makespan is not None]
    if alone and alone[0].makespan is not None and alone[0].floor:
        # What Airflow takes for the children with no parent at all: the most any operator can reach.
        base = alone[0].makespan
        measured += f" (the children alone, no parent: {base:.0f} s = {base / alone[0].floor:.2f} x)"
    return Target(name, measured, target, _verdict(ratio <= FAN_OUT_FACTOR))


def varying_detections(results: Results, *, operator: str, path: str) -> list[float]:
    """
    The detections of case 6 on one (operator, path) that count: the primed waits that gave a figure.

    A wait whose child Dag's last success was not the repetition's short run did not wait on the
    prediction the case is about.
    """
    return [v.detection for v in results.varying_of(operator=operator, path=path) if v.detection is not None]


def _p50_of(values: list[float]) -> str:
    return f"{percentile(values, 50):.2f} s (n={len(values)})" if values else "no figure"


def varying_targets(results: Results) -> list[Target]:
    """One line per path: our detection p50 on the long child after its Dag's short success; stock's too."""
    lines = []
    target = f"<= {VARYING_DETECTION_SECONDS:g} s"
    for path in VARYING_PATHS:
        name = (
            f"detection p50, {VARYING_CHILD_SECONDS} s child after a {VARYING_PRIME_SECONDS} s success, "
            f"ours {path}"
        )
        if not results.varying_of(operator="ours", path=path, primed_only=False):
            lines.append(_not_run(name, target))
            continue
        ours = varying_detections(results, operator="ours", path=path)
        stock = varying_detections(results, operator="stock", path=path)
        ok = bool(ours) and percentile(ours, 50) <= VARYING_DETECTION_SECONDS
        lines.append(Target(name, f"{_p50_of(ours)} (stock {_p50_of(stock)})", target, _verdict(ok)))
    return lines


def _seconds(value: float | None) -> str:
    return "no figure" if value is None else f"{value:.1f} s"


def last_child_target(results: Results) -> Target:
    """Our deferrable durable fan-out's last child: its mapped task's end minus its end, stock beside it."""
    name = "fan-out: the last child noticed (its task's end - its end), ours deferrable + durable"
    target = f"<= {LAST_CHILD_NOTICED_SECONDS:g} s"
    noticed = {o.label: o.noticed for o in results.fan_outs if o.noticed is not None}
    ours, stock = noticed.get(OUR_FAN_OUT), noticed.get(STOCK_FAN_OUT)
    if ours is None:
        return _not_run(name, target)
    measured = f"{_seconds(ours.last_child)}; parent run's end - last child's end {_seconds(ours.run_end)}"
    if stock is not None:
        measured += f" (stock {_seconds(stock.last_child)}; {_seconds(stock.run_end)})"
    ok = ours.last_child is not None and ours.last_child <= LAST_CHILD_NOTICED_SECONDS
    return Target(name, measured, target, _verdict(ok))


def shared_poll_target(results: Results) -> Target:
    """Whether the requests per tick stay the same whatever the number of waiters."""
    name = "shared poll: requests per tick independent of the number of waiters"
    target = "the same at every number of waiters"
    if not results.poll:
        return _not_run(name, target)
    per_tick = {scale.waiters: max(scale.requests, default=0) for scale in results.poll}
    measured = ", ".join(f"{n} waiters: {r}" for n, r in per_tick.items())
    return Target(name, measured, target, _verdict(len(set(per_tick.values())) == 1))


def evaluate(results: Results) -> list[Target]:
    """
    Judge every target against ``results``.

    :param results: what the run measured.
    """
    return [
        *detection_targets(results),
        *varying_targets(results),
        requests_target(results),
        durable_target(results),
        fan_out_target(results),
        last_child_target(results),
        shared_poll_target(results),
    ]
