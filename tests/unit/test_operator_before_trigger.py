"""What the operator checks before a trigger: an existing run (skip, conflict, reset), a paused Dag, input."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.standard.operators.trigger_dagrun import DagIsPaused
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.execution_time.comms import GetDag, TriggerDagRun

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from task_sdk_ext import DagNotFound
from tests.unit.conftest import KEY

if TYPE_CHECKING:
    from tests.fake_supervisor import FakeSupervisor
    from tests.unit.conftest import MakeParent


class TestSkip:
    def test_existing_fixed_run_skips_before_anything_is_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "fixed")
        parent = make_parent(durable=True, trigger_run_id="fixed", skip_when_already_exists=True)

        with pytest.raises(AirflowSkipException, match="'child'.*'fixed'"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        assert KEY not in parent.store.values


class TestConflictThatIsNotOurs:
    @pytest.mark.parametrize("durable", [True, False])
    def test_fails_without_retrying(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, durable: bool
    ) -> None:
        supervisor.add_dag("child")
        supervisor.add_run("child", "fixed")
        parent = make_parent(durable=durable, trigger_run_id="fixed")

        with pytest.raises(AirflowFailException, match="Dag 'child' already has a run 'fixed'"):
            parent.run()

        assert supervisor.sent_of(TriggerDagRun) == []
        assert KEY not in parent.store.values


class TestReset:
    def test_existing_run_is_reset(self, supervisor: FakeSupervisor, make_parent: MakeParent) -> None:
        supervisor.add_dag("child")
        run = supervisor.add_run("child", "fixed", outcome="failed")
        parent = make_parent(wait_for_completion=True, trigger_run_id="fixed", reset_dag_run=True)

        parent.run()

        assert (run.resets, run.state()) == (1, "success")
        assert supervisor.sent_of(TriggerDagRun)[0].reset_dag_run is True


class TestPaused:
    def test_paused_dag_fails_before_anything_is_triggered(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child", is_paused=True)
        parent = make_parent(durable=True, fail_when_dag_is_paused=True)

        with pytest.raises(DagIsPaused, match="child"):
            parent.run()

        assert supervisor.kinds_sent() == ["GetDag"]
        assert supervisor.sent_of(GetDag)[0].dag_id == "child"
        assert parent.store.values == {}


class TestBadInput:
    def test_non_json_conf_is_refused_before_anything_is_sent(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True, conf={"when": object()})

        with pytest.raises(ValueError, match="conf parameter should be JSON Serializable"):
            parent.run()

        assert supervisor.sent == []
        assert parent.store.values == {}

    def test_unknown_dag_names_it_and_triggers_nothing(
        self, supervisor: FakeSupervisor, make_parent: MakeParent
    ) -> None:
        parent = make_parent(trigger_dag_id="no_such_dag", wait_for_completion=True)

        with pytest.raises(DagNotFound, match="'no_such_dag'"):
            parent.run()

        assert supervisor.runs == {}
        # The free-id check before the trigger, and no wait after it.
        assert supervisor.kinds_sent() == ["GetDagRunState", "TriggerDagRun"]

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            pytest.param({"trigger_run_id": "a/b"}, "trigger_run_id", id="run-id-with-slash"),
            pytest.param({"trigger_run_id": "x" * 251}, "trigger_run_id", id="run-id-too-long"),
            pytest.param({"trigger_dag_id": "has space"}, "trigger_dag_id", id="bad-dag-id"),
            pytest.param({"run_after": datetime(2026, 1, 1)}, "run_after", id="naive-run-after"),
        ],
    )
    def test_bad_rendered_value_is_refused_before_anything_is_sent_or_saved(
        self, supervisor: FakeSupervisor, make_parent: MakeParent, kwargs: dict[str, Any], parameter: str
    ) -> None:
        supervisor.add_dag("child")
        parent = make_parent(durable=True, wait_for_completion=True, **kwargs)

        with pytest.raises(ValueError, match=rf"Task 'trigger', parameter {parameter}: "):
            parent.run()

        assert supervisor.sent == []
        assert parent.store.values == {}

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            pytest.param({"fast_poll_window": -1}, "fast_poll_window", id="negative-fast-window"),
            pytest.param({"poke_interval": 0}, "poke_interval", id="zero-poke-interval"),
            pytest.param({"poke_interval": -5}, "poke_interval", id="negative-poke-interval"),
        ],
    )
    @pytest.mark.parametrize("deferrable", [False, True])
    def test_a_schedule_that_cannot_move_is_refused_at_construction(
        self, kwargs: dict[str, Any], parameter: str, deferrable: bool
    ) -> None:
        with pytest.raises(ValueError, match=f"Task 't': {parameter} must be"):
            TriggerDagRunOperator(task_id="t", trigger_dag_id="child", deferrable=deferrable, **kwargs)
