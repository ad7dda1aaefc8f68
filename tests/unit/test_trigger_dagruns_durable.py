"""Durable fan-outs across tries: write-ahead, reconnect, redrive only the failed items, re-run on clear."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.comms import GetDRCount, TriggerDagRun

from standard_ext.fanout.record import RECORD_KEY
from tests.unit.fanout_parent import CHILD, FanOutParent, confs

if TYPE_CHECKING:
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


def fail_first_run_of(items: set[int], *, seconds: float = 3) -> Any:
    """Each item in ``items`` fails its first run only (its redrive succeeds)."""
    seen: set[int] = set()

    def run_for(conf: dict[str, Any] | None) -> tuple[float, str]:
        item = int((conf or {})["item"])
        first = item in items and item not in seen
        seen.add(item)
        return seconds, "failed" if first else "success"

    return run_for


def triggered_ids(supervisor: FakeSupervisor) -> list[str]:
    return [msg.run_id for msg in supervisor.sent_of(TriggerDagRun)]


class TestRedrive:
    def test_a_retry_redrives_only_the_failed_item_under_a_new_run_id(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({2}), returns={"score": 1})
        parent = make(supervisor, clock, confs=confs(4), result_task_ids=["score"])
        with pytest.raises(AirflowException, match="items #2"):
            parent.run()
        first_ids = list(parent.store.values[RECORD_KEY]["run_ids"])
        parent.retry()

        with structlog.testing.capture_logs() as logs:
            result = parent.run()

        assert len(supervisor.runs_of(CHILD)) == 5  # one extra run: the redrive
        redrive = triggered_ids(supervisor)[4]
        assert redrive not in first_ids
        assert supervisor.sent_of(TriggerDagRun)[4].conf == {"item": 2}
        assert parent.store.values[RECORD_KEY]["run_ids"] == [*first_ids[:2], redrive, first_ids[3]]
        # The kept items' results are read again; the redriven one's from its new run.
        assert result == [{"score": 1}] * 4
        assert parent.ti.xcoms["trigger_run_ids"] == parent.store.values[RECORD_KEY]["run_ids"]
        carried = next(line for line in logs if line["event"].startswith("Carrying on"))
        assert (carried["keep"], carried["redrive"]) == (3, 1)

    def test_the_new_run_id_is_saved_before_its_trigger(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({0}))
        parent = make(supervisor, clock, confs=confs(2))
        with pytest.raises(AirflowException):
            parent.run()
        parent.retry()

        parent.kill_at("TriggerDagRun", nth=1)

        saved = parent.store.values[RECORD_KEY]["run_ids"]
        assert saved[0] != triggered_ids(supervisor)[0]
        assert len(supervisor.runs_of(CHILD)) == 2  # the redrive's trigger never arrived
        parent.retry()
        parent.run()
        assert triggered_ids(supervisor)[-1] == saved[0]  # triggered under the id saved for it
        assert len(supervisor.runs_of(CHILD)) == 3


class TestCrash:
    def test_killed_between_two_triggers_the_retry_triggers_the_rest_under_their_saved_ids(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=30)
        parent = make(supervisor, clock, confs=confs(5))

        parent.kill_at("TriggerDagRun", nth=3)
        saved = list(parent.store.values[RECORD_KEY]["run_ids"])
        parent.retry()
        result = parent.run()

        assert result == saved
        assert sorted(run.run_id for run in supervisor.runs_of(CHILD)) == sorted(saved)

    def test_killed_mid_wait_the_retry_reconnects_without_triggering(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=60)
        parent = make(supervisor, clock, confs=confs(4), max_active=2)

        parent.kill_at("GetDRCount", nth=3)
        assert len(supervisor.runs_of(CHILD)) == 2
        parent.retry()
        sent_before = len(supervisor.sent_of(TriggerDagRun))
        with structlog.testing.capture_logs() as logs:
            result = parent.run()

        assert result == parent.store.values[RECORD_KEY]["run_ids"]
        # Reconnected to the two active runs, then started the two left: four runs, never more.
        assert len(supervisor.runs_of(CHILD)) == 4
        assert len(supervisor.sent_of(TriggerDagRun)) - sent_before == 2
        carried = next(line for line in logs if line["event"].startswith("Carrying on"))
        assert (carried["reconnect"], carried["trigger_saved"]) == (2, 2)
        assert max(supervisor.active_at_trigger) <= 1

    def test_a_lost_answer_then_already_exists_on_a_planned_id_is_ours(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        supervisor.lose_trigger_responses = 1
        parent = make(supervisor, clock, confs=confs(2))

        result = parent.run()

        assert len(supervisor.runs_of(CHILD)) == 2
        assert result == parent.store.values[RECORD_KEY]["run_ids"]

    def test_a_retry_asks_about_the_saved_runs_in_batches(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        parent = make(supervisor, clock, confs=confs(120))
        parent.run()
        # A retry after success only happens through a clear that neither raised max_tries nor the
        # run's clear_number (a reset off): it finds every run succeeded, in batches.
        parent.store.values[RECORD_KEY].pop("ended")
        parent.retry()
        sent_before = len(supervisor.sent)

        parent.run()

        asked = supervisor.sent[sent_before:]
        assert not [msg for msg in asked if isinstance(msg, TriggerDagRun)]
        # Per chunk of at most 100 runs: the active count, the success count.
        assert [type(msg).__name__ for msg in asked].count("GetDRCount") == 4
        assert all(len(msg.run_ids or []) <= 100 for msg in asked if isinstance(msg, GetDRCount))


class TestClear:
    def test_a_clear_after_success_re_runs_every_item(self, supervisor: FakeSupervisor, clock: Clock) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        parent = make(supervisor, clock, confs=confs(3))
        first = parent.run()
        parent.clear()

        with structlog.testing.capture_logs() as logs:
            second = parent.run()

        assert len(supervisor.runs_of(CHILD)) == 6
        assert not set(first) & set(second)
        assert "The task was cleared; triggering every item anew" in [line["event"] for line in logs]

    def test_a_clear_with_retries_lowered_still_re_runs_thanks_to_the_ended_mark(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_seconds=2)
        parent = make(supervisor, clock, confs=confs(2))
        parent.run()
        assert parent.store.values[RECORD_KEY]["ended"] == "success"
        # retries lowered so that the clear leaves max_tries as it was; clear_number still moves.
        parent.ti.retries = parent.ti.max_tries - parent.ti.try_number
        parent.clear()

        parent.run()

        assert len(supervisor.runs_of(CHILD)) == 4


class TestNotDurable:
    def test_every_try_triggers_every_item_anew_and_nothing_is_saved(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        supervisor.add_dag(CHILD, run_for=fail_first_run_of({0}))
        parent = make(supervisor, clock, confs=confs(2), durable=False)
        with pytest.raises(AirflowException):
            parent.run()
        parent.retry()

        parent.run()

        assert len(supervisor.runs_of(CHILD)) == 4
        assert parent.store.writes == []


class TestStop:
    def test_a_person_stopping_the_try_marks_the_record_so_the_next_try_re_runs(
        self, supervisor: FakeSupervisor, clock: Clock
    ) -> None:
        ti_dag = "parent"
        supervisor.add_dag(ti_dag, task_timeline={"trigger": [(0.0, "failed")]})
        supervisor.add_run(ti_dag, "manual__parent", seconds=3600)
        supervisor.add_dag(CHILD, run_seconds=600)
        parent = make(supervisor, clock, confs=confs(2))
        counts = {"n": 0}
        count = supervisor._on_GetDRCount

        def stopping(msg: Any) -> Any:
            counts["n"] += 1
            if counts["n"] == 2:
                assert parent.operator is not None
                parent.operator.on_kill()
            elif counts["n"] == 4:
                raise KeyboardInterrupt("SIGKILL")
            return count(msg)

        supervisor._on_GetDRCount = stopping  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            parent.run()

        assert parent.store.values[RECORD_KEY]["ended"] == "stopped"
