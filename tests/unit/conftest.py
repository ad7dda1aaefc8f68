"""Fixtures for the operator tests: a test clock and one parent task that can be run, retried and cleared."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import time_machine
from airflow.sdk.bases.operator import ExecutorSafeguard
from airflow.sdk.execution_time.comms import TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.triggers import shared_poll
from standard_ext.wait import schedule as poll_schedule
from tests.fake_api import FakeApi
from tests.fake_task import FakeTaskInstance, FakeTaskStateStore
from tests.unit.virtual_time import START as POLLER_START
from tests.unit.virtual_time import T0, VirtualTime

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor

START = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
# Where a durable parent saves its child run, and the XCom the "Triggered DAG" link reads.
KEY = TriggerDagRunOperator.external_id_key
LINK_KEY = "_link_TriggerDagRunLink"
# Time between a try's end and the next try. It matters: run ids generated from the clock
# (manual__<now>) differ between tries because the clock moves, as it does in Airflow.
RETRY_DELAY_SECONDS = 1.0


@dataclass
class Clock:
    traveller: time_machine.Traveller
    waits: list[float] = field(default_factory=list)

    def elapsed(self) -> float:
        return (datetime.now(tz=UTC) - START).total_seconds()


@pytest.fixture(autouse=True)
def _as_if_in_the_task_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests call execute() directly; this is the switch Airflow's own tests use to allow that quietly.
    monkeypatch.setattr(ExecutorSafeguard, "test_mode", True)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """Frozen time that moves only when the operator waits between two checks."""
    with time_machine.travel(START, tick=False) as traveller:
        test_clock = Clock(traveller)

        def wait(seconds: float, *, stop: threading.Event | None = None) -> None:
            if stop is not None and stop.is_set():
                return  # Event.wait returns at once once it is set
            test_clock.waits.append(seconds)
            traveller.shift(seconds)

        monkeypatch.setattr(poll_schedule, "wait", wait)
        yield test_clock


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the task catches it, as nothing survives the real one."""


@dataclass
class Parent:
    """
    One parent task instance across its tries: the same task_state_store, a growing try number.

    Each try gets a fresh operator, as each real try deserializes its own in a new process.
    """

    supervisor: FakeSupervisor
    operator_kwargs: dict[str, Any]
    ti: FakeTaskInstance
    clock: Clock
    store: FakeTaskStateStore = field(default_factory=FakeTaskStateStore)
    # The operator of the latest try, as the task runner holds it (its on_kill, say).
    operator: TriggerDagRunOperator | None = None

    def run(self) -> Any:
        operator = TriggerDagRunOperator(task_id=self.ti.task_id, **self.operator_kwargs)
        self.operator = operator
        context: dict[str, Any] = {
            "ti": self.ti,
            "task_instance": self.ti,
            "task_state_store": self.store,
            "dag_run": self.ti.dag_run,
        }
        return operator.execute(context)  # type: ignore[arg-type]

    def run_until_killed(self) -> None:
        with pytest.raises(WorkerKilled):
            self.run()

    def retry(self) -> None:
        """An automatic retry, which Airflow starts ``retry_delay`` after the try ended: time has passed."""
        self.clock.traveller.shift(RETRY_DELAY_SECONDS)
        self.ti.retry()

    def clear(self) -> None:
        """A person clears the task; the next try starts a little later."""
        self.clock.traveller.shift(RETRY_DELAY_SECONDS)
        self.ti.clear()


if TYPE_CHECKING:
    # What make_parent gives: called with the operator's arguments (and retries), it returns a Parent.
    MakeParent = Callable[..., Parent]


@pytest.fixture
def make_parent(supervisor: FakeSupervisor, clock: Clock) -> MakeParent:
    def make(*, retries: int = 2, **kwargs: Any) -> Parent:
        kwargs.setdefault("trigger_dag_id", "child")
        return Parent(
            supervisor,
            {"retries": retries, **kwargs},
            FakeTaskInstance(retries=retries, max_tries=retries),
            clock,
        )

    return make


def kill_run(parent: Parent, message: str, *, nth: int = 1) -> None:
    """Run the parent until the worker dies sending its ``nth`` message of this kind (unseen by the server)."""
    supervisor = parent.supervisor
    handler = getattr(supervisor, f"_on_{message}")
    calls = {"n": 0}

    def dying(msg: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth:
            raise WorkerKilled(message)
        return handler(msg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, f"_on_{message}", dying)
        parent.run_until_killed()


def kill_mid_wait(parent: Parent, *, poll: int = 1) -> None:
    """Run the parent until the worker dies at its ``poll``-th check of the child after sending the trigger."""
    supervisor = parent.supervisor
    # Each check of the child asks for its task states first.
    handler = supervisor._on_GetTaskStates
    polls = {"n": 0}
    start = len(supervisor.sent)

    def dying(msg: Any) -> Any:
        if any(isinstance(sent, TriggerDagRun) for sent in supervisor.sent[start:]):
            polls["n"] += 1
            if polls["n"] == poll:
                raise WorkerKilled("GetTaskStates")
        return handler(msg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, "_on_GetTaskStates", dying)
        parent.run_until_killed()


# -- the public REST API that cancel_on_kill uses --------------------------------------------------

API_CONN_ID = "airflow_api_default"
API_LOGIN, API_PASSWORD = "admin", "s3cret-pw"


@pytest.fixture
def api() -> Iterator[FakeApi]:
    """A scripted public REST API on 127.0.0.1, with the user ``admin``."""
    server = FakeApi(users={API_LOGIN: API_PASSWORD})
    server.start()
    yield server
    server.stop()


def connect(supervisor: FakeSupervisor, api: FakeApi, *, conn_id: str = API_CONN_ID, **fields: Any) -> None:
    """Define the connection to ``api`` (an ``http`` one, as a user would), with ``fields`` overriding."""
    supervisor.connections[conn_id] = {
        "conn_type": "http",
        "host": api.base_url,
        "login": API_LOGIN,
        "password": API_PASSWORD,
        **fields,
    }
    # A clear through the REST API acts on the runs the supervisor answers for, as on one server.
    api.on_clear = supervisor.clear_failed


@pytest.fixture
def connected(supervisor: FakeSupervisor, api: FakeApi) -> None:
    """The connection to ``api`` defined under its default id, as ``cancel_on_kill`` needs it."""
    connect(supervisor, api)


# -- the shared poller's virtual time --------------------------------------------------------------


@pytest.fixture
def virtual(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualTime]:
    with time_machine.travel(POLLER_START, tick=False) as traveller:
        virtual_time = VirtualTime(traveller)
        monkeypatch.setattr(shared_poll, "pause", virtual_time.pause)
        yield virtual_time


@pytest.fixture
def stamped(supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, BaseModel]]:
    """Every message the poller sends, with the second (after START) it was sent at."""
    messages: list[tuple[float, BaseModel]] = []
    send = supervisor.send

    def stamping(msg: BaseModel) -> BaseModel | None:
        messages.append((time.time() - T0, msg))
        return send(msg)

    monkeypatch.setattr(supervisor, "send", stamping)
    return messages


@pytest.fixture(autouse=True)
def _no_poller_outlives_its_test() -> Iterator[None]:
    yield
    assert not shared_poll._POLLERS, "a poller was left registered"


def stop_mid_wait(parent: Parent, *, own_state: str, poll: int = 1) -> None:
    """
    Run the parent until the server stops it at its ``poll``-th check of the child, as Airflow does.

    The supervisor's heartbeat got a 409 (a person cleared or marked the task, whose state is now
    ``own_state``) and sent SIGTERM, whose handler calls ``on_kill``; the task goes on until the SIGKILL,
    which comes at its next check of the child here.
    """
    supervisor = parent.supervisor
    ti = parent.ti
    supervisor.add_dag(ti.dag_id, task_timeline={ti.task_id: [(0.0, own_state)]})
    supervisor.add_run(ti.dag_id, ti.run_id, seconds=3600)
    handler = supervisor._on_GetTaskStates
    polls = {"n": 0}
    start = len(supervisor.sent)

    def stopping(msg: Any) -> Any:
        if msg.dag_id != ti.dag_id and any(
            isinstance(sent, TriggerDagRun) for sent in supervisor.sent[start:]
        ):
            polls["n"] += 1
            if polls["n"] == poll:
                assert parent.operator is not None
                parent.operator.on_kill()  # the SIGTERM handler, in the middle of this request
            elif polls["n"] == poll + 1:
                raise WorkerKilled("SIGKILL after on_kill")
        return handler(msg)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, "_on_GetTaskStates", stopping)
        parent.run_until_killed()
