"""
CPU seconds of an Airflow component and what it forked, from the kernel's accounting (psutil).

A component's figure is its process's user + system time; what it forked is counted apart: the
descendants alive now (each its own time and that of the children it has reaped) and the children the
component has reaped itself (``children_user`` + ``children_system``). Summed, that is every CPU second
the process tree has spent since it began, processes that ended included as long as their parent waited
for them (the scheduler's LocalExecutor workers wait for their task processes, the triggerer for its
trigger runner). The figure over a case is the difference of two samples.

What it cannot see: a process that ended between the listing of the tree and the reading of its times,
and whose parent has not reaped it by the next sample (one process's time, at most, per sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import psutil

from tests.e2e.processes import descendants

if TYPE_CHECKING:
    from collections.abc import Iterable


class CpuTimes(Protocol):
    """What ``psutil.Process.cpu_times()`` gives, as far as it is read here."""

    @property
    def user(self) -> float:
        """Seconds in user mode."""

    @property
    def system(self) -> float:
        """Seconds in the kernel."""

    @property
    def children_user(self) -> float:
        """User seconds of the children it has reaped (theirs counting their own reaped children's)."""

    @property
    def children_system(self) -> float:
        """Kernel seconds of the children it has reaped."""


@dataclass(frozen=True)
class TreeCpu:
    """CPU seconds of one component: its own process's (``own``), and all it forked (``forked``)."""

    own: float
    forked: float

    @property
    def total(self) -> float:
        """The process tree's CPU seconds: the component's and all it forked."""
        return self.own + self.forked

    def since(self, earlier: TreeCpu) -> TreeCpu:
        """
        The CPU seconds spent between ``earlier`` and this sample.

        :param earlier: a sample of the same component taken before.
        """
        return TreeCpu(own=self.own - earlier.own, forked=self.forked - earlier.forked)


def combine(top: CpuTimes, live: Iterable[CpuTimes]) -> TreeCpu:
    """
    One sample of a component's CPU seconds, from its process's times and those of its live descendants.

    :param top: the component process's times.
    :param live: each live descendant's times.
    """
    forked = top.children_user + top.children_system
    for times in live:
        forked += times.user + times.system + times.children_user + times.children_system
    return TreeCpu(own=top.user + top.system, forked=forked)


def sample(process: psutil.Process) -> TreeCpu:
    """
    Sample the CPU seconds of ``process`` and everything it forked.

    :param process: a component's process (the one the harness started).
    """
    live = []
    for child in descendants(process):
        try:
            live.append(child.cpu_times())
        except psutil.Error:
            # Gone since the listing: its parent's children_* take its time once it is reaped.
            continue
    return combine(process.cpu_times(), live)
