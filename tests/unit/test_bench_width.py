"""The width bench's figures from canned logs and samples (``bench/width*.py``, ``bench/waiters.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
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
from bench.width_airflow import (
    TRIGGERER_PLUGINS,
    TriggererSessions,
    local_executor_env,
    require_postgres,
    setup_for,
    triggerer_env,
)
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
from tests.e2e.harness import COMPONENTS
from tests.e2e.ports import free_ports
from tests.e2e.scenario import Scenario
from tests.e2e.sessions import Sessions
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


def waiters(
    operator: str, n: int, ticks: int | None = None, requests: int | None = None, cpu: float = 3.6
) -> WaitersSample:
    return WaitersSample(
        operator=operator,
        waiters=n,
        deferred=n,
        settled=20.0,
        window=180.0,
        triggerer_cpu=cpu,
        poke_interval=60.0,
        poll_ticks=ticks,
        requests=requests,
    )


class TestRequestsPerSecond:
    def test_the_requests_logged_are_counted_for_ours_and_stock_alike(self) -> None:
        assert waiters("ours", 200, ticks=90, requests=90).requests_per_second == pytest.approx(0.5)
        assert waiters("stock", 200, requests=600).requests_per_second == pytest.approx(600 / 180)
        assert waiters("ours", 200, ticks=90, requests=90).counted == "measured"
        assert waiters("stock", 200, requests=600).counted == "measured"
        # None sent in the window, with the log carrying requests: none is a figure.
        assert waiters(IDLE, 0, requests=0).requests_per_second == 0.0
        assert not waiters(IDLE, 0, requests=0).computed

    def test_without_them_the_figure_is_computed_and_says_so(self) -> None:
        # Ours from the ticks, each REQUESTS_PER_TICK requests; stock's, one per trigger per poke_interval.
        assert waiters("ours", 200, ticks=90).requests_per_second == pytest.approx(90 * 2 / 180)
        assert waiters("ours", 200, ticks=90).counted == "computed from ticks"
        assert waiters("stock", 200).requests_per_second == pytest.approx(200 / 60)
        assert waiters("stock", 200).counted == "computed"
        assert waiters("ours", 200, ticks=90).computed
        assert waiters("stock", 200).computed

    def test_without_requests_or_ticks_there_is_no_figure(self) -> None:
        assert waiters("ours", 200).requests_per_second is None
        assert waiters("ours", 200).counted == "not logged"
        assert waiters(IDLE, 0).requests_per_second is None
        assert waiters(IDLE, 0).counted == "-"


def test_cpu_per_waiter_is_per_minute_and_can_leave_the_idle_triggerer_out() -> None:
    idle = waiters(IDLE, 0, cpu=1.8)

    # 3.6 s over 3 min for 200 waiters: 6 ms per waiter per minute; 1.8 s of it the idle triggerer's.
    assert waiters("ours", 200).cpu_ms_per_waiter_minute() == pytest.approx(6.0)
    assert waiters("ours", 200).cpu_ms_per_waiter_minute(idle) == pytest.approx(3.0)
    # An idle window half as long: its CPU per second is what is taken off.
    assert waiters("ours", 200).cpu_ms_per_waiter_minute(replace(idle, window=90.0, triggerer_cpu=0.9)) == (
        pytest.approx(3.0)
    )
    assert idle.cpu_ms_per_waiter_minute() is None


class FakeWidthAirflow:
    """What ``bench.waiters.logged`` reads of a width Airflow: its triggerer's log, and whether it logs requests."""

    def __init__(self, triggerer_log: Path, *, logs_requests: bool) -> None:
        self.triggerer_log = triggerer_log
        self._logs_requests = logs_requests

    def logs_requests(self) -> bool:
        return self._logs_requests


def in_process(second: float, path: str) -> str:
    """An httpx request line as the triggerer logs it (see test_bench_triggerer_requests for real ones)."""
    return (
        f"2026-11-22T10:00:{second:09.6f}Z [info     ] HTTP Request: GET http://in-process.invalid.{path} "
        '"HTTP/1.1 200 OK" [httpx] loc=_client.py:1025'
    )


TRIGGERER_WINDOW = [
    "2026-11-22T09:59:59.000000Z [info     ] Logging every in-process request [request_log] loc=x.py:1",
    in_process(0.5, "/dag-runs/count?dag_id=bench_paused_target&run_ids=r1"),  # before the window
    in_process(2.0, "/task-instances/states?dag_id=bench_paused_target&run_ids=r1&run_ids=r2"),
    tick(2.1, checked=2, waiting=2),
    in_process(3.0, "/dag-runs/count?dag_id=bench_paused_target&run_ids=r1"),
    in_process(4.0, "/task-instances/states?dag_id=bench_paused_target&run_ids=r1&run_ids=r2"),
    tick(4.1, checked=2, waiting=2),
    in_process(40.0, "/dag-runs/count?dag_id=bench_paused_target&run_ids=r1"),  # after it
]


class TestWhatTheTriggererLogged:
    def test_the_requests_in_the_window_are_counted_by_route_beside_ours_ticks(self, tmp_path: Path) -> None:
        log = tmp_path / "triggerer.log"
        log.write_text("\n".join(TRIGGERER_WINDOW) + "\n")
        airflow = FakeWidthAirflow(log, logs_requests=True)

        found = waiters_module.logged(waiters("ours", 2), airflow, offset=0, start=START, end=END)

        assert (found.requests, found.poll_ticks, found.poller_waiting) == (3, 2, 2)
        assert found.routes == {"GET /task-instances/states": 2, "GET /dag-runs/count": 1}
        assert found.counted == "measured"

    def test_stock_has_no_ticks_and_a_log_without_requests_leaves_the_figure_computed(
        self, tmp_path: Path
    ) -> None:
        log = tmp_path / "triggerer.log"
        log.write_text("\n".join(TRIGGERER_WINDOW) + "\n")

        stock = waiters_module.logged(
            waiters("stock", 2),
            FakeWidthAirflow(log, logs_requests=True),
            offset=0,
            start=START,
            end=END,
        )
        unlogged = waiters_module.logged(
            waiters("stock", 2),
            FakeWidthAirflow(log, logs_requests=False),
            offset=0,
            start=START,
            end=END,
        )

        assert (stock.requests, stock.poll_ticks) == (3, None)
        assert (unlogged.requests, unlogged.routes, unlogged.counted) == (None, {}, "computed")

    def test_only_the_triggerer_is_given_the_plugin_that_logs_its_requests(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        started: dict[str, dict[str, str]] = {}

        def start(self: Sessions, name: str, args: list[str], *, env: dict[str, str]) -> None:
            started[name] = env

        monkeypatch.setattr(Sessions, "start", start)
        sessions = TriggererSessions(home=tmp_path)
        env = {"AIRFLOW_HOME": str(tmp_path)}

        for name in COMPONENTS:
            sessions.start(name, [name], env=env)

        assert started["triggerer"] == triggerer_env(env)
        assert started["triggerer"]["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(TRIGGERER_PLUGINS)
        assert (TRIGGERER_PLUGINS / "request_log.py").exists()
        assert all(started[name] == env for name in COMPONENTS if name != "triggerer")


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


def test_deferring_the_waiters_is_planned_at_what_two_cores_allow() -> None:
    # 16 task processes at a time would defer a thousand in 190 s; the two cores take half a second each.
    assert waiters_seconds(waiters=1000, window=60.0, slots=32) == pytest.approx(1000 * 0.5 + 60.0 + 60.0)
    assert waiters_seconds(waiters=10, window=60.0, slots=2) == pytest.approx(10 * 1.5 + 60.0 + 60.0)


def test_without_fan_outs_only_the_waiters_airflow_is_planned() -> None:
    steps = plan(counts=(), slots=(4, 32), waiter_counts=(50, 1000), window=60.0, child_seconds=10.0)

    assert [step.name for step in steps] == [
        "32 slots: Airflow start and stop",
        "32 slots: idle triggerer",
        "32 slots: 50 deferred parents, stock",
        "32 slots: 50 deferred parents, ours",
        "32 slots: 1000 deferred parents, stock",
        "32 slots: 1000 deferred parents, ours",
    ]


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
        "1.000 requests/s (computed from ticks); took 5.0 min (planned 4.7 min)"
    )
    measured = replace(waiters("stock", 50, requests=150), routes={"GET /dag-runs/count": 150})
    assert waiters_line(measured, 300.0, 280.0) == (
        "[waiters] 50 deferred parents, stock: 50 still deferred after 180 s, triggerer CPU 3.60 s, "
        "0.833 requests/s (measured) = 150 GET /dag-runs/count; took 5.0 min (planned 4.7 min)"
    )


def test_postgresql_not_answering_is_named_with_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    (closed,) = free_ports(1)
    monkeypatch.setattr(backend, "POSTGRES_PORT", closed)

    with pytest.raises(backend.ServerMissing, match=f"PostgreSQL on 127.0.0.1:{closed}; start it"):
        require_postgres()
