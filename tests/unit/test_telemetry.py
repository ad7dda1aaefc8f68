from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowException
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from standard_ext.durable import telemetry
from tests.unit.conftest import kill_mid_wait, kill_run

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import Clock, MakeParent


class RecordingStats:
    def __init__(self) -> None:
        self.counts: list[tuple[str, dict[str, str]]] = []

    def incr(self, stat: str, *, tags: dict[str, str]) -> None:
        self.counts.append((stat, tags))


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> RecordingStats:
    recorder = RecordingStats()
    monkeypatch.setattr(telemetry, "stats", recorder)
    return recorder


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer("test"))
    return exporter


class TestMixinMetrics:
    def test_first_try_counts_a_fresh_submit(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats
    ) -> None:
        supervisor.add_dag("child")

        make_parent(durable=True, wait_for_completion=True).run()

        assert metrics.counts == [("resumable_job.fresh_submit", {"operator": "TriggerDagRunOperator"})]

    def test_reconnect_counts_the_attempt_and_its_success(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(durable=True, wait_for_completion=True)
        parent.ti.stats_tags["team_name"] = "data"
        kill_mid_wait(parent)
        metrics.counts.clear()

        parent.retry()
        parent.run()

        tags = {"operator": "TriggerDagRunOperator", "team_name": "data"}
        assert metrics.counts == [
            ("resumable_job.reconnect_attempt", tags),
            ("resumable_job.reconnect_success", tags),
        ]

    def test_a_finished_saved_run_counts_already_succeeded(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats, clock: Clock
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(wait_for_completion=True)
        kill_mid_wait(parent)
        clock.traveller.shift(60)  # the child ends before the retry starts
        metrics.counts.clear()

        parent.retry()
        parent.run()

        assert [stat for stat, _ in metrics.counts] == [
            "resumable_job.reconnect_attempt",
            "resumable_job.already_succeeded",
        ]

    def test_a_failed_saved_run_counts_a_terminal_resubmit(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats
    ) -> None:
        supervisor.add_dag("child", run_seconds=5, outcome="failed")
        parent = make_parent(wait_for_completion=True)
        with pytest.raises(AirflowException, match="ended in failed state"):
            parent.run()
        supervisor.dags["child"].outcome = "success"
        metrics.counts.clear()

        parent.retry()
        parent.run()

        assert [stat for stat, _ in metrics.counts] == [
            "resumable_job.reconnect_attempt",
            "resumable_job.terminal_resubmit",
        ]

    def test_a_saved_run_never_created_counts_a_saved_id_submit(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(wait_for_completion=True)
        kill_run(parent, "TriggerDagRun")
        metrics.counts.clear()

        parent.retry()
        parent.run()

        assert [stat for stat, _ in metrics.counts] == [
            "resumable_job.reconnect_attempt",
            "resumable_job.saved_id_submit",
        ]

    def test_plain_mode_counts_nothing(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, metrics: RecordingStats
    ) -> None:
        supervisor.add_dag("child")

        make_parent(wait_for_completion=True, durable=False).run()

        assert metrics.counts == []


class TestDecisionSpan:
    def test_describes_the_decision_with_the_mixins_attributes(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, spans: InMemorySpanExporter
    ) -> None:
        supervisor.add_dag("child", run_seconds=30)
        parent = make_parent(durable=True, wait_for_completion=True)
        kill_mid_wait(parent)

        parent.retry()
        parent.run()

        first, second = spans.get_finished_spans()
        assert first.name == second.name == "resumable_job.resume_decision"
        assert first.attributes is not None
        assert second.attributes is not None
        assert first.attributes["resumable.decision"] == "fresh_submit"
        (run,) = supervisor.runs_of("child")
        assert dict(second.attributes) == {
            "operator": "TriggerDagRunOperator",
            "resumable.external_id_key": "triggered_dag_run",
            "resumable.decision": "reconnect",
            "resumable.external_id": run.run_id,
            "resumable.prior_status": "running",
        }
