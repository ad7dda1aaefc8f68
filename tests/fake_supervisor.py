"""A fake supervisor: stands in for ``SUPERVISOR_COMMS`` and the API server, answering by message type."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType
from airflow.sdk.definitions._internal.types import NOTSET, ArgNotSet
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import (
    ConnectionResult,
    DagResult,
    DagRunResult,
    DagRunStateResult,
    DRCount,
    ErrorResponse,
    GetConnection,
    GetDag,
    GetDagRun,
    GetDagRunState,
    GetDRCount,
    GetPreviousDagRun,
    GetTaskStates,
    GetTICount,
    GetXCom,
    MaskSecret,
    OKResponse,
    PreviousDagRunResult,
    SetXCom,
    TaskStatesResult,
    TICount,
    TriggerDagRun,
    XComResult,
)
from airflow.sdk.serde import serialize

from tests.fake_dags import FakeDag, FakeRun, now
from tests.fake_errors import api_error, as_server_response_error, connection_refused

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from pydantic import BaseModel


@dataclass
class FakeSupervisor:
    """Stands in for ``SUPERVISOR_COMMS`` and the API server behind it; records every message sent."""

    dags: dict[str, FakeDag] = field(default_factory=dict)
    runs: dict[tuple[str, str], FakeRun] = field(default_factory=dict)
    sent: list[BaseModel] = field(default_factory=list)
    # The next N triggers create their run but the answer is lost; the client's retry then sees a 409.
    lose_trigger_responses: int = 0
    # As dag.test()'s in-process supervisor: API errors reach the task as the client's ServerResponseError.
    in_process: bool = False
    # Scripted API failures: message kind -> (which message of that kind fails, counted over ``sent``; error).
    failures: dict[str, tuple[int, AirflowRuntimeError]] = field(default_factory=dict)
    # An outage of the API server: until then (the test's clock), messages of these kinds get ``down_error``.
    down_until: datetime | None = None
    down_kinds: frozenset[str] = frozenset()
    down_error: AirflowRuntimeError | None = None
    # For each TriggerDagRun received: how many runs of its Dag were queued or running just before it.
    active_at_trigger: list[int] = field(default_factory=list)
    # Airflow connections by id, as the server's secrets chain has them: conn_type, host, login, ...
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_dag(self, dag_id: str, **kwargs: Any) -> FakeDag:
        self.dags[dag_id] = FakeDag(dag_id=dag_id, **kwargs)
        return self.dags[dag_id]

    def add_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        seconds: float = 0.0,
        outcome: str = "success",
        logical_date: datetime | None | ArgNotSet = NOTSET,
    ) -> FakeRun:
        """
        A run of ``dag_id`` created now; its logical date is its creation time unless given (``None``: none).

        Triggers made through the fake set the one the message carries instead.
        """
        # A run implies its Dag: the server answers questions about the Dag's task states too.
        self.dags.setdefault(dag_id, FakeDag(dag_id=dag_id))
        created = now()
        run = FakeRun(
            dag_id=dag_id,
            run_id=run_id,
            created_at=created,
            seconds=seconds,
            outcome=outcome,
            logical_date=created if isinstance(logical_date, ArgNotSet) else logical_date,
        )
        self.runs[(dag_id, run_id)] = run
        return run

    def fail_on(self, kind: type[BaseModel], *, nth: int, error: AirflowRuntimeError) -> None:
        """Answer the ``nth`` message of ``kind`` sent from now on with ``error`` instead (once)."""
        already = len(self.sent_of(kind))
        self.failures[kind.__name__] = (already + nth, error)

    def down(
        self, *, seconds: float, kinds: Collection[type[BaseModel]], error: AirflowRuntimeError | None = None
    ) -> None:
        """
        Take the API server down for ``seconds`` of the test's clock, for messages of ``kinds``.

        :param error: what each gets (default: no answer at all, as when nothing listens).
        """
        self.down_until = now() + timedelta(seconds=seconds)
        self.down_kinds = frozenset(kind.__name__ for kind in kinds)
        self.down_error = error

    def clear_failed(self, dag_id: str, run_id: str, *, dry_run: bool) -> list[str] | None:
        """
        Clear a run's failed tasks as ``post_clear_task_instances`` does with ``only_failed``.

        It finds the run's ``failed`` and ``upstream_failed`` task instances (none while the run has not
        failed); unless ``dry_run``, the run starts again from now with them cleared, ending as its
        ``then`` says, and queued again only when there was something to clear (``clear_task_instances``
        touches no run without task instances). ``None``: no such run (the route's 404).
        """
        run = self.runs.get((dag_id, run_id))
        if run is None:
            return None
        failed = list(run.failed_tasks) if run.state() == "failed" else []
        if failed and not dry_run:
            run.clears += 1
            run.created_at = now()
            run.outcome = run.then.pop(0) if run.then else "success"
        return failed

    def runs_of(self, dag_id: str) -> list[FakeRun]:
        return [run for (d, _), run in self.runs.items() if d == dag_id]

    def kinds_sent(self) -> list[str]:
        return [type(m).__name__ for m in self.sent]

    def sent_of(self, kind: type[BaseModel]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]

    def send(self, msg: BaseModel) -> BaseModel | None:
        self.sent.append(msg)
        kind = type(msg).__name__
        if self.down_until is not None and now() < self.down_until and kind in self.down_kinds:
            error = self.down_error or connection_refused()
            raise as_server_response_error(error) if self.in_process else error
        if (failure := self.failures.get(kind)) is not None and self.kinds_sent().count(kind) == failure[0]:
            del self.failures[kind]
            raise failure[1]
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            raise AssertionError(f"The fake supervisor has no answer for {type(msg).__name__}: {msg!r}")
        try:
            answer: BaseModel | None = handler(msg)
        except AirflowRuntimeError as e:
            if self.in_process:
                raise as_server_response_error(e) from None
            raise
        return answer

    async def asend(self, msg: BaseModel) -> BaseModel | None:
        """The async side of the channel (triggers, ``aget_connection``): answered as ``send`` answers."""
        return self.send(msg)

    def _dag(self, dag_id: str) -> FakeDag:
        if dag_id not in self.dags:
            raise api_error(404, "not_found", f"Dag with dag_id: '{dag_id}' not found")
        return self.dags[dag_id]

    def _on_TriggerDagRun(self, msg: TriggerDagRun) -> BaseModel:
        dag = self._dag(msg.dag_id)
        if dag.import_errors:
            raise api_error(400, "import_errors", f"Dag with dag_id '{dag.dag_id}' has import errors")
        if dag.denies_operator_runs:
            raise api_error(400, "denied_run_type", f"Dag with dag_id '{dag.dag_id}' denies operator runs")
        self.active_at_trigger.append(sum(run.state() == "running" for run in self.runs_of(msg.dag_id)))
        existing = self.runs.get((msg.dag_id, msg.run_id))
        if existing is not None:
            if msg.reset_dag_run:
                existing.created_at, existing.resets = now(), existing.resets + 1
                existing.seconds, existing.outcome = dag.run_seconds, dag.outcome
                return OKResponse(ok=True)
            return ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
        if msg.logical_date is not None and any(
            run.logical_date == msg.logical_date for run in self.runs_of(msg.dag_id)
        ):
            # The route finds no duplicate run id, and the insert breaks dag_run_dag_id_logical_date_key.
            # The execution API answers a unique-constraint violation with a 409
            # (api_fastapi/common/exceptions.py, _UniqueConstraintErrorHandler), and the Task SDK's client
            # takes every 409 as "already exists" (sdk/api/client.py, DagRunOperations.trigger): asked to
            # reset, it first clears the run id, which no run holds, a 404.
            if msg.reset_dag_run:
                raise api_error(404, "not_found", f"Dag run with run_id: '{msg.run_id}' not found")
            return ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
        seconds, outcome = dag.run_for(msg.conf) if dag.run_for else (dag.run_seconds, dag.outcome)
        run = self.add_run(msg.dag_id, msg.run_id, seconds=seconds, outcome=outcome)
        run.conf, run.logical_date = msg.conf, msg.logical_date
        if self.lose_trigger_responses:
            self.lose_trigger_responses -= 1
            return ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
        return OKResponse(ok=True)

    def _on_GetDagRunState(self, msg: GetDagRunState) -> BaseModel:
        run = self.runs.get((msg.dag_id, msg.run_id))
        if run is None:
            raise api_error(
                404,
                "not_found",
                f"Dag run with dag_id '{msg.dag_id}' and run_id '{msg.run_id}' was not found",
            )
        return DagRunStateResult(state=DagRunState(run.state()))

    def _on_GetDRCount(self, msg: GetDRCount) -> BaseModel:
        if msg.logical_dates:
            raise AssertionError(f"The fake supervisor counts by run id, not by logical date: {msg!r}")
        runs = self.runs_of(msg.dag_id)
        # As the execution API's count route: an empty or missing list does not filter at all.
        if msg.run_ids:
            wanted = set(msg.run_ids)
            runs = [run for run in runs if run.run_id in wanted]
        if msg.states:
            runs = [run for run in runs if run.state() in msg.states]
        return DRCount(count=len(runs))

    def _on_GetTICount(self, msg: GetTICount) -> BaseModel:
        # As the execution API's count route: a run's task instances, filtered by task id and state
        # ("null" for an instance without one).
        if msg.logical_dates or msg.task_group_id or msg.map_index is not None:
            raise AssertionError(f"The fake supervisor counts by run id, task id and state: {msg!r}")
        # An unknown Dag is no error to the route: its query counts nothing.
        if (dag := self.dags.get(msg.dag_id)) is None:
            return TICount(count=0)
        wanted_states = {None if state == "null" else state for state in msg.states or []}
        total = 0
        for run in self.runs_of(msg.dag_id):
            if msg.run_ids and run.run_id not in msg.run_ids:
                continue
            for key in dag.task_keys():
                if msg.task_ids and key not in msg.task_ids and key.rpartition("_")[0] not in msg.task_ids:
                    continue
                if msg.states and run.task_state(dag, key) not in wanted_states:
                    continue
                total += 1
        return TICount(count=total)

    def _on_GetPreviousDagRun(self, msg: GetPreviousDagRun) -> BaseModel:
        # As the route's query (get_previous_dagrun): the run with the latest logical date before the one
        # asked for, in the state asked for if any. A run without a logical date never counts.
        earlier = [
            run
            for run in self.runs_of(msg.dag_id)
            if run.logical_date is not None
            and run.logical_date < msg.logical_date
            and (msg.state is None or run.state() == msg.state)
        ]
        if not earlier:
            return PreviousDagRunResult(dag_run=None)
        run = max(earlier, key=lambda r: r.logical_date or r.created_at)
        return PreviousDagRunResult(dag_run=_dag_run_model(run))

    def _on_GetDagRun(self, msg: GetDagRun) -> BaseModel:
        # As the route (get_dag_run): the run by Dag and run id, or a 404 naming both.
        return DagRunResult.from_api_response(_dag_run_model(self._run(msg.dag_id, msg.run_id)))

    def _run(self, dag_id: str, run_id: str) -> FakeRun:
        if (run := self.runs.get((dag_id, run_id))) is None:
            raise api_error(
                404, "not_found", f"Dag run with dag_id '{dag_id}' and run_id '{run_id}' was not found"
            )
        return run

    def _on_GetTaskStates(self, msg: GetTaskStates) -> BaseModel:
        # As the route's query (get_task_instance_states): the task instances of the Dag's runs asked
        # for, grouped by run. An unknown Dag or run is no error, only absent: a run appears only with a
        # task instance that matched.
        if msg.task_group_id or msg.logical_dates or msg.map_index is not None:
            raise AssertionError(f"The fake supervisor reads task states by run id and task id: {msg!r}")
        answer: dict[str, dict[str, str | None]] = {}
        if (dag := self.dags.get(msg.dag_id)) is None:
            return TaskStatesResult(task_states=answer)
        wanted = set(msg.task_ids or [])
        for run in self.runs_of(msg.dag_id):
            if msg.run_ids and run.run_id not in msg.run_ids:
                continue
            states = {
                key: run.task_state(dag, key)
                for key in dag.task_keys()
                if not wanted or key in wanted or key.rpartition("_")[0] in wanted
            }
            if states:
                answer[run.run_id] = states
        return TaskStatesResult(task_states=answer)

    def _on_GetXCom(self, msg: GetXCom) -> BaseModel:
        # The route answers 404 for an XCom it does not have (whatever the Dag and run), which the
        # supervisor's client turns into a value of None: never an error to the task.
        dag, run = self.dags.get(msg.dag_id), self.runs.get((msg.dag_id, msg.run_id))
        if dag is None or run is None:
            return XComResult(key=msg.key, value=None)
        mapped = msg.task_id in dag.mapped_returns and msg.map_index is not None and msg.map_index >= 0
        key = f"{msg.task_id}_{msg.map_index}" if mapped else msg.task_id
        value = None
        if msg.key == "return_value" and key in dag.task_keys() and run.task_state(dag, key) == "success":
            value = (
                dag.mapped_returns[msg.task_id][int(msg.map_index or 0)]
                if mapped
                else dag.returns.get(msg.task_id)
            )
        # As the server: the stored (serialized) value, and None for an XCom nobody pushed.
        return XComResult(key=msg.key, value=None if value is None else serialize(value))

    def _on_SetXCom(self, msg: SetXCom) -> None:
        # Kept in self.sent; as the server's, the answer carries nothing.
        return None

    def _on_GetConnection(self, msg: GetConnection) -> BaseModel:
        # As the supervisor forwards the execution API's 404: an error answer, which the task's secrets
        # backend takes for "not here" (it then raises AirflowNotFoundException).
        if (values := self.connections.get(msg.conn_id)) is None:
            return ErrorResponse(error=ErrorType.CONNECTION_NOT_FOUND, detail={"conn_id": msg.conn_id})
        fields = {"host": None, "schema": None, "login": None, "password": None, "port": None, "extra": None}
        return ConnectionResult.model_validate({**fields, **values, "conn_id": msg.conn_id})

    def _on_MaskSecret(self, msg: MaskSecret) -> None:
        # Kept in self.sent; the supervisor only adds it to its own masker.
        return None

    def _on_GetDag(self, msg: GetDag) -> BaseModel:
        dag = self._dag(msg.dag_id)
        return DagResult(
            dag_id=dag.dag_id,
            is_paused=dag.is_paused,
            bundle_name="dags-folder",
            bundle_version=None,
            relative_fileloc=f"{dag.dag_id}.py",
            owners="airflow",
            tags=[],
            next_dagrun=None,
        )


def _dag_run_model(run: FakeRun) -> DagRun:
    """The execution API's ``DagRun`` of ``run``: started when created, an end date only once it ended."""
    state = run.state()
    return DagRun(
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=run.logical_date,
        data_interval_start=None,
        data_interval_end=None,
        run_after=run.created_at,
        start_date=run.created_at,
        end_date=None if state == "running" else run.created_at + timedelta(seconds=run.seconds),
        run_type=DagRunType.MANUAL,
        state=DagRunState(state),
        conf=run.conf,
        consumed_asset_events=[],
        partition_key=None,
    )
