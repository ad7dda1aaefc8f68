"""
Case 3: what ``durable=True`` adds to each trigger, read from the task logs.

Per repetition, ``bench_durable_cost_on`` and ``_off`` run at the same moment (so they share the
machine's load), each our operator mapped over a few items with ``wait_for_completion=False``. For each
mapped task, the time from the start of its ``execute()`` (the ``::endgroup::`` that closes Airflow's
"Pre Execute" group) to the operator's ``Triggered child Dag run`` event: both written by the same
process, so no clocks are compared. The durable cost is the difference of the two medians.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from bench.dags.bench import DURABLE_COST_ITEMS, DURABLE_COST_TASK
from bench.model import DurableCost
from bench.stats import percentile
from tests.e2e.flows import TRIGGERED_EVENT
from tests.e2e.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.harness import EmbeddedAirflow

DAGS = {True: "bench_durable_cost_on", False: "bench_durable_cost_off"}
# Where Airflow's task runner closes the "Pre Execute" log group: the operator's execute() begins.
EXECUTE_BEGINS = "::endgroup::"
TIMEOUT_SECONDS = 300.0


def run(
    airflow: EmbeddedAirflow, *, repetitions: int, progress: Callable[[str], None] = print
) -> DurableCost:
    """
    Run both Dags ``repetitions`` times and return every task's start-to-trigger time.

    :param airflow: a running Airflow that loaded ``bench/dags``.
    :param repetitions: how many runs of each Dag.
    :param progress: where each repetition's line goes.
    """
    samples: dict[bool, list[float]] = {True: [], False: []}
    for rep in range(1, repetitions + 1):
        scenario = Scenario(airflow.client, f"bench-durable-r{rep}", echo=False)
        run_ids = {durable: scenario.trigger(dag_id) for durable, dag_id in DAGS.items()}
        this_rep: dict[bool, list[float]] = {}
        for durable, dag_id in DAGS.items():
            run = scenario.wait_run_finished(dag_id, run_ids[durable], timeout=TIMEOUT_SECONDS)
            if run["state"] != "success":
                raise RuntimeError(f"{dag_id} run {run_ids[durable]} ended {run['state']}")
            this_rep[durable] = [
                trigger_ms(airflow.task_log_files(dag_id, run_ids[durable], DURABLE_COST_TASK, 1, item))
                for item in range(DURABLE_COST_ITEMS)
            ]
            samples[durable].extend(this_rep[durable])
        on, off = percentile(this_rep[True], 50), percentile(this_rep[False], 50)
        progress(
            f"[durable] repetition {rep}/{repetitions}: start to trigger p50 durable=True {on:.0f} ms, "
            f"durable=False {off:.0f} ms, difference {on - off:+.0f} ms ({DURABLE_COST_ITEMS} tasks each)"
        )
    return DurableCost(
        on_ms=samples[True], off_ms=samples[False], repetitions=repetitions, items=DURABLE_COST_ITEMS
    )


def trigger_ms(log: str) -> float:
    """
    Return the milliseconds from the start of ``execute()`` to the trigger in one try's log file.

    :param log: the try's log file, one JSON event per line, as the task's supervisor writes it.
    :raises ValueError: the log lacks either event.
    """
    began = triggered = None
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or "timestamp" not in event:
            continue
        at = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
        if event.get("event") == EXECUTE_BEGINS and began is None:
            began = at
        elif event.get("event") == TRIGGERED_EVENT and began is not None:
            triggered = at
            break
    if began is None or triggered is None:
        raise ValueError(f"no {EXECUTE_BEGINS!r} then {TRIGGERED_EVENT!r} in the log:\n{log[-3000:]}")
    return (triggered - began).total_seconds() * 1000
