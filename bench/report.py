"""Write ``results.md`` (a table per case and the targets) and ``results.png`` from one run's results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import blocks, chart
from bench.blocks import MARKDOWN
from bench.dags.bench import VARYING_CHILD_SECONDS, VARYING_PRIME_SECONDS
from bench.model import END_FROM_TRIGGER, PATHS, is_deferrable, operators_of, stock_path
from bench.schedule_count import default_of
from bench.stats import Summary, ratio, summarize
from bench.targets import VARYING_PATHS, evaluate, varying_detections
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator

if TYPE_CHECKING:
    from pathlib import Path

    from bench.model import FanOutOutcome, Results, WaitSample


CHART = "results.png"


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    """
    Write both files into ``out_dir`` and return their paths.

    :param results: what the run measured.
    :param out_dir: where to write them (created if missing).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, png = out_dir / MARKDOWN, out_dir / CHART
    # The width bench's blocks (make bench-width, an hour or more) outlive this rewrite.
    old = markdown.read_text() if markdown.exists() else ""
    markdown.write_text(blocks.carry_over(old, render(results)))
    chart.draw(results, png)
    return markdown, png


def render(results: Results) -> str:
    """
    Return the Markdown report of ``results``.

    :param results: what the run measured.
    """
    sections = [
        _header(results),
        _targets(results),
        _latency(results),
        _requests(results),
        _durable(results),
        _fan_out(results),
        _shared_poll(results),
        _varying(results),
        _notes(results),
        _samples(results),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _default(parameter: str) -> str:
    """Our operator's default for ``parameter`` (the stock ones included), as the report shows it."""
    return f"{default_of(TriggerDagRunOperator, parameter):g}"


def _header(results: Results) -> str:
    m = results.machine
    load = "/".join(f"{x:.2f}" for x in m.load_at_start)
    mode = "quick (smoke) run" if results.quick else "full run"
    return (
        "# Benchmark: the stock `TriggerDagRunOperator` against ours\n\n"
        f"- run: {results.started_at:%Y-%m-%d %H:%M} UTC, {results.seconds / 60:.1f} min, {mode} (`make bench`)\n"
        f"- machine: {m.cores} cores, {m.system}, Python {m.python}; load average at start {load}\n"
        f"- Airflow {m.airflow} (standard provider {m.standard_provider}), SQLite and the LocalExecutor, "
        "every setting that governs how soon it reacts at Airflow's default\n"
        f"- repetitions: {results.repetitions} per child length and parent variant\n\n"
        "Every figure below comes from this run; none is copied in. Most were measured; the rest are "
        "*computed* and say so in their row, column or target: the requests of a wait by its operator's "
        "schedule in case 2 (the 60 min child's among them, which `make bench-hour` waits for and counts in "
        "its own block), and a width run's "
        "requests per second where the triggerer's log did not carry its requests."
    )


def _targets(results: Results) -> str:
    lines = ["## Targets", "", "| target | measured | asked | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {t.name} | {t.measured} | {t.target} | **{t.verdict}** |" for t in evaluate(results)]
    return "\n".join(lines)


def _fmt(value: float | None, unit: str = " s", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _p50(s: Summary | None) -> float | None:
    return None if s is None else s.p50


def _p95(s: Summary | None) -> float | None:
    return None if s is None else s.p95


def _n(s: Summary | None) -> int:
    return 0 if s is None else s.n


def _ratio(value: float | None) -> str:
    # Three significant digits: ours/stock runs from about 0.005 (a 2 s child) to above 1.
    return "-" if value is None else f"{value:.3g}"


def _summary(samples: list[WaitSample], attribute: str) -> Summary | None:
    return summarize(v for s in samples if (v := getattr(s, attribute)) is not None)


def _stock_summary(results: Results, length: int, path: str, attribute: str) -> Summary | None:
    """Stock's figure that ours on ``path`` is compared with (its deferrable one where it lacks the path)."""
    return _summary(results.waits_of(length=length, operator="stock", path=stock_path(path)), attribute)


def _latency(results: Results) -> str:
    if not results.waits:
        return ""
    lines = [
        "## 1. Detection latency and parent overhead",
        "",
        "Detection: the parent task's end minus the child run's end. Overhead: the parent task's "
        "duration minus the child run's. The five parents of a repetition were triggered at the same "
        f"moment; each operator at its defaults (`poke_interval={_default('poke_interval')}`, ours "
        f"`fast_poll_window={_default('fast_poll_window')}` and `end_from_trigger=False`) but on the "
        f"`{END_FROM_TRIGGER}` path: ours alone, with `end_from_trigger=True` (stock has no such "
        "option), its ours/stock against stock's deferrable wait.",
        "",
        "| child | path | operator | n | detection p50 | p95 | overhead p50 | p95 | ours/stock (detection p50) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for length in results.lengths:
        for path in PATHS:
            detection = {
                op: _summary(results.waits_of(length=length, operator=op, path=path), "detection")
                for op in operators_of(path)
            }
            r = ratio(_p50(detection["ours"]), _p50(_stock_summary(results, length, path, "detection")))
            for op in operators_of(path):
                d = detection[op]
                o = _summary(results.waits_of(length=length, operator=op, path=path), "overhead")
                lines.append(
                    f"| {length} s | {path} | {op} | {_n(d)} | {_fmt(_p50(d))} | "
                    f"{_fmt(_p95(d))} | {_fmt(_p50(o))} | {_fmt(_p95(o))} | "
                    f"{_ratio(r) if op == 'ours' else ''} |"
                )
    return "\n".join(lines)


def _requests(results: Results) -> str:
    lines = [
        "## 2. State requests per wait",
        "",
        "Counted per child run in the api-server's access log (`GET` of a run's state, a count of runs, "
        "task states, the previous run; after the trigger). The deferrable rows (†, with "
        f"`{END_FROM_TRIGGER}`) show only the parent task's own requests: the triggerer's checks never "
        f"reach that log (see the notes); ours on `{END_FROM_TRIGGER}` is compared with stock's "
        "deferrable wait. "
        "*Computed*: the requests each operator's synchronous wait makes by its schedule on a child "
        "that ends when expected (ours: its last run took as long), at its defaults "
        "(`bench/schedule_count.py`).",
        "",
        "| child | path | operator | n | requests p50 | p95 | computed | ours/stock (p50) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    computed = {f.child_seconds: f for f in results.schedule}
    for length in results.lengths:
        for path in PATHS:
            counted = {
                op: _summary(results.waits_of(length=length, operator=op, path=path), "requests")
                for op in operators_of(path)
            }
            r = ratio(_p50(counted["ours"]), _p50(_stock_summary(results, length, path, "requests")))
            for op in operators_of(path):
                c = counted[op]
                figure = computed.get(float(length))
                by_schedule = "" if figure is None or path != "sync" else str(getattr(figure, op))
                mark = " †" if is_deferrable(path) else ""
                lines.append(
                    f"| {length} s | {path}{mark} | {op} | {_n(c)} | {_fmt(_p50(c), '', 1)} | "
                    f"{_fmt(_p95(c), '', 1)} | {by_schedule} | {_ratio(r) if op == 'ours' else ''} |"
                )
    for figure in results.schedule:
        if figure.child_seconds not in results.lengths:
            lines.append(
                f"| {figure.child_seconds / 60:.0f} min | sync, computed | stock / ours | - | - | - | "
                f"{figure.stock} / {figure.ours} | {_ratio(ratio(figure.ours, figure.stock))} |"
            )
    if beyond := _beyond_computed(results):
        lines += [
            "",
            f"Measured against computed, ours on the synchronous path: {beyond} requests (p50). A wait "
            "without a prediction (see the notes) checks on the back-off alone; a run whose tasks are done "
            "but which the scheduler has not ended yet is checked every second.",
        ]
    return "\n".join(lines)


def _beyond_computed(results: Results) -> str:
    """How many requests our synchronous waits made beyond the computed figure, per child length."""
    computed = {f.child_seconds: f.ours for f in results.schedule}
    found = []
    for length in results.lengths:
        counted = _p50(_summary(results.waits_of(length=length, operator="ours", path="sync"), "requests"))
        if counted is not None and float(length) in computed:
            found.append(f"{counted - computed[float(length)]:+.0f} ({length} s child)")
    return ", ".join(found)


def _durable(results: Results) -> str:
    cost = results.durable
    if cost is None:
        return ""
    on, off = summarize(cost.on_ms), summarize(cost.off_ms)
    lines = [
        "## 3. Durable cost",
        "",
        f"Our operator mapped over {cost.items} items with `wait_for_completion=False`, one task at a time "
        f"per Dag, `durable=True` and `durable=False` side by side, {cost.repetitions} times: per task, "
        "the time from the start of `execute()` to the `Triggered child Dag run` event, both from the "
        "task's own log.",
        "",
        "| durable | n | start to trigger p50 | p95 |",
        "| --- | --- | --- | --- |",
    ]
    for label, s in (("True", on), ("False", off)):
        lines.append(f"| {label} | {_n(s)} | {_fmt(_p50(s), ' ms', 0)} | {_fmt(_p95(s), ' ms', 0)} |")
    if on and off:
        lines += ["", f"Extra time per trigger (difference of the p50s): **{on.p50 - off.p50:.1f} ms**."]
    return "\n".join(lines)


def _fan_out(results: Results) -> str:
    setup = results.fan_out_setup
    if setup is None or not results.fan_outs:
        return ""
    lines = [
        "## 4. Fan-out",
        "",
        f"{setup.width} children of {setup.child_seconds:.0f} s each on {setup.slots} worker slots "
        f"(`[core] parallelism = {setup.slots}`), the fan-outs one after the other, "
        f"{setup.repetitions} repetition(s). The floor is the children's total task runtime divided by "
        "the slots.",
        "",
        "| fan-out | parent run | makespan | floor | makespan / floor | child runs (succeeded) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in results.fan_outs:
        # A stalled fan-out finished no child: there is no runtime to divide.
        floor = f"{o.floor:.0f} s" if o.floor else "-"
        if o.makespan is None:
            makespan, r = f"stalled: no end after {o.stall_window:.0f} s", "-"
        else:
            makespan, r = f"{o.makespan:.0f} s", _fmt(ratio(o.makespan, o.floor), "", 2)
        lines.append(
            f"| {o.label} | {o.state} | {makespan} | {floor} | {r} | {o.children} ({o.children_succeeded}) |"
        )
    return "\n".join([*lines, *_noticed(results.fan_outs)])


def _noticed(outcomes: list[FanOutOutcome]) -> list[str]:
    """How soon each fan-out's mapped tasks noticed their children end; the children alone have none."""
    noticed = [(o.label, o.noticed) for o in outcomes if o.noticed is not None]
    if not noticed:
        return []
    lines = [
        "",
        "How soon the children's ends were noticed, from the REST API's timestamps. *Last child*: the "
        "mapped task waiting on the child that ended last, its end minus that child run's end: what the "
        "parent run waits for. *Run end*: the parent run's end minus the last child run's end (the "
        "scheduler's delay in ending the run included). *Each task*: every mapped task that succeeded, "
        "its end minus its child run's end.",
        "",
        "| fan-out | last child | run end | each task p50 | p95 | max | n |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, found in noticed:
        each = summarize(found.lags)
        lines.append(
            f"| {label} | {_fmt(found.last_child)} | {_fmt(found.run_end)} | {_fmt(_p50(each))} | "
            f"{_fmt(_p95(each))} | {_fmt(max(found.lags, default=None))} | {_n(each)} |"
        )
    return lines


def _shared_poll(results: Results) -> str:
    if not results.poll:
        return ""
    lines = [
        "## 5. Shared poll at scale",
        "",
        "Deferred waiters on runs of one child Dag in one event loop (one triggerer process), on the "
        "fake supervisor in virtual time; a tick is one poller wake, at most one a second, asking about at "
        "most 100 due runs (the most overdue first), so more waiters take more ticks, not more requests "
        "per tick. CPU excludes the fake supervisor's own (the api-server's, in a deployment).",
        "",
        "| waiters | ticks | requests per tick | triggerer CPU per tick p50 | p95 | CPU per waiter per tick (p50) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scale in results.poll:
        cpu = summarize(scale.cpu_ms)
        low, high = min(scale.requests, default=0), max(scale.requests, default=0)
        per_tick = str(low) if low == high else f"{low}-{high}"
        p50 = _p50(cpu)
        per_waiter = _fmt(None if p50 is None else p50 * 1000 / scale.waiters, " µs", 1)
        lines.append(
            f"| {scale.waiters} | {len(scale.requests)} | {per_tick} | {_fmt(p50, ' ms', 2)} | "
            f"{_fmt(_p95(cpu), ' ms', 2)} | {per_waiter} |"
        )
    return "\n".join(lines)


def _varying(results: Results) -> str:
    if not results.varying:
        return ""
    short, long = VARYING_PRIME_SECONDS, VARYING_CHILD_SECONDS
    lines = [
        "## 6. Varying length",
        "",
        "Each repetition first ran each parent's child Dag (`bench_varying_child_<variant>`, whose task "
        f"sleeps the `sleep` of its conf) for {short} s through that parent and waited for the run to end, "
        f"so the Dag's last success took about {short} s; then the parents, triggered at the same moment, "
        f"ran it for {long} s: far longer than the last success ours predicts its end from. Detection: the "
        f"parent task's end minus the {long} s run's end. *Primed*: the waits whose child Dag's last "
        f"success before the run (the one ours predicted from) was the repetition's {short} s run; only "
        "they count. *Last success*: that run's length (its start to end, scheduling included). Each "
        f"operator at its defaults (`poke_interval={_default('poke_interval')}`, ours "
        "`end_from_trigger=False`).",
        "",
        "| path | operator | primed (of n) | last success p50 | detection p50 | p95 | max | "
        "ours/stock (p50) | every primed sample |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in VARYING_PATHS:
        found = {op: varying_detections(results, operator=op, path=path) for op in operators_of(path)}
        summaries = {op: summarize(values) for op, values in found.items()}
        r = ratio(_p50(summaries["ours"]), _p50(summaries["stock"]))
        for op, values in found.items():
            primed = results.varying_of(operator=op, path=path)
            previous = summarize(v.previous_seconds for v in primed if v.previous_seconds is not None)
            s, n = summaries[op], len(results.varying_of(operator=op, path=path, primed_only=False))
            compared = _ratio(r) if op == "ours" else ""
            lines.append(
                f"| {path} | {op} | {len(values)} ({n}) | {_fmt(_p50(previous))} | {_fmt(_p50(s))} | "
                f"{_fmt(_p95(s))} | {_fmt(max(values, default=None))} | {compared} | "
                f"{', '.join(f'{v:.1f}' for v in values)} |"
            )
    return "\n".join(lines)


def _notes(results: Results) -> str:
    if not results.notes:
        return ""
    return "## Notes\n\n" + "\n".join(f"- {note}" for note in results.notes)


def _samples(results: Results) -> str:
    """Every wait of cases 1 and 2, in the order the rounds ran."""
    if not results.waits:
        return ""
    lines = [
        "## Every sample",
        "",
        "| child | operator | path | repetition | parent task | detection | overhead | requests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in sorted(results.waits, key=lambda w: (w.length, w.operator, w.path, w.repetition)):
        lines.append(
            f"| {w.length} s | {w.operator} | {w.path} | {w.repetition} | {w.state} | {_fmt(w.detection)} | "
            f"{_fmt(w.overhead)} | {_fmt(w.requests, '', 1)} |"
        )
    return "\n".join(lines)
