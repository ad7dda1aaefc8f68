"""One ``TriggerDagRunsOperator`` task instance across its tries and resumes, on the fake supervisor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from airflow.models.trigger import Trigger
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import TaskDeferred
from airflow.serialization.decoders import smart_decode_trigger_kwargs

from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from standard_ext.triggers.dag_runs import DagRunsTrigger
from tests.fake_task import FakeTaskInstance, FakeTaskStateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.triggers.base import TriggerEvent

    from tests.fake_supervisor import FakeSupervisor

CHILD = "child"
RETRY_DELAY_SECONDS = 1.0


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the task catches it."""


def confs(n: int) -> list[dict[str, Any]]:
    return [{"item": i} for i in range(n)]


@dataclass
class FanOutParent:
    """The same task_state_store across tries; each try or resume builds a fresh operator, as Airflow does."""

    supervisor: FakeSupervisor
    kwargs: dict[str, Any]
    shift: Callable[[float], None]
    ti: FakeTaskInstance = field(default_factory=lambda: FakeTaskInstance(retries=2, max_tries=2))
    store: FakeTaskStateStore = field(default_factory=FakeTaskStateStore)
    operator: TriggerDagRunsOperator | None = None

    def new_operator(self) -> TriggerDagRunsOperator:
        self.operator = TriggerDagRunsOperator(task_id=self.ti.task_id, **self.kwargs)
        return self.operator

    def context(self) -> Any:
        return {
            "ti": self.ti,
            "task_instance": self.ti,
            "task_state_store": self.store,
            "dag_run": self.ti.dag_run,
        }

    def run(self) -> Any:
        return self.new_operator().execute(self.context())

    def resume(self, deferred: TaskDeferred, event: Any) -> Any:
        return getattr(self.new_operator(), deferred.method_name)(self.context(), event=event)

    def retry(self) -> None:
        self.shift(RETRY_DELAY_SECONDS)
        self.ti.retry()

    def clear(self) -> None:
        self.shift(RETRY_DELAY_SECONDS)
        self.ti.clear()

    def kill_at(self, message: str, *, nth: int) -> None:
        """Run until the worker dies sending its ``nth`` message of this kind (unseen by the server)."""
        handler = getattr(self.supervisor, f"_on_{message}")
        calls = {"n": 0}

        def dying(msg: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == nth:
                raise WorkerKilled(message)
            return handler(msg)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(self.supervisor, f"_on_{message}", dying)
            with pytest.raises(WorkerKilled):
                self.run()


def rebuilt(trigger: DagRunsTrigger) -> DagRunsTrigger:
    """The trigger as a (restarted) triggerer rebuilds it from its database row."""
    row = Trigger.from_object(trigger)
    kwargs = {key: smart_decode_trigger_kwargs(value) for key, value in row.kwargs.items()}  # type: ignore[no-untyped-call]
    instance = import_string(row.classpath)(**kwargs)
    assert isinstance(instance, DagRunsTrigger)
    return instance


async def all_events(trigger: DagRunsTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


@dataclass
class Deferred:
    """What a deferrable fan-out did: its result, and each trigger it deferred on."""

    result: Any
    triggers: list[DagRunsTrigger]

    @property
    def resumes(self) -> int:
        return len(self.triggers)


def run_deferred(parent: FanOutParent, *, start: Callable[[], Any] | None = None) -> Deferred:
    """Run the task as the triggerer and the scheduler would: each deferral's trigger (rebuilt), then the resume."""
    triggers: list[DagRunsTrigger] = []
    step = start or parent.run
    while True:
        try:
            return Deferred(result=step(), triggers=triggers)
        except TaskDeferred as deferral:
            deferred = deferral
        assert isinstance(deferred.trigger, DagRunsTrigger)
        trigger = rebuilt(deferred.trigger)
        triggers.append(trigger)
        (event,) = asyncio.run(all_events(trigger))

        def step(deferred: TaskDeferred = deferred, event: TriggerEvent = event) -> Any:
            return parent.resume(deferred, event.payload)
