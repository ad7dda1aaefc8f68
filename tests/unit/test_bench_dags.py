"""The benchmark's Dags parse, carry the ids the bench triggers, and leave the operators at their defaults."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)

from bench.dags.bench import (
    END_FROM_TRIGGER,
    FAN_OUT_CHILD,
    FAN_OUTS,
    LENGTHS,
    PARENT_TASK,
    PAUSED_TARGET,
    VARIANTS,
    VARYING_VARIANTS,
    child_dag_id,
    parent_dag_id,
    varying_child_dag_id,
    varying_parent_dag_id,
)
from bench.durable_cost import DAGS as DURABLE_COST_DAGS
from bench.model import END_FROM_TRIGGER as MODEL_END_FROM_TRIGGER
from bench.model import PATHS, is_deferrable, operators_of
from bench.schedule_count import default_of
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.e2e.harness import BENCH_DAGS_FOLDER


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=BENCH_DAGS_FOLDER, safe_mode=False)


def test_every_dag_the_bench_triggers_is_there(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    expected = {
        *(child_dag_id(length, variant) for length in LENGTHS for variant in VARIANTS),
        *(parent_dag_id(variant) for variant in VARIANTS),
        *DURABLE_COST_DAGS.values(),
        *FAN_OUTS.values(),
        *(varying_child_dag_id(variant) for variant in VARYING_VARIANTS),
        *(varying_parent_dag_id(variant) for variant in VARYING_VARIANTS),
        FAN_OUT_CHILD,
        PAUSED_TARGET,
    }
    assert set(dagbag.dag_ids) == expected


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_latency_parents_run_at_their_operators_defaults(dagbag: DagBag, variant: str) -> None:
    operator, path = VARIANTS[variant]
    task = dagbag.dags[parent_dag_id(variant)].get_task(PARENT_TASK)

    assert isinstance(task, StockTriggerDagRunOperator)
    assert isinstance(task, TriggerDagRunOperator) == (operator == "ours")
    assert task.deferrable == is_deferrable(path)
    assert task.poke_interval == default_of(StockTriggerDagRunOperator, "poke_interval")
    assert task.retries == 0
    if isinstance(task, TriggerDagRunOperator):
        assert task.fast_poll_window == default_of(TriggerDagRunOperator, "fast_poll_window")
        # Only its own path sets end_from_trigger; plain deferrable keeps the default (False).
        assert task.end_from_trigger == (path == END_FROM_TRIGGER)


def test_there_is_one_latency_variant_per_operator_and_path_it_has() -> None:
    # The Dag file spells the path out (the Dag processor cannot import bench.model): the same label.
    assert END_FROM_TRIGGER == MODEL_END_FROM_TRIGGER
    assert sorted(VARIANTS.values()) == sorted((op, path) for path in PATHS for op in operators_of(path))
    assert VARIANTS["ours_deferrable_end_from_trigger"] == ("ours", END_FROM_TRIGGER)
    assert ("stock", END_FROM_TRIGGER) not in VARIANTS.values()


def test_the_end_from_trigger_variant_has_its_own_parent_and_children(dagbag: DagBag) -> None:
    variant = "ours_deferrable_end_from_trigger"
    task = dagbag.dags[parent_dag_id(variant)].get_task(PARENT_TASK)

    assert isinstance(task, TriggerDagRunOperator)
    assert (task.deferrable, task.end_from_trigger) == (True, True)
    assert task.trigger_dag_id == "bench_child_{{ params.length }}s_ours_deferrable_end_from_trigger"
    assert {child_dag_id(length, variant) for length in LENGTHS} <= set(dagbag.dag_ids)


def test_the_paused_target_never_runs_what_it_is_sent(dagbag: DagBag) -> None:
    assert dagbag.dags[PAUSED_TARGET].is_paused_upon_creation is True


def test_the_varying_case_has_stock_and_ours_each_sync_and_deferrable_at_its_defaults() -> None:
    assert sorted(VARIANTS[v] for v in VARYING_VARIANTS) == [
        ("ours", "deferrable"),
        ("ours", "sync"),
        ("stock", "deferrable"),
        ("stock", "sync"),
    ]


@pytest.mark.parametrize("variant", VARYING_VARIANTS)
def test_each_varying_parent_triggers_its_own_child_for_the_sleep_it_is_given(
    dagbag: DagBag, variant: str
) -> None:
    operator, path = VARIANTS[variant]
    task = dagbag.dags[varying_parent_dag_id(variant)].get_task(PARENT_TASK)

    assert isinstance(task, StockTriggerDagRunOperator)
    assert isinstance(task, TriggerDagRunOperator) == (operator == "ours")
    # Its own child Dag: the variants' last successes, which ours predicts from, stay apart.
    assert task.trigger_dag_id == varying_child_dag_id(variant)
    assert task.conf == {"sleep": "{{ params.sleep }}", "tag": "{{ params.tag }}"}
    assert task.deferrable == is_deferrable(path)
    assert task.poke_interval == default_of(StockTriggerDagRunOperator, "poke_interval")
    if isinstance(task, TriggerDagRunOperator):
        assert task.end_from_trigger is False
    child = dagbag.dags[varying_child_dag_id(variant)]
    assert [t.task_id for t in child.tasks] == ["work"]
