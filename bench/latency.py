"""
Cases 1 and 2 on a real Airflow: how late each parent notices that its child ended, and what it costs.

A *round* is one child length and one repetition: the five parent variants (stock and ours, each
synchronous and deferrable, and ours deferrable with ``end_from_trigger=True``) triggered at the same
moment, each on a child Dag of its own (``bench/dags/bench.py``). Rounds start ``stagger`` seconds
apart, the longest children first in each repetition, so they overlap (every stock wait lasts at least
its 60 s ``poke_interval``) without running out of Airflow's default 32 slots: a synchronous parent
holds one for its whole wait, each child one for its run (at most about 28 at once at the defaults).
Every figure comes from what the REST API recorded, never from when this process noticed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from bench import access_log
from bench.dags.bench import PARENT_TASK, VARIANTS, child_dag_id, parent_dag_id
from bench.model import WaitSample
from tests.e2e.flows import seconds_between
from tests.e2e.polling import wait_for
from tests.e2e.scenario import FINISHED, Scenario

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from tests.e2e.client import AirflowClient
    from tests.e2e.harness import EmbeddedAirflow

# Seconds between two rounds: enough to keep the slots free (see the module), short enough that the
# full bench fits in its 20 minutes.
STAGGER_SECONDS = 20.0
# A round still running this long after its child should have ended has gone wrong.
ROUND_GRACE_SECONDS = 400.0
# How often the runs are looked at; the figures come from their timestamps, so this only sets when a
# round's progress line is printed.
POLL_SECONDS = 3.0


@dataclass
class Round:
    """One child length and repetition: the parent run of each variant, tagged by one scenario."""

    length: int
    repetition: int
    scenario: Scenario
    parents: dict[str, str] = field(default_factory=dict)


def run(
    airflow: EmbeddedAirflow,
    *,
    lengths: Collection[int],
    repetitions: int,
    variants: Collection[str] = tuple(VARIANTS),
    stagger: float = STAGGER_SECONDS,
    progress: Callable[[str], None] = print,
) -> list[WaitSample]:
    """
    Run every round and return one sample per parent.

    :param airflow: a running Airflow that loaded ``bench/dags``.
    :param lengths: the child lengths, in seconds (among ``bench.dags.bench.LENGTHS``).
    :param repetitions: how many rounds per length.
    :param variants: the parent variants to trigger in each round (keys of ``VARIANTS``).
    :param stagger: seconds between the starts of two rounds.
    :param progress: where each finished round's line goes.
    """
    plan = [(rep, length) for rep in range(1, repetitions + 1) for length in sorted(lengths, reverse=True)]
    client = airflow.client
    began = time.monotonic()
    pending: list[Round] = []
    samples: list[WaitSample] = []

    def collect() -> bool:
        for done in finished_rounds(client, pending):
            pending.remove(done)
            found = [_sample(client, done, variant) for variant in done.parents]
            samples.extend(found)
            progress(_line(done, found, repetitions))
        return not pending

    for index, (rep, length) in enumerate(plan):
        # Pacing, not hoping: each round has its start time, and the rounds before it are read meanwhile.
        while time.monotonic() < began + index * stagger:
            collect()
            time.sleep(min(POLL_SECONDS, max(0.0, began + index * stagger - time.monotonic())))
        pending.append(_start_round(client, length=length, repetition=rep, variants=variants))
    wait_for(collect, max(lengths) + ROUND_GRACE_SECONDS, "every latency round to finish", POLL_SECONDS)
    return samples


def _start_round(client: AirflowClient, *, length: int, repetition: int, variants: Collection[str]) -> Round:
    scenario = Scenario(client, f"bench-{length}s-r{repetition}", echo=False)
    started = Round(length=length, repetition=repetition, scenario=scenario)
    for variant in variants:
        started.parents[variant] = scenario.trigger(parent_dag_id(variant), length=length)
    return started


class HasParents(Protocol):
    """A round of parents triggered together: ``{variant: parent run id}``."""

    @property
    def parents(self) -> dict[str, str]:
        """The round's parent run ids, by variant."""
        ...


R = TypeVar("R", bound=HasParents)


def finished_rounds(
    client: AirflowClient, rounds: list[R], *, parent_dag_of: Callable[[str], str] = parent_dag_id
) -> list[R]:
    """
    The rounds whose parent runs have all finished, asking once per parent Dag however many rounds.

    :param client: the Airflow's REST client.
    :param rounds: the rounds still waited on.
    :param parent_dag_of: a variant's parent Dag id.
    """
    if not rounds:
        return []
    variants = {variant for r in rounds for variant in r.parents}
    states = {
        (variant, run["dag_run_id"]): run["state"]
        for variant in variants
        for run in client.dag_runs(parent_dag_of(variant))
    }
    return [
        r
        for r in rounds
        if all(states.get((variant, run_id)) in FINISHED for variant, run_id in r.parents.items())
    ]


def _sample(client: AirflowClient, done: Round, variant: str) -> WaitSample:
    operator, path = VARIANTS[variant]
    parent_run_id = done.parents[variant]
    ti = client.task_instance(parent_dag_id(variant), parent_run_id, PARENT_TASK)
    children = done.scenario.runs_of(child_dag_id(done.length, variant))
    child = children[0] if children else None
    detection = overhead = None
    if ti["state"] == "success" and child is not None and child["state"] in FINISHED:
        detection = seconds_between(child["end_date"], ti["end_date"])
        overhead = seconds_between(ti["start_date"], ti["end_date"]) - seconds_between(
            child["start_date"], child["end_date"]
        )
    return WaitSample(
        length=done.length,
        operator=operator,
        path=path,
        repetition=done.repetition,
        parent=(parent_dag_id(variant), parent_run_id),
        state=ti["state"],
        detection=detection,
        overhead=overhead,
        child=None if child is None else (child_dag_id(done.length, variant), child["dag_run_id"]),
        child_start=None if child is None else child["start_date"],
        child_end=None if child is None else child["end_date"],
    )


def _line(done: Round, samples: list[WaitSample], repetitions: int) -> str:
    parts = [
        f"{s.operator} {s.path} "
        + (f"{s.detection:.1f} s" if s.detection is not None else f"no figure ({s.state})")
        for s in samples
    ]
    return (
        f"[latency] {done.length} s child, repetition {done.repetition}/{repetitions}: "
        f"{', '.join(parts)} (detection: parent task end - child run end)"
    )


def attach_requests(samples: list[WaitSample], access_log_text: str) -> list[WaitSample]:
    """
    Return ``samples`` with the state requests the api-server's access log shows for each child run.

    :param samples: what ``run`` returned.
    :param access_log_text: the api-server's log (``EmbeddedAirflow.api_server_log``), read before
        Airflow stops.
    """
    requests = access_log.parse(access_log_text.splitlines())
    counts = access_log.state_requests_per_run(requests, [s.child for s in samples if s.child is not None])
    return [s if s.child is None else replace(s, requests=counts[s.child]) for s in samples]


def had_previous_run(sample: WaitSample, samples: list[WaitSample]) -> bool:
    """
    Whether the sample's child Dag had a run that ended well before this child run started.

    Our schedule predicts a child's end from its Dag's last successful run: a wait without one (the
    first repetition, or one that began before the first ended) waits without the prediction.

    :param sample: one wait.
    :param samples: every wait of the run (each child Dag's runs are all among them).
    """
    if sample.child is None or sample.child_start is None:
        return False
    return any(
        other.child is not None
        and other.child[0] == sample.child[0]
        and other.detection is not None
        and other.child_end is not None
        and seconds_between(other.child_end, sample.child_start) > 0
        for other in samples
    )


# What Airflow's scheduler logs when it takes the stale exit of a deferring task process for the end of
# the resumed try and fails it (apache/airflow#67287, #72716; see docs/deferrable.md, "A race in Airflow itself").
_STALE_EXIT = re.compile(
    r"reported that the task instance <TaskInstance: (?P<dag_id>\S+)\.\S+ (?P<run_id>\S+) \[queued\][^>]*> "
    r"finished with state success, but the task instance's state attribute is queued"
)


def stale_defer_exits(scheduler_log: str) -> set[tuple[str, str]]:
    """
    Return the ``(dag_id, run_id)`` of the parent runs whose task Airflow failed on a stale exit event.

    :param scheduler_log: the scheduler's log (in ``standalone.log`` on the default backend).
    """
    return {(m["dag_id"], m["run_id"]) for m in _STALE_EXIT.finditer(scheduler_log)}
