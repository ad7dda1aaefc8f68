"""What the benchmark measured: one record per sample or case, as the report and the chart read them."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from bench.schedule_count import ScheduleFigure

OPERATORS = ("stock", "ours")
# Ours, deferrable, with end_from_trigger=True: the triggerer ends the task on the child's success. The
# stock operator has no such option (its deferrable wait always resumes on a worker), so only ours has
# this path. Its Dags spell it out as a literal (bench/dags/bench.py): the Dag processor cannot import
# this module.
END_FROM_TRIGGER = "deferrable + end_from_trigger"
PATHS = ("sync", "deferrable", END_FROM_TRIGGER)
# The operators that have each path, in OPERATORS' order.
PATH_OPERATORS: dict[str, tuple[str, ...]] = {
    "sync": OPERATORS,
    "deferrable": OPERATORS,
    END_FROM_TRIGGER: ("ours",),
}


def operators_of(path: str) -> tuple[str, ...]:
    """
    Return the operators that have ``path``, in ``OPERATORS``' order.

    :param path: one of ``PATHS``.
    """
    return PATH_OPERATORS[path]


def stock_path(path: str) -> str:
    """
    Return the stock path that ours on ``path`` is compared with.

    Stock has no ``end_from_trigger``: its deferrable wait, which a worker resumes, is what ours ended
    in the triggerer would replace.

    :param path: one of ``PATHS``.
    """
    return "deferrable" if path == END_FROM_TRIGGER else path


def is_deferrable(path: str) -> bool:
    """
    Whether waits on ``path`` defer to the triggerer (whose checks the access log never shows).

    :param path: one of ``PATHS``.
    """
    return path != "sync"


@dataclass(frozen=True)
class WaitSample:
    """
    One parent's wait on one child run (cases 1 and 2).

    ``detection`` is the parent task's end minus the child run's end; ``overhead`` the parent task's
    duration minus the child run's; ``requests`` the state requests the access log shows for the child
    run (see ``bench.access_log``). ``None`` where the parent did not get that far.
    """

    length: int
    operator: str
    path: str
    repetition: int
    parent: tuple[str, str]
    state: str
    detection: float | None
    overhead: float | None
    child: tuple[str, str] | None
    # The child run's start and end (the API's ISO timestamps), to tell which waits had a previous run.
    child_start: str | None = None
    child_end: str | None = None
    requests: float | None = None


@dataclass(frozen=True)
class VaryingSample:
    """
    One parent's wait on a child run far longer than its child Dag's last success (case 6).

    ``detection`` is the parent task's end minus the child run's end (``None`` where the parent did not
    get that far). ``previous_seconds`` is how long the child Dag's last successful run before this one
    took, the run our schedule predicted this one's end from; ``primed`` whether that run was the
    repetition's own short run, as the case means it to be.
    """

    operator: str
    path: str
    repetition: int
    parent: tuple[str, str]
    state: str
    child_seconds: float
    detection: float | None
    previous_seconds: float | None
    primed: bool


@dataclass(frozen=True)
class DurableCost:
    """Case 3: milliseconds from each task's start to its trigger, with ``durable=True`` and ``False``."""

    on_ms: list[float]
    off_ms: list[float]
    repetitions: int
    items: int


@dataclass(frozen=True)
class Noticed:
    """
    How soon a fan-out's parent noticed its children end (case 4), from the REST API's timestamps.

    ``lags``: for each mapped parent task that succeeded on a finished child, the task's end minus its
    child run's end; for a one-task fan-out, each ended child's notice lag from its task's log
    (``bench.fanout_notice``). ``last_child``: that figure for the task whose child ended last, the one the
    parent run waits for. ``run_end``: the parent run's end minus the last child run's end (the
    scheduler's own delay in ending the run included). ``None`` where there is no such pair.
    """

    lags: list[float]
    last_child: float | None
    run_end: float | None


@dataclass(frozen=True)
class FanOutOutcome:
    """One fan-out's result (case 4): how its parent run ended, how long it took, and the children it made."""

    label: str
    state: str
    makespan: float | None
    floor: float
    children: int
    children_succeeded: int
    stall_window: float
    # None for the children alone, which have no parent to notice them.
    noticed: Noticed | None = None


@dataclass(frozen=True)
class FanOutSetup:
    """The fan-out's shape: ``width`` children of ``child_seconds`` each on ``slots`` worker slots."""

    width: int
    child_seconds: float
    slots: int
    repetitions: int


@dataclass(frozen=True)
class PollScale:
    """
    Case 5 at one number of waiters: the requests and the triggerer CPU of each poller wake (tick).

    ``cpu_ms`` leaves out the fake supervisor's own work (in a real deployment, the api-server's).
    """

    waiters: int
    requests: list[int]
    cpu_ms: list[float]
    virtual_seconds: float


@dataclass(frozen=True)
class Machine:
    """Where the benchmark ran."""

    cores: int
    system: str
    python: str
    airflow: str
    standard_provider: str
    load_at_start: tuple[float, float, float]

    @classmethod
    def here(cls) -> Machine:
        """Describe this machine and the Airflow installed in this environment."""
        return cls(
            cores=os.cpu_count() or 0,
            system=f"{platform.system()} {platform.release()} {platform.machine()}",
            python=platform.python_version(),
            airflow=version("apache-airflow"),
            standard_provider=version("apache-airflow-providers-standard"),
            load_at_start=os.getloadavg(),
        )


@dataclass
class Results:
    """Everything one benchmark run measured; ``notes`` carry what a reader needs to judge the figures."""

    started_at: datetime
    seconds: float
    repetitions: int
    quick: bool
    lengths: tuple[int, ...]
    machine: Machine
    waits: list[WaitSample] = field(default_factory=list)
    schedule: list[ScheduleFigure] = field(default_factory=list)
    durable: DurableCost | None = None
    fan_out_setup: FanOutSetup | None = None
    fan_outs: list[FanOutOutcome] = field(default_factory=list)
    poll: list[PollScale] = field(default_factory=list)
    varying: list[VaryingSample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The parent runs Airflow failed on a stale executor event (see ``bench.latency.stale_defer_exits``).
    stale_exits: set[tuple[str, str]] = field(default_factory=set)

    def waits_of(self, *, length: int, operator: str, path: str) -> list[WaitSample]:
        """The samples of one (child length, operator, path)."""
        return [w for w in self.waits if (w.length, w.operator, w.path) == (length, operator, path)]

    def varying_of(self, *, operator: str, path: str, primed_only: bool = True) -> list[VaryingSample]:
        """
        The case 6 samples of one (operator, path), by default only those the short run primed.

        :param operator: one of ``OPERATORS``.
        :param path: ``sync`` or ``deferrable``.
        :param primed_only: leave out the waits whose child Dag's last success was not the short run.
        """
        return [
            v
            for v in self.varying
            if (v.operator, v.path) == (operator, path) and (v.primed or not primed_only)
        ]
