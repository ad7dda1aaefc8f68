"""
Case 4: a 30-way fan-out on 4 worker slots, three ways, one after the other on one embedded Airflow.

- the stock operator, ``deferrable=True``;
- ours, ``deferrable=True, durable=True``;
- ours, synchronous and durable: it stalls (every slot held by a waiting parent, no child can start),
  so it gets ``stall_window`` seconds, is reported as stalled with what had finished, and is then
  marked failed to free the slots;
- first, as a baseline, the 30 child runs triggered at once through the REST API with no parent at
  all: what this Airflow itself takes to run them on the slots, the least any parent can add to.

Every operator runs at its defaults otherwise (``poke_interval=60``). Each fan-out is reported with its
makespan (the parent run's start to end) beside the floor the slots set (the children's total runtime
divided by the slots), its child run count, and how soon its mapped tasks noticed their children end
(``noticed``): above all the task waiting on the child that ended last, which the parent run waits for.
``python -m bench`` runs it as its case 4.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bench.dags.bench import CHILD_TASK, CHILDREN_ALONE, FAN_OUT_CHILD, FAN_OUT_TASK, FAN_OUTS, fan_out_child
from bench.fanout_notice import notice_lags
from bench.model import FanOutOutcome, FanOutSetup, Noticed
from tests.e2e.flows import seconds_between
from tests.e2e.polling import WaitTimeout
from tests.e2e.scenario import FINISHED, Scenario

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.client import AirflowClient, Json
    from tests.e2e.harness import EmbeddedAirflow

WIDTH = 30
CHILD_SECONDS = 10.0
STALL_WINDOW_SECONDS = 90.0
# Past the stall window, how long a fan-out that is not stalled may take.
TIMEOUT_SECONDS = 900.0


def fan_out(
    airflow: EmbeddedAirflow,
    *,
    label: str,
    dag_id: str,
    setup: FanOutSetup,
    stall_window: float,
    timeout: float = TIMEOUT_SECONDS,
    on_finished: Callable[[], None] | None = None,
) -> FanOutOutcome:
    """
    Run one fan-out; if it has not ended after ``stall_window`` seconds, fail it and call it stalled.

    Only the synchronous fan-out is expected to stall; the deferrable ones get ``timeout`` seconds.

    :param airflow: a running Airflow that loaded ``bench/dags``, with ``setup.slots`` slots.
    :param label: the fan-out's name in the report (a key of ``FAN_OUTS``).
    :param dag_id: its Dag.
    :param setup: its width, child length and slots.
    :param stall_window: seconds the synchronous fan-out gets before it counts as stalled.
    :param timeout: seconds any other fan-out gets before it counts as stalled.
    :param on_finished: called as soon as the parent run is seen finished (or stalled), before the REST
        API's records are read: where a caller closes what it measures over the fan-out.
    """
    scenario = Scenario(airflow.client, dag_id.replace("_", "-"), echo=False)
    run_id = scenario.trigger(dag_id, count=setup.width, sleep=setup.child_seconds)
    window = stall_window if "synchronous" in label else timeout
    try:
        parent = scenario.wait_run_finished(dag_id, run_id, timeout=window)
    except WaitTimeout:
        airflow.client.set_dag_run_state(dag_id, run_id, "failed")
        parent = {**airflow.client.dag_run(dag_id, run_id), "state": "stalled"}
    if on_finished is not None:
        on_finished()
    children = scenario.runs_of(fan_out_child(label))
    finished = [run for run in children if run["state"] in FINISHED]
    return FanOutOutcome(
        label=label,
        state=parent["state"],
        makespan=seconds_between(parent["start_date"], parent["end_date"])
        if parent["state"] in FINISHED
        else None,
        floor=child_task_seconds(airflow.client, finished, dag_id=fan_out_child(label)) / setup.slots,
        children=len(children),
        children_succeeded=sum(run["state"] == "success" for run in children),
        stall_window=stall_window,
        noticed=with_one_task_lags(
            airflow.client,
            noticed(parent, task_instances := airflow.client.task_instances(dag_id, run_id), children),
            task_instances=task_instances,
            children=children,
        ),
    )


def with_one_task_lags(
    client: AirflowClient, found: Noticed, *, task_instances: list[Json], children: list[Json]
) -> Noticed:
    """
    Return ``found`` with each child's notice lag from the fan-out task's log, if the fan-out is one task.

    A mapped fan-out's lags come from its tasks' ends (``noticed``); ``TriggerDagRunsOperator``'s one
    task says in its log when it noticed each end (``bench.fanout_notice``).

    :param client: the Airflow's REST client.
    :param found: what ``noticed`` read.
    :param task_instances: the parent run's task instances.
    :param children: the fan-out's child runs.
    """
    one = [ti for ti in task_instances if ti["task_id"] == FAN_OUT_TASK and ti["map_index"] == -1]
    if found.lags or len(one) != 1 or not one[0]["try_number"]:
        return found
    ti = one[0]
    lines = [
        line
        for try_number in range(1, ti["try_number"] + 1)
        for line in client.task_log(ti["dag_id"], ti["dag_run_id"], FAN_OUT_TASK, try_number).splitlines()
    ]
    lags = notice_lags(lines, children)
    # The last lag is the last child's only if every ended child's end was counted.
    ended = sum(run["state"] in FINISHED and bool(run.get("end_date")) for run in children)
    return replace(found, lags=lags, last_child=lags[-1] if lags and len(lags) == ended else None)


def noticed(parent_run: Json, task_instances: list[Json], child_runs: list[Json]) -> Noticed:
    """
    Return how soon the fan-out's mapped tasks noticed their children end, from the REST API's records.

    A child run is its mapped task's by the ``item`` of its conf: the map index of the task that
    triggered it (``build_confs`` in ``bench/dags/bench.py``).

    :param parent_run: the fan-out's parent run; its end counts only if it finished.
    :param task_instances: the parent run's task instances, mapped ones expanded.
    :param child_runs: the child runs the fan-out caused.
    """
    ended = [run for run in child_runs if run["state"] in FINISHED and run["end_date"]]
    if not ended:
        return Noticed(lags=[], last_child=None, run_end=None)
    tasks = {
        ti["map_index"]: ti
        for ti in task_instances
        if ti["task_id"] == FAN_OUT_TASK and ti["state"] == "success" and ti["end_date"]
    }
    lags = {
        run["dag_run_id"]: seconds_between(run["end_date"], tasks[item]["end_date"])
        for run in ended
        if (item := (run.get("conf") or {}).get("item")) in tasks
    }
    last = max(ended, key=lambda run: datetime.fromisoformat(run["end_date"]))
    run_end = (
        seconds_between(last["end_date"], parent_run["end_date"])
        if parent_run["state"] in FINISHED and parent_run["end_date"]
        else None
    )
    return Noticed(lags=list(lags.values()), last_child=lags.get(last["dag_run_id"]), run_end=run_end)


def children_alone(
    airflow: EmbeddedAirflow,
    *,
    setup: FanOutSetup,
    timeout: float = TIMEOUT_SECONDS,
    on_finished: Callable[[], None] | None = None,
) -> FanOutOutcome:
    """
    Trigger the fan-out's children directly, all at once, and time them: the baseline the parents add to.

    Its makespan runs from the first child run's creation (``queued_at``) to the last one's end.

    :param airflow: a running Airflow that loaded ``bench/dags``, with ``setup.slots`` slots.
    :param setup: the fan-out's width, child length and slots.
    :param timeout: seconds the children get to finish.
    :param on_finished: called as soon as every child run is seen finished, before the REST API's
        records are read (see ``fan_out``).
    """
    scenario = Scenario(airflow.client, "children-alone", echo=False)
    for item in range(setup.width):
        scenario.trigger(FAN_OUT_CHILD, sleep=setup.child_seconds, item=item)
    children = scenario.wait_runs_finished(FAN_OUT_CHILD, setup.width, timeout=timeout)
    if on_finished is not None:
        on_finished()
    return FanOutOutcome(
        label=CHILDREN_ALONE,
        state="success" if all(run["state"] == "success" for run in children) else "failed",
        makespan=seconds_between(
            min(run["queued_at"] for run in children), max(run["end_date"] for run in children)
        ),
        floor=child_task_seconds(airflow.client, children) / setup.slots,
        children=len(children),
        children_succeeded=sum(run["state"] == "success" for run in children),
        stall_window=0.0,
    )


def child_task_seconds(
    client: AirflowClient, child_runs: list[Json], *, dag_id: str = FAN_OUT_CHILD
) -> float:
    """
    The time the children's tasks held a worker slot, summed: the floor a fan-out's slots divide.

    Not the child runs' own lengths: a run counts as running while its task still waits for a slot.

    :param client: the Airflow's REST client.
    :param child_runs: finished runs of the fan-out's child Dag.
    :param dag_id: that Dag.
    """
    total = 0.0
    for run in child_runs:
        ti = client.task_instance(dag_id, run["dag_run_id"], CHILD_TASK)
        total += seconds_between(ti["start_date"], ti["end_date"])
    return total


def run(
    airflow: EmbeddedAirflow,
    *,
    setup: FanOutSetup,
    stall_window: float = STALL_WINDOW_SECONDS,
    progress: Callable[[str], None] = print,
) -> list[FanOutOutcome]:
    """
    Run the children alone, then the three fan-outs one after the other (the stalled one last).

    :param airflow: a running Airflow that loaded ``bench/dags``, with ``setup.slots`` slots.
    :param setup: the fan-outs' width, child length and slots.
    :param stall_window: seconds the synchronous fan-out gets before it counts as stalled.
    :param progress: where each fan-out's line goes.
    """

    def reported(outcome: FanOutOutcome) -> FanOutOutcome:
        makespan = "no end" if outcome.makespan is None else f"makespan {outcome.makespan:.0f} s"
        progress(
            f"[fan-out] {outcome.label}: {outcome.state}, {makespan}, floor {outcome.floor:.0f} s, "
            f"{outcome.children_succeeded}/{outcome.children} child runs succeeded"
            + _noticed_line(outcome.noticed)
        )
        return outcome

    outcomes = [reported(children_alone(airflow, setup=setup))]
    for label, dag_id in FAN_OUTS.items():
        outcome = fan_out(airflow, label=label, dag_id=dag_id, setup=setup, stall_window=stall_window)
        outcomes.append(reported(outcome))
    return outcomes


def _noticed_line(found: Noticed | None) -> str:
    if found is None:
        return ""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    return (
        f"; last child noticed after {seconds(found.last_child)}, "
        f"the parent run ended {seconds(found.run_end)} after it"
    )
