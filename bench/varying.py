"""
Case 6 on a real Airflow: how late a child run ten times longer than its Dag's last success is noticed.

Our schedule predicts a run's end from its child Dag's last successful run; a Dag whose length depends
on its ``conf`` breaks that prediction, and the wait must still notice the end soon (it checks a run
that outlived its predicted window every fifth of its age). A *round* is one repetition for the four
variants of ``bench.dags.bench.VARYING_VARIANTS``, each on a child Dag of its own:

1. *prime*: each parent triggers its child with ``sleep=VARYING_PRIME_SECONDS``; the round waits for
   those child runs to end, so each child Dag's last success took about that long;
2. *measure*: the four parents, triggered at the same moment, each trigger their child with
   ``sleep=VARYING_CHILD_SECONDS``; detection is the parent task's end minus that child run's end.

Rounds start ``stagger`` seconds apart and overlap, as the latency case's do: a later round's short run
does not disturb an earlier round's prediction, which was read when its wait began, and our history
look-up takes the latest success by logical date, so each round's own short run, the latest to have
succeeded when its measured wait begins, is the one predicted from. ``primed`` checks that from the
REST API's record rather than trusting it. At 5 repetitions and a 20 s stagger the case takes about
3 minutes: the last round starts at 80 s, its short runs take about 20 s to go through the scheduler,
and stock checks its 20 s child only at its 60 s ``poke_interval``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bench.dags.bench import (
    PARENT_TASK,
    VARIANTS,
    VARYING_CHILD_SECONDS,
    VARYING_PRIME_SECONDS,
    VARYING_VARIANTS,
    varying_child_dag_id,
    varying_parent_dag_id,
)
from bench.latency import POLL_SECONDS, ROUND_GRACE_SECONDS, STAGGER_SECONDS, finished_rounds
from bench.model import VaryingSample
from tests.e2e.flows import seconds_between
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED, Scenario

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from tests.e2e.client import AirflowClient, Json
    from tests.e2e.harness import EmbeddedAirflow


@dataclass
class Round:
    """One repetition: the short runs' parents, then (once those children ended) the measured parents."""

    repetition: int
    prime: Scenario
    measured: Scenario
    primes: dict[str, str]
    parents: dict[str, str] = field(default_factory=dict)


def run(
    airflow: EmbeddedAirflow,
    *,
    repetitions: int,
    variants: Collection[str] = VARYING_VARIANTS,
    stagger: float = STAGGER_SECONDS,
    progress: Callable[[str], None] = print,
) -> list[VaryingSample]:
    """
    Run every round and return one sample per measured parent.

    :param airflow: a running Airflow that loaded ``bench/dags``.
    :param repetitions: how many rounds.
    :param variants: the parent variants of each round (among ``VARYING_VARIANTS``).
    :param stagger: seconds between the starts of two rounds.
    :param progress: where each finished round's line goes.
    """
    client = airflow.client
    began = time.monotonic()
    pending: list[Round] = []
    samples: list[VaryingSample] = []

    def collect() -> bool:
        for waiting in [r for r in pending if not r.parents and _primed(client, r)]:
            _measure(waiting)
        for done in finished_rounds(
            client, [r for r in pending if r.parents], parent_dag_of=varying_parent_dag_id
        ):
            pending.remove(done)
            found = [_sample(client, done, variant) for variant in done.parents]
            samples.extend(found)
            progress(_line(done, found, repetitions))
        return not pending

    for index in range(repetitions):
        # Pacing, not hoping: each round has its start time, and the rounds before it are read meanwhile.
        while time.monotonic() < began + index * stagger:
            collect()
            time.sleep(min(POLL_SECONDS, max(0.0, began + index * stagger - time.monotonic())))
        pending.append(_start_round(client, repetition=index + 1, variants=variants))
    wait_for(
        collect,
        VARYING_PRIME_SECONDS + VARYING_CHILD_SECONDS + ROUND_GRACE_SECONDS,
        "every varying round",
        POLL_SECONDS,
    )
    return samples


def _start_round(client: AirflowClient, *, repetition: int, variants: Collection[str]) -> Round:
    prime = Scenario(client, f"bench-varying-prime-r{repetition}", echo=False)
    measured = Scenario(client, f"bench-varying-r{repetition}", echo=False)
    primes = {v: prime.trigger(varying_parent_dag_id(v), sleep=VARYING_PRIME_SECONDS) for v in variants}
    return Round(repetition=repetition, prime=prime, measured=measured, primes=primes)


def _primed(client: AirflowClient, r: Round) -> bool:
    """Whether every variant's short run has ended: the measured parents may start."""
    return all(_prime_over(client, r, variant, run_id) for variant, run_id in r.primes.items())


def _prime_over(client: AirflowClient, r: Round, variant: str, run_id: str) -> bool:
    if children := r.prime.runs_of(varying_child_dag_id(variant)):
        return all(child["state"] in FINISHED for child in children)
    # A parent that ended without triggering leaves no short run to wait for (the sample says unprimed).
    return client.dag_run(varying_parent_dag_id(variant), run_id)["state"] in FINISHED


def _measure(r: Round) -> None:
    # At the same moment, as the latency case's parents: the variants share the machine's load alike.
    for variant in r.primes:
        r.parents[variant] = r.measured.trigger(varying_parent_dag_id(variant), sleep=VARYING_CHILD_SECONDS)


def _sample(client: AirflowClient, done: Round, variant: str) -> VaryingSample:
    operator, path = VARIANTS[variant]
    parent_run_id = done.parents[variant]
    child_dag = varying_child_dag_id(variant)
    ti = client.task_instance(varying_parent_dag_id(variant), parent_run_id, PARENT_TASK)
    children = done.measured.runs_of(child_dag)
    child = children[0] if children else None
    primes = done.prime.runs_of(child_dag)
    previous = None if child is None else previous_success(client.dag_runs(child_dag), child)
    return VaryingSample(
        operator=operator,
        path=path,
        repetition=done.repetition,
        parent=(varying_parent_dag_id(variant), parent_run_id),
        state=ti["state"],
        child_seconds=float(VARYING_CHILD_SECONDS),
        detection=None if child is None else detection(ti, child),
        previous_seconds=None
        if previous is None
        else seconds_between(previous["start_date"], previous["end_date"]),
        primed=previous is not None and previous["dag_run_id"] in {p["dag_run_id"] for p in primes},
    )


def detection(parent_task: Json, child_run: Json) -> float | None:
    """
    Return the parent task's end minus the child run's end, or ``None`` if either did not end well.

    :param parent_task: the parent's task instance, as the REST API gives it.
    :param child_run: the child Dag run it waited on, as the REST API gives it.
    """
    if parent_task["state"] != "success" or child_run["state"] not in FINISHED:
        return None
    return seconds_between(child_run["end_date"], parent_task["end_date"])


def previous_success(runs: list[Json], child_run: Json) -> Json | None:
    """
    Return the run our wait on ``child_run`` predicted its end from, or ``None`` if there was none.

    What ``standard_ext.wait.history`` asks for when the wait begins: the child Dag's successful run with the
    latest logical date before then. The wait begins just after ``child_run`` is created, so the runs
    that count are those with an earlier logical date that had ended by its ``queued_at``.

    :param runs: every run of the child Dag, as the REST API gives them.
    :param child_run: the run waited on.
    """
    began, due = _at(child_run["queued_at"]), _due(child_run)
    earlier = [
        r
        for r in runs
        if r["state"] == "success"
        and r["dag_run_id"] != child_run["dag_run_id"]
        and _due(r) < due
        and r["end_date"] is not None
        and _at(r["end_date"]) <= began
    ]
    return max(earlier, key=_due, default=None)


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def _due(run: Json) -> datetime:
    # The history look-up orders by logical date; a run triggered without one by when it was due.
    return _at(run.get("logical_date") or run["run_after"])


def _line(done: Round, samples: list[VaryingSample], repetitions: int) -> str:
    parts = [
        f"{s.operator} {s.path} "
        + (f"{s.detection:.1f} s" if s.detection is not None else f"no figure ({s.state})")
        + ("" if s.primed else " (not primed)")
        for s in samples
    ]
    return (
        f"[varying] {VARYING_CHILD_SECONDS} s child after a {VARYING_PRIME_SECONDS} s success, repetition "
        f"{done.repetition}/{repetitions}: {', '.join(parts)} (detection: parent task end - child run end)"
    )
