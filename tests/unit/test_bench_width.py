"""The width bench's figures from canned logs and samples (``bench/width*.py``, ``bench/waiters.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bench import access_log, triggerer_log
from bench import waiters as waiters_module
from bench.cpu import TreeCpu, combine
from bench.dags.bench import CHILDREN_ALONE, FAN_OUT_TASK, ONE_TASK_FAN_OUT, PAUSED_TARGET, WIDTH_PARENTS
from bench.waiters import deferred, release
from bench.waiters import line as waiters_line
from bench.width import line as width_line
from bench.width import read_from, size, stop_leftovers
from bench.width_airflow import local_executor_env, require_postgres, setup_for
from bench.width_model import IDLE, CaseCpu, WaitersSample, WidthCase, case_cpu
from bench.width_plan import (
    AIRFLOW_SECONDS,
    CASE_OVERHEAD_SECONDS,
    MAKESPAN_FACTORS,
    TIMEOUT_MIN_SECONDS,
    case_seconds,
    case_timeout,
    floor_seconds,
    plan,
    waiters_seconds,
)
from tests.e2e import backend
from tests.e2e.ports import free_ports
from tests.e2e.scenario import Scenario
from tests.e2e.settings import CELERY, POSTGRES_LOCAL, Distributed, Ports, airflow_env

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.client import Json

TI_A = "01a1ffc6-b257-749f-a1e7-572579931777"
TI_B = "01a1ffc6-b257-749f-a1e7-5725799317aa"
TI_C = "01a1ffc6-b257-749f-a1e7-5725799317bb"


def access(second: float, method: str, path: str, status: int = 200) -> str:
    """One access-log line of the api-server, as the console renderer writes it (see test_bench_access_log)."""
    return (
        f"2026-11-22T10:00:{second:09.6f}Z [info     ] request finished               [http.access] "
        f"client_addr=127.0.0.1:52596 duration_us=9000 loc=http_access_log.py:130 method={method} "
        f"path={path} query= status_code={status}"
    )


# A mapped deferrable parent's task: it starts (TI_A), defers, resumes (TI_A again); a child (TI_B) starts
# and heartbeats; a second child's start is answered 503 once and retried (TI_C); the bench's own REST reads
# and a start before the case are not the case's.
ACCESS_LOG = [
    access(0.5, "PATCH", f"/execution/task-instances/{TI_C}/run"),
    access(1.0, "PATCH", f"/execution/task-instances/{TI_A}/run"),
    access(1.2, "POST", "/execution/dag-runs/bench_fan_out_child/manual__x", 204),
    access(1.3, "PATCH", f"/execution/task-instances/{TI_A}/state", 204),
    access(2.0, "GET", "/api/v2/dags/bench_fan_out_child/dagRuns"),
    access(3.0, "PATCH", f"/execution/task-instances/{TI_B}/run"),
    access(5.0, "PUT", f"/execution/task-instances/{TI_B}/heartbeat", 204),
    access(6.0, "PATCH", f"/execution/task-instances/{TI_C}/run", 503),
    access(6.5, "PATCH", f"/execution/task-instances/{TI_C}/run", 409),
    access(14.0, "PATCH", f"/execution/task-instances/{TI_A}/run"),
    access(59.0, "PATCH", f"/execution/task-instances/{TI_B}/run"),
]
START = datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC)
END = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)


def case_requests() -> list[access_log.Request]:
    return access_log.between(access_log.parse(ACCESS_LOG), START, END)


def test_the_case_window_keeps_only_the_requests_served_during_the_case() -> None:
    requests = case_requests()

    assert [r.at.second for r in requests] == [1, 1, 1, 2, 3, 5, 6, 6, 14]


def test_task_processes_are_the_starts_and_tries_the_task_instance_ids_among_them() -> None:
    starts = access_log.task_starts(case_requests())

    # TI_A twice (its start and its resume), TI_B once, TI_C once (the 503 retried: the same process,
    # the 409 counted: a process started and refused).
    assert (starts.processes, starts.tries, starts.resumes) == (4, 3, 1)


def test_execution_requests_are_every_execution_api_request_and_no_rest_one() -> None:
    # Eight of the nine in the window: the REST read is the bench's own.
    assert access_log.execution_requests(case_requests()) == 8


def tick(second: float, dag_id: str = "bench_paused_target", checked: int = 100, waiting: int = 200) -> str:
    """A poller tick as the triggerer re-logs it (the console renderer, as the access log's lines)."""
    return (
        f"2026-11-22T10:00:{second:09.6f}Z [debug    ] Checked child Dag runs         "
        f"[standard_ext.triggers.poller] checked={checked} dag_id={dag_id} left_due=0 "
        f"loc=poller.py:274 waiting={waiting}"
    )


def test_the_triggerer_log_gives_one_tick_per_poller_wake_of_the_child_dag() -> None:
    lines = [
        "2026-11-22T10:00:00.100000Z [info     ] 12 triggers currently running [airflow.jobs.triggerer_job_runner]",
        tick(2.0, checked=100),
        tick(3.0, checked=100),
        tick(3.5, dag_id="bench_fan_out_child", checked=5, waiting=5),
        '{"timestamp": "2026-11-22T10:00:40.000000Z", "level": "debug", "event": "Checked child Dag runs", '
        '"dag_id": "bench_paused_target", "checked": 3, "left_due": 0, "waiting": 3}',
    ]

    found = triggerer_log.ticks(lines, dag_id="bench_paused_target")

    assert [(t.at.second, t.checked, t.waiting) for t in found] == [(2, 100, 200), (3, 100, 200), (40, 3, 3)]
    assert [t.at.second for t in triggerer_log.ticks_between(found, START, END)] == [2, 3]


def test_the_log_namespace_levels_raise_the_poller_and_the_triggerer_that_relogs_it_only() -> None:
    assert triggerer_log.NAMESPACE_LEVELS.split() == [
        "standard_ext.triggers.poller=DEBUG",
        "airflow.jobs.triggerer_job_runner=DEBUG",
    ]


@dataclass(frozen=True)
class Times:
    user: float
    system: float
    children_user: float = 0.0
    children_system: float = 0.0


def test_a_component_cpu_is_its_own_and_all_it_forked_reaped_or_live() -> None:
    top = Times(user=10.0, system=2.0, children_user=30.0, children_system=5.0)
    live = [Times(user=1.0, system=0.5), Times(user=4.0, system=1.0, children_user=8.0, children_system=2.0)]

    found = combine(top, live)

    assert found == TreeCpu(own=12.0, forked=35.0 + 1.5 + 15.0)
    assert found.total == pytest.approx(63.5)
    assert found.since(TreeCpu(own=2.0, forked=20.0)) == TreeCpu(own=10.0, forked=31.5)


def test_a_case_cpu_splits_the_scheduler_from_what_it_forked() -> None:
    before = {
        "scheduler": TreeCpu(1.0, 2.0),
        "triggerer": TreeCpu(3.0, 4.0),
        "api-server": TreeCpu(5.0, 6.0),
        "dag-processor": TreeCpu(0.0, 0.0),
    }
    after = {
        "scheduler": TreeCpu(11.0, 102.0),
        "triggerer": TreeCpu(4.0, 9.0),
        "api-server": TreeCpu(25.0, 26.0),
        "dag-processor": TreeCpu(1.0, 1.0),
    }

    cpu = case_cpu(before, after)

    assert cpu == CaseCpu(scheduler=10.0, executor=100.0, triggerer=6.0, api_server=40.0)


def test_read_from_an_offset_drops_the_line_cut_there(tmp_path: Path) -> None:
    log = tmp_path / "triggerer.log"
    log.write_text("one\ntwo\n")
    at_line_start = size(log)
    log.write_text("one\ntwo\nthree\nfour\n")

    assert read_from(log, 0) == ["one", "two", "three", "four"]
    assert read_from(log, at_line_start) == ["three", "four"]
    # Mid-line ("tw|o"): that line began before the offset.
    assert read_from(log, 6) == ["three", "four"]
    assert read_from(log, size(log)) == []
    assert size(tmp_path / "not-yet.log") == 0


def waiters(operator: str, n: int, ticks: int | None = None) -> WaitersSample:
    return WaitersSample(
        operator=operator,
        waiters=n,
        deferred=n,
        settled=20.0,
        window=180.0,
        triggerer_cpu=3.6,
        poke_interval=60.0,
        poll_ticks=ticks,
    )


def test_ours_requests_per_second_are_the_logged_ticks_and_stocks_are_computed() -> None:
    assert waiters("ours", 200, ticks=90).requests_per_second == pytest.approx(90 * 2 / 180)
    assert waiters("ours", 200, ticks=90).counted == "logged ticks"
    assert waiters("ours", 200).requests_per_second is None
    assert waiters("ours", 200).counted == "not logged"
    # Each of stock's triggers counts once per poke_interval.
    assert waiters("stock", 200).requests_per_second == pytest.approx(200 / 60)
    assert waiters("stock", 200).counted == "computed"
    assert waiters(IDLE, 0).requests_per_second == 0.0


def test_only_the_waiting_tasks_deferred_count() -> None:
    tis = [
        {"task_id": "build_confs", "state": "success"},
        {"task_id": FAN_OUT_TASK, "state": "deferred"},
        {"task_id": FAN_OUT_TASK, "state": "deferred"},
        {"task_id": FAN_OUT_TASK, "state": "running"},
    ]

    assert deferred(tis) == 2


def test_the_floor_is_the_children_over_the_runs_that_can_work_at_once() -> None:
    # 32 slots, but one Dag has at most 16 active runs at Airflow's defaults.
    assert floor_seconds(count=300, child_seconds=10.0, slots=32) == pytest.approx(187.5)
    assert floor_seconds(count=300, child_seconds=10.0, slots=4) == pytest.approx(750.0)


def test_a_case_is_planned_from_its_floor_and_gets_three_times_its_plan() -> None:
    planned = case_seconds(CHILDREN_ALONE, count=60, child_seconds=10.0, slots=4)

    assert planned == pytest.approx(MAKESPAN_FACTORS[CHILDREN_ALONE] * 150.0 + CASE_OVERHEAD_SECONDS)
    assert case_timeout(planned) == TIMEOUT_MIN_SECONDS
    assert case_timeout(2000.0) == pytest.approx(6000.0)
    assert waiters_seconds(waiters=0, window=180.0, slots=32) == 180.0


def test_the_plan_runs_each_airflow_s_cases_then_the_waiters_on_the_one_with_the_most_slots() -> None:
    steps = plan(counts=(60,), slots=(4, 32), waiter_counts=(1, 200), window=180.0, child_seconds=10.0)

    names = [step.name for step in steps]
    assert names == [
        "4 slots: Airflow start and stop",
        f"4 slots, 60 children: {CHILDREN_ALONE}",
        *(f"4 slots, 60 children: {label}" for label in WIDTH_PARENTS),
        "32 slots: Airflow start and stop",
        f"32 slots, 60 children: {CHILDREN_ALONE}",
        *(f"32 slots, 60 children: {label}" for label in WIDTH_PARENTS),
        "32 slots: idle triggerer",
        "32 slots: 1 deferred parents, stock",
        "32 slots: 1 deferred parents, ours",
        "32 slots: 200 deferred parents, stock",
        "32 slots: 200 deferred parents, ours",
    ]
    assert steps[0].seconds == AIRFLOW_SECONDS
    assert ONE_TASK_FAN_OUT in WIDTH_PARENTS
    no_waiters = plan(counts=(60,), slots=(32,), waiter_counts=(), window=180.0, child_seconds=10.0)
    assert not [step for step in no_waiters if "parents" in step.name or "idle" in step.name]


def test_the_width_airflow_is_postgresql_with_the_local_executor_at_airflow_defaults(tmp_path: Path) -> None:
    setup = setup_for(4)
    env = airflow_env(
        tmp_path,
        tmp_path / "dags",
        Ports(8080, 8793, 8794),
        tmp_path / "bin",
        setup,
        Distributed(database="airflow_e2e_x", key_prefix="airflow-e2e-x:"),
    )

    found = local_executor_env(env)

    assert (setup.parallelism, setup.distributed, setup.airflow_defaults) == (4, True, True)
    assert setup.name == "postgres-local-4-slots"
    assert POSTGRES_LOCAL.parallelism is None
    assert found["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert found["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert found["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/airflow_e2e_x")
    assert found["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] == triggerer_log.NAMESPACE_LEVELS
    assert not [key for key in found if "CELERY" in key]
    # Nothing the tests shorten to react sooner: Airflow's defaults.
    assert "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME" not in found
    # The distributed suite's own setup is left as it was.
    assert (CELERY.distributed, CELERY.airflow_defaults, CELERY.parallelism) == (True, False, None)


class FakeClient:
    """The REST calls the width bench makes to clean up: runs listed by Dag (by conf text), states set."""

    def __init__(self, runs: dict[str, list[Json]]) -> None:
        self.runs = runs
        self.set: list[tuple[str, str, str]] = []

    def dag_runs(self, dag_id: str, conf_contains: str | None = None) -> list[Json]:
        return [
            run
            for run in self.runs.get(dag_id, [])
            if conf_contains is None or conf_contains in json.dumps(run.get("conf"))
        ]

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str) -> Json:
        self.set.append((dag_id, run_id, state))
        return {}


def run(run_id: str, state: str, tag: str = "") -> Json:
    return {"dag_run_id": run_id, "state": state, "conf": {"tag": tag}}


def test_a_failed_case_s_runs_still_going_are_failed_so_the_next_case_runs_alone() -> None:
    client = FakeClient(
        {
            "bench_fan_out_child": [run("a", "success"), run("b", "running"), run("c", "queued")],
            WIDTH_PARENTS[ONE_TASK_FAN_OUT]: [run("p", "running")],
        }
    )
    lines: list[str] = []

    stop_leftovers(client, lines.append)  # type: ignore[arg-type]

    assert client.set == [
        ("bench_fan_out_child", "b", "failed"),
        ("bench_fan_out_child", "c", "failed"),
        (WIDTH_PARENTS[ONE_TASK_FAN_OUT], "p", "failed"),
    ]
    assert len(lines) == 2


def test_the_waiters_are_released_parents_and_their_queued_children_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(waiters_module, "SETTLE_SECONDS", 0.0)
    client = FakeClient(
        {
            PAUSED_TARGET: [
                run("mine", "queued", "w-1"),
                run("done", "failed", "w-1"),
                run("other", "queued", "w-2"),
            ]
        }
    )
    scenario = Scenario(client, "w", echo=False)  # type: ignore[arg-type]
    # The runs this scenario's parents triggered carry its tag; another scenario's are not released.
    scenario.tag = "w-1"

    release(client, scenario, "bench_waiters_ours", "parent")  # type: ignore[arg-type]

    assert client.set == [("bench_waiters_ours", "parent", "failed"), (PAUSED_TARGET, "mine", "failed")]


def test_the_progress_lines_say_what_each_case_measured_and_took() -> None:
    found = WidthCase(
        slots=4,
        count=60,
        label=ONE_TASK_FAN_OUT,
        state="success",
        makespan=160.0,
        children=60,
        children_succeeded=60,
        seconds=200.0,
        planned=252.0,
        processes=62,
        tries=61,
        cpu=CaseCpu(scheduler=10.0, executor=90.0, triggerer=2.5, api_server=30.0),
        execution_requests=700,
    )

    assert width_line(found) == (
        f"[width] 4 slots, 60 children: {ONE_TASK_FAN_OUT}: success, makespan 160 s, 60/60 children, "
        "62 task processes (61 tries), 700 execution-API requests, CPU s scheduler 10.0 / executor 90.0 / "
        "triggerer 2.5; took 3.3 min (planned 4.2 min)"
    )
    assert waiters_line(waiters("ours", 200, ticks=90), 300.0, 280.0) == (
        "[waiters] 200 deferred parents, ours: 200 still deferred after 180 s, triggerer CPU 3.60 s, "
        "1.000 requests/s (logged ticks); took 5.0 min (planned 4.7 min)"
    )


def test_postgresql_not_answering_is_named_with_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    (closed,) = free_ports(1)
    monkeypatch.setattr(backend, "POSTGRES_PORT", closed)

    with pytest.raises(backend.ServerMissing, match=f"PostgreSQL on 127.0.0.1:{closed}; start it"):
        require_postgres()
