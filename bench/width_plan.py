"""
The width bench's wall-time plan: how long each case should take, printed before the run and per case.

A case's time is its children's floor, times what case 4 measured over that floor on 2 cores, plus the
bench's own work around it. The floor is the children's total length over the runs that can work at
once: the slots, but at most Airflow's default ``[core] max_active_runs_per_dag`` (16), since every
child is a run of one Dag. The mapped parents add two task processes per child (the trigger, then the
resume), which case 4's factor carries. The waiters take the time their parents need to defer (each
task's process start and trigger, at most ``[core] max_active_tasks_per_dag`` (16) at a time per run),
the window measured, and their release.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.dags.bench import CHILDREN_ALONE, ONE_TASK_FAN_OUT, WIDTH_PARENTS

# Airflow's defaults that bound the width: a Dag's active runs, and a run's running tasks.
MAX_ACTIVE_RUNS_PER_DAG = 16
MAX_ACTIVE_TASKS_PER_RUN = 16
# Makespan over the floor, from case 4 (30 children of 10 s on 4 slots, 2 cores): the children alone
# 1.29, the mapped deferrable fan-outs 2.2; one task adds little to the children alone.
MAKESPAN_FACTORS = {
    CHILDREN_ALONE: 1.3,
    **dict.fromkeys(WIDTH_PARENTS, 2.3),
    ONE_TASK_FAN_OUT: 1.4,
}
# What the bench does around a case: triggering, the REST reads after it, the pause between cases.
CASE_OVERHEAD_SECONDS = 45.0
# An Airflow's start on a fresh PostgreSQL database (migrate, four components, the Dags parsed), and stop.
AIRFLOW_SECONDS = 150.0
# A deferrable parent task's process start, trigger and deferral on 2 cores, at most
# [core] max_active_tasks_per_dag of them at a time; but the machine's two cores bound them first: 0.3 s
# of wall time per task at 50 and 200 waiters (2026-12-06), 0.4 to 0.55 s at 50 to 1000 under other load
# (2026-12-07).
DEFER_SECONDS_PER_TASK = 3.0
DEFER_WALL_SECONDS_PER_TASK = 0.5
# Releasing the waiters: their parents and children marked failed, the triggers gone.
RELEASE_SECONDS = 60.0
# A case gets this many times its plan before it counts as stalled (it is then failed and reported).
TIMEOUT_FACTOR = 3.0
TIMEOUT_MIN_SECONDS = 900.0


@dataclass(frozen=True)
class Step:
    """One planned piece of the run and its seconds."""

    name: str
    seconds: float


def floor_seconds(*, count: int, child_seconds: float, slots: int) -> float:
    """
    The least time ``count`` children of ``child_seconds`` take on ``slots`` slots at Airflow's defaults.

    :param count: the children, each a run of one Dag.
    :param child_seconds: each child's length.
    :param slots: the LocalExecutor's slots.
    """
    return count * child_seconds / min(slots, MAX_ACTIVE_RUNS_PER_DAG)


def case_seconds(label: str, *, count: int, child_seconds: float, slots: int) -> float:
    """
    The planned wall time of one width case.

    :param label: the case (``CHILDREN_ALONE`` or a key of ``WIDTH_PARENTS``).
    :param count: its children.
    :param child_seconds: each child's length.
    :param slots: the Airflow's slots.
    """
    floor = floor_seconds(count=count, child_seconds=child_seconds, slots=slots)
    return MAKESPAN_FACTORS[label] * floor + CASE_OVERHEAD_SECONDS


def case_timeout(planned: float) -> float:
    """
    How long a case may run before it counts as stalled: well past its plan.

    :param planned: its planned seconds.
    """
    return max(TIMEOUT_MIN_SECONDS, TIMEOUT_FACTOR * planned)


def waiters_seconds(*, waiters: int, window: float, slots: int) -> float:
    """
    The planned wall time of one waiters measurement (0 waiters: the idle window).

    :param waiters: the deferred parents.
    :param window: the seconds measured once all are deferred.
    :param slots: the Airflow's slots.
    """
    if waiters == 0:
        return window
    deferring = waiters * max(
        DEFER_SECONDS_PER_TASK / min(slots, MAX_ACTIVE_TASKS_PER_RUN), DEFER_WALL_SECONDS_PER_TASK
    )
    return deferring + window + RELEASE_SECONDS


def plan(
    *,
    counts: tuple[int, ...],
    slots: tuple[int, ...],
    waiter_counts: tuple[int, ...],
    window: float,
    child_seconds: float,
) -> list[Step]:
    """
    Every step of a width run, in the order it runs them: per Airflow, its start, its cases, its waiters.

    The waiters run on the Airflow with the most slots (their parents defer soonest there); without
    counts, that Airflow is the only one started.

    :param counts: the children per fan-out.
    :param slots: the Airflows' slots, one Airflow each.
    :param waiter_counts: the deferred parents per waiters measurement (the idle window comes first).
    :param window: the seconds each waiters measurement lasts.
    :param child_seconds: each child's length.
    """
    steps = []
    for n in slots:
        if not counts and not (waiter_counts and n == max(slots)):
            continue
        steps.append(Step(f"{n} slots: Airflow start and stop", AIRFLOW_SECONDS))
        for count in counts:
            for label in (CHILDREN_ALONE, *WIDTH_PARENTS):
                seconds = case_seconds(label, count=count, child_seconds=child_seconds, slots=n)
                steps.append(Step(case_name(n, count, label), seconds))
        if waiter_counts and n == max(slots):
            steps.append(Step(f"{n} slots: idle triggerer", window))
            for waiters in waiter_counts:
                for operator in ("stock", "ours"):
                    seconds = waiters_seconds(waiters=waiters, window=window, slots=n)
                    steps.append(Step(f"{n} slots: {waiters} deferred parents, {operator}", seconds))
    return steps


def case_name(slots: int, count: int, label: str) -> str:
    """A width case's name in the plan and the progress lines."""
    return f"{slots} slots, {count} children: {label}"


def minutes(seconds: float) -> str:
    """Seconds as the plan prints them."""
    return f"{seconds / 60:.1f} min"
