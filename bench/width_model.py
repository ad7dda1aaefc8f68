"""What the width bench measured (``python -m bench --width``): one record per case, as its report reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.triggerer_log import REQUESTS_PER_TICK

if TYPE_CHECKING:
    from datetime import datetime

    from bench.cpu import TreeCpu
    from bench.model import Machine

# The components whose CPU seconds a case reports, as the harness names them.
SCHEDULER, TRIGGERER, API_SERVER = "scheduler", "triggerer", "api-server"
# The idle triggerer's window: no parent waiting, the baseline of the waiters' CPU.
IDLE = "none (idle)"
# How a waiters sample's requests per second was had (WaitersSample.counted).
MEASURED = "measured"
COMPUTED = "computed"
COMPUTED_FROM_TICKS = "computed from ticks"


@dataclass(frozen=True)
class CaseCpu:
    """
    CPU seconds over one case, by what spent them.

    ``scheduler``: the scheduler's own process. ``executor``: what it forked, the LocalExecutor's worker
    processes and the task processes they ran, the tasks' own work included. ``triggerer`` and
    ``api_server``: each component's process and all it forked (the trigger runner; uvicorn's workers).
    """

    scheduler: float
    executor: float
    triggerer: float
    api_server: float


def case_cpu(before: dict[str, TreeCpu], after: dict[str, TreeCpu]) -> CaseCpu:
    """
    The CPU seconds spent between two samples of every component.

    :param before: ``PostgresLocalAirflow.cpu_seconds()`` as the case began.
    :param after: the same as it ended.
    """
    spent = {name: after[name].since(before[name]) for name in after}
    return CaseCpu(
        scheduler=spent[SCHEDULER].own,
        executor=spent[SCHEDULER].forked,
        triggerer=spent[TRIGGERER].total,
        api_server=spent[API_SERVER].total,
    )


@dataclass(frozen=True)
class WidthCase:
    """
    One fan-out at width: ``count`` children of the case's length on ``slots`` slots, under ``label``.

    ``processes`` and ``tries``: the task processes started and the tries they belong to, from the
    api-server's access log (``bench.access_log.task_starts``), children's and parents' alike.
    ``execution_requests``: the execution API's requests in the access log over the case (the
    triggerer's in-process ones are not there); ``triggerer_requests``: those, in the triggerer's log
    (``bench.triggerer_requests``; ``None`` where it did not carry them). ``poll_ticks``: the shared poller's ticks on the child
    Dag in the triggerer's log (``None`` where none was logged). ``seconds``: the bench's wall time for
    the case, its REST reads included; ``planned``: what the plan gave it.
    """

    slots: int
    count: int
    label: str
    state: str
    makespan: float | None
    children: int
    children_succeeded: int
    seconds: float
    planned: float
    processes: int | None = None
    tries: int | None = None
    cpu: CaseCpu | None = None
    execution_requests: int | None = None
    poll_ticks: int | None = None
    # The parent run's end minus the last child run's end (bench.fan_out.noticed); None without a parent.
    run_end_lag: float | None = None
    triggerer_requests: int | None = None
    # How soon each child's end was noticed (bench.fan_out.noticed, bench.fanout_notice): p50, p95 and
    # how many children; None where none was (the children alone, a run before this was measured).
    notice_p50: float | None = None
    notice_p95: float | None = None
    noticed: int | None = None


@dataclass(frozen=True)
class WaitersSample:
    """
    ``waiters`` deferred parents of one operator waiting on runs of one child Dag, over ``window`` seconds.

    ``operator`` is ``stock``, ``ours`` or ``IDLE`` (no parent: the triggerer alone). ``deferred`` is how
    many were still deferred when the window ended; ``settled`` the seconds from the trigger of their
    parent run to the moment all were deferred. ``triggerer_cpu``: the triggerer's CPU seconds (its
    process and the trigger runner) over the window. ``requests``: the triggerer's in-process requests
    logged in the window (``bench.triggerer_requests``), ``routes`` the same by route; ``None`` and
    empty where its log did not carry them (older runs, or the logging plugin not loaded).
    ``poll_ticks``: ours' shared poller's ticks logged in the window (``None`` for stock and the idle
    window, or none logged). ``poke_interval``: the operators' default, which each stock trigger polls at.
    """

    operator: str
    waiters: int
    deferred: int
    settled: float
    window: float
    triggerer_cpu: float
    poke_interval: float
    poll_ticks: int | None = None
    # The most waiters the poller said it waited on in the window (its ticks' ``waiting``).
    poller_waiting: int | None = None
    requests: int | None = None
    routes: dict[str, int] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float | None:
        """
        The triggerer's requests per second while the parents wait; ``None`` where neither had.

        Measured: the requests logged over the window. Without them, computed (``counted`` says so):
        ours from its logged ticks, ``REQUESTS_PER_TICK`` each; stock, one count per trigger per
        ``poke_interval``; the idle window, nothing.
        """
        if self.requests is not None:
            return self.requests / self.window
        if self.operator == "ours":
            return None if self.poll_ticks is None else self.poll_ticks * REQUESTS_PER_TICK / self.window
        if self.operator == "stock":
            return self.waiters / self.poke_interval
        return None

    @property
    def counted(self) -> str:
        """How ``requests_per_second`` was had: measured (the triggerer's log), computed, or not at all."""
        if self.requests is not None:
            return MEASURED
        if self.operator == IDLE:
            return "-"
        if self.operator == "stock":
            return COMPUTED
        return "not logged" if self.poll_ticks is None else COMPUTED_FROM_TICKS

    @property
    def computed(self) -> bool:
        """Whether ``requests_per_second`` is computed rather than counted."""
        return self.counted in (COMPUTED, COMPUTED_FROM_TICKS)

    def cpu_ms_per_waiter_minute(self, idle: WaitersSample | None = None) -> float | None:
        """
        The triggerer's CPU milliseconds per waiter per minute of the window; ``None`` without waiters.

        :param idle: the idle window: its CPU per second is taken off first (the triggerer's own).
        """
        if not self.waiters:
            return None
        spent = self.triggerer_cpu - (0.0 if idle is None else idle.triggerer_cpu * self.window / idle.window)
        return spent * 1000 / self.waiters / (self.window / 60)


@dataclass
class WidthResults:
    """Everything one width run measured; ``notes`` carry what a reader needs to judge the figures."""

    started_at: datetime
    seconds: float
    planned: float
    counts: tuple[int, ...]
    slots: tuple[int, ...]
    waiter_counts: tuple[int, ...]
    window: float
    child_seconds: float
    machine: Machine
    # The Airflow the waiters ran on (its slots), None when they did not run.
    waiters_slots: int | None = None
    cases: list[WidthCase] = field(default_factory=list)
    waiters: list[WaitersSample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # A merged view's own runs (bench.width_store.merge), oldest first; empty for a single run.
    runs: list[WidthResults] = field(default_factory=list)

    def case(self, *, slots: int, count: int, label: str) -> WidthCase | None:
        """
        The case of ``label`` with ``count`` children on ``slots`` slots, if it ran.

        :param slots: the Airflow's slots.
        :param count: the children.
        :param label: the case (``CHILDREN_ALONE`` or a key of ``WIDTH_PARENTS``).
        """
        found = [c for c in self.cases if (c.slots, c.count, c.label) == (slots, count, label)]
        return found[0] if found else None
