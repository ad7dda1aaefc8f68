"""``TriggerDagRunsOperator`` in the synchronous mode, on the fake supervisor, in virtual time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.comms import GetDagRunState, GetDRCount, TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from standard_ext.links import TriggeredDagRunsLink
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from tests.unit.fanout_parent import CHILD, FanOutParent, confs

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from pydantic import BaseModel

    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock


def make(supervisor: FakeSupervisor, clock: Clock, **kwargs: Any) -> FanOutParent:
    values: dict[str, Any] = {
        "trigger_dag_id": CHILD,
        "wait_for_completion": True,
        "poke_interval": 10,
        **kwargs,
    }
    return FanOutParent(supervisor, values, clock.traveller.shift)


def seconds_by_item(seconds: Sequence[float], *, failing: Collection[int] = ()) -> Any:
    def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
        item = int((conf or {})["item"])
        return seconds[item], "failed" if item in failing else "success"

    return run_for


class TestResults:
    def test_one_run_id_per_item_in_item_order_and_the_xcoms(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        # The later items end first: the order is the items', not the ends'.
        supervisor.add_dag(CHILD, run_for=seconds_by_item([9, 7, 5, 3, 1]))
        parent = make(supervisor, clock, confs=confs(5))

        result = parent.run()

        triggered = supervisor.sent_of(TriggerDagRun)
        assert [msg.conf for msg in triggered] == confs(5)
        assert result == [msg.run_id for msg in triggered]
        assert parent.ti.xcoms["trigger_run_ids"] == result
        assert parent.ti.xcoms["trigger_dag_id"] == CHILD
        assert all(run.state() == "success" for run in supervisor.runs_of(CHILD))

    def test_run_ids_are_generated_as_airflow_names_manual_runs_and_distinct(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=1)

        result = make(supervisor, clock, confs=confs(50)).run()

        assert len(set(result)) == 50
        assert all(run_id.startswith("manual__2026-11-21T12:00:00") for run_id in result)

    def test_with_result_task_ids_each_entry_is_that_items_result(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2, returns={"score": 0.5})

        result = make(supervisor, clock, confs=confs(3), result_task_ids=["score"]).run()

        assert result == [{"score": 0.5}] * 3

    def test_without_waiting_it_triggers_everything_and_returns_the_run_ids(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=60)

        result = make(supervisor, clock, confs=confs(4), wait_for_completion=False).run()

        assert result == [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]
        assert not supervisor.sent_of(GetDRCount)
        assert clock.waits == []

    def test_an_empty_list_sends_nothing_and_returns_an_empty_list(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        parent = make(supervisor, clock, confs=[])
        with structlog.testing.capture_logs() as logs:
            assert parent.run() == []
        assert supervisor.sent == []
        assert parent.store.writes == []
        assert "Nothing to trigger: confs is an empty list" in [line["event"] for line in logs]


class TestWindow:
    def test_never_more_than_max_active_runs_and_a_new_item_starts_as_one_ends(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([3, 8, 13, 2, 6, 4, 9, 1, 5, 7]))

        with structlog.testing.capture_logs() as logs:
            make(supervisor, clock, confs=confs(10), max_active=3).run()

        # Active runs of the child just before each trigger: never a full window.
        assert max(supervisor.active_at_trigger) == 2
        assert len(supervisor.active_at_trigger) == 10
        # Sliding: whenever an item waits to start, the window is full again at once (no batching).
        progress = [line for line in logs if line["event"] == "Fan-out progress"]
        assert all(line["active"] == 3 for line in progress if line["not_started"])
        assert len([line for line in progress if line["not_started"]]) >= 6

    def test_checks_are_one_count_per_100_active_runs_and_a_state_read_only_for_ended_ones(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([30] * 149 + [10]))

        make(supervisor, clock, confs=confs(150)).run()

        counts = supervisor.sent_of(GetDRCount)
        assert max(len(msg.run_ids) for msg in counts) == 100
        # The ended runs are confirmed by a count of the successes among them, one per end: the one
        # early run, then the 149 (100 and 49, a count per chunk). No run's state is read one by one.
        confirming = [msg for msg in counts if msg.states == ["success"]]
        assert [len(msg.run_ids or []) for msg in confirming] == [1, 100, 49]
        assert supervisor.sent_of(GetDagRunState) == []


class TestFailures:
    def test_a_tolerated_failure_is_none_in_the_result(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([2, 3, 4], failing={1}))

        result = make(supervisor, clock, confs=confs(3), tolerated_failures=1).run()

        assert result[1] is None
        assert None not in (result[0], result[2])

    def test_too_many_failures_fail_after_the_started_items_end_naming_them(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([2, 20, 3, 4, 5], failing={0}))
        parent = make(supervisor, clock, confs=confs(5), max_active=2)

        with pytest.raises(AirflowException) as info:
            parent.run()

        first = supervisor.sent_of(TriggerDagRun)[0].run_id
        assert f"items #0 {first!r}" in str(info.value)
        assert "3 items not started" in str(info.value)
        # Item 1 was waited for (20 s), items 2.. never started.
        assert len(supervisor.sent_of(TriggerDagRun)) == 2
        assert clock.elapsed() >= 20
        assert "left running" not in str(info.value)

    def test_fail_fast_fails_at_once_naming_the_items_left_running(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([2, 600, 600], failing={0}))
        parent = make(supervisor, clock, confs=confs(3), fail_fast=True)

        with pytest.raises(AirflowException, match="left running: #1 .*, #2 ") as info:
            parent.run()

        assert type(info.value) is AirflowException  # retries apply
        assert clock.elapsed() < 600
        assert [run.state() for run in supervisor.runs_of(CHILD)] == ["failed", "running", "running"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"confs": "{{ ti.xcom_pull('x') }}"}, "confs must be a list"),
            ({"confs": [{"a": 1}, [1]]}, r"confs\[1\]"),
            ({"confs": [{}] * 1001}, "more than the 1000"),
            ({"confs": confs(2), "result_task_ids": "score"}, "result_task_ids must be a list"),
            ({"confs": confs(2), "trigger_dag_id": "bad id!"}, "parameter trigger_dag_id"),
        ],
    )
    def test_rendered_input_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, clock: Clock, kwargs: dict[str, Any], match: str
    ) -> None:
        supervisor.add_dag(CHILD)
        parent = make(supervisor, clock, **kwargs)

        with pytest.raises(ValueError, match=match):
            parent.run()

        assert supervisor.sent == []
        assert parent.store.writes == []

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_active": 0}, "max_active"),
            ({"tolerated_failures": -1}, "tolerated_failures"),
            ({"wait_for_completion": False, "max_active": 3}, "max_active needs wait_for_completion"),
            ({"wait_for_completion": False, "fail_fast": True}, "fail_fast needs"),
            ({"poke_interval": 0}, "poke_interval"),
        ],
    )
    def test_constructor_values_are_refused_when_the_operator_is_built(
        self, kwargs: dict[str, Any], match: str
    ) -> None:
        values: dict[str, Any] = {"trigger_dag_id": CHILD, "confs": [], "wait_for_completion": True, **kwargs}
        with pytest.raises(ValueError, match=f"Task 't'.*{match}"):
            TriggerDagRunsOperator(task_id="t", **values)


class TestProgress:
    def test_one_line_per_change_with_every_count(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_for=seconds_by_item([2, 30, 4], failing={0}))
        parent = make(supervisor, clock, confs=confs(3), max_active=2, tolerated_failures=1)

        with structlog.testing.capture_logs() as logs:
            parent.run()

        lines = [
            {key: line[key] for key in ("done", "succeeded", "failed", "active", "not_started")}
            for line in logs
            if line["event"] == "Fan-out progress"
        ]
        assert lines == [
            {"done": 0, "succeeded": 0, "failed": 0, "active": 2, "not_started": 1},
            {"done": 1, "succeeded": 0, "failed": 1, "active": 2, "not_started": 0},
            {"done": 2, "succeeded": 1, "failed": 1, "active": 1, "not_started": 0},
            {"done": 3, "succeeded": 2, "failed": 1, "active": 0, "not_started": 0},
        ]


class TestLink:
    def test_leads_to_the_triggered_dags_runs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from airflow.providers.common.compat.sdk import XCom

        monkeypatch.setattr(XCom, "get_value", staticmethod(lambda **kwargs: "score"))
        operator = TriggerDagRunsOperator(task_id="t", trigger_dag_id="{{ x }}", confs=[])

        link = TriggeredDagRunsLink().get_link(operator, ti_key=None)  # type: ignore[arg-type]

        assert link.endswith("/dags/score/runs")
        assert TriggeredDagRunsLink.name == "Triggered DAG"
        assert any(isinstance(link, TriggeredDagRunsLink) for link in operator.operator_extra_links)


def test_the_durable_record_is_written_once_before_any_trigger(
    supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor.add_dag(CHILD, run_seconds=2)
    parent = make(supervisor, clock, confs=confs(3))
    order: list[str] = []
    store_set, send = parent.store.set, supervisor.send

    def saving(key: str, value: Any, **kwargs: Any) -> None:
        order.append(f"save {len(value['run_ids'])}")
        store_set(key, value, **kwargs)

    def sending(msg: BaseModel) -> BaseModel | None:
        order.append(type(msg).__name__)
        return send(msg)

    monkeypatch.setattr(parent.store, "set", saving)
    monkeypatch.setattr(supervisor, "send", sending)

    result = parent.run()

    assert order.index("save 3") < order.index("TriggerDagRun")
    assert parent.store.values[RECORD_KEY]["run_ids"] == result
    assert parent.store.values[RECORD_KEY]["ended"] == "success"


class TestChecksFollowTheChildDag:
    def test_runs_that_waited_for_slots_are_seen_soon_after_they_end(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        # The child Dag's last success took 10 s; this time its runs wait 90 s for a slot, then work 10 s.
        supervisor.add_run(CHILD, "earlier", seconds=10)
        clock.traveller.shift(70)
        supervisor.dags[CHILD].run_seconds = 100
        started = clock.elapsed()

        make(supervisor, clock, confs=confs(4)).run()

        # Checked every quarter of that length at most while they run: seen within 2.5 s of their end.
        # Backing off from their start instead, the checks would have reached 60 s apart (seen at 127 s).
        assert clock.elapsed() - started - 100 <= 10 / 4 + 1e-6


class TestOpenLineage:
    def test_each_conf_gets_the_parents_openlineage_info_through_the_stock_helper(
        self, supervisor: FakeSupervisor, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.providers.standard.utils import openlineage as stock_module

        def inject(*, dr_conf: dict[str, Any] | None, ti: Any) -> dict[str, Any]:
            return {**(dr_conf or {}), "openlineage": {"parentRunId": "abc"}}

        monkeypatch.setattr(stock_module, "safe_inject_openlineage_properties_into_dagrun_conf", inject)
        supervisor.add_dag(CHILD, run_seconds=1)

        make(supervisor, clock, confs=confs(2)).run()

        assert [msg.conf for msg in supervisor.sent_of(TriggerDagRun)] == [
            {"item": 0, "openlineage": {"parentRunId": "abc"}},
            {"item": 1, "openlineage": {"parentRunId": "abc"}},
        ]

    def test_off_it_sends_the_confs_as_they_are(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_seconds=1)

        make(supervisor, clock, confs=confs(2), openlineage_inject_parent_info=False).run()

        assert [msg.conf for msg in supervisor.sent_of(TriggerDagRun)] == confs(2)
