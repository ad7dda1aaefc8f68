"""The benchmark's Dags parse, carry the ids the bench triggers, and leave the operators at their defaults."""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk.definitions.mappedoperator import MappedOperator

from bench.dags.bench import (
    END_FROM_TRIGGER,
    FAN_OUT_CHILD,
    FAN_OUT_TASK,
    FAN_OUTS,
    HOUR_SECONDS,
    LENGTHS,
    ONE_TASK_CHILD,
    ONE_TASK_FAN_OUT,
    PARENT_TASK,
    PAUSED_TARGET,
    VARIANTS,
    VARYING_VARIANTS,
    WAITERS,
    WIDTH_PARENTS,
    child_dag_id,
    fan_out_child,
    parent_dag_id,
    varying_child_dag_id,
    varying_parent_dag_id,
)
from bench.durable_cost import DAGS as DURABLE_COST_DAGS
from bench.model import END_FROM_TRIGGER as MODEL_END_FROM_TRIGGER
from bench.model import PATHS, is_deferrable, operators_of
from bench.schedule_count import default_of
from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from standard_ext.operators.trigger_dagruns import TriggerDagRunsOperator
from tests.e2e.harness import BENCH_DAGS_FOLDER


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=BENCH_DAGS_FOLDER, safe_mode=False)


def test_every_dag_the_bench_triggers_is_there(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    expected = {
        *(child_dag_id(length, variant) for length in (*LENGTHS, HOUR_SECONDS) for variant in VARIANTS),
        *(parent_dag_id(variant) for variant in VARIANTS),
        *DURABLE_COST_DAGS.values(),
        *FAN_OUTS.values(),
        *WIDTH_PARENTS.values(),
        *WAITERS.values(),
        *(varying_child_dag_id(variant) for variant in VARYING_VARIANTS),
        *(varying_parent_dag_id(variant) for variant in VARYING_VARIANTS),
        FAN_OUT_CHILD,
        ONE_TASK_CHILD,
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


def test_the_width_bench_reuses_the_mapped_fan_outs_and_adds_one_task_for_every_child(dagbag: DagBag) -> None:
    assert [dag_id for label, dag_id in WIDTH_PARENTS.items() if label != ONE_TASK_FAN_OUT] == [
        FAN_OUTS["stock, deferrable"],
        FAN_OUTS["ours, deferrable + durable"],
    ]
    dag = dagbag.dags[WIDTH_PARENTS[ONE_TASK_FAN_OUT]]
    task = dag.get_task(FAN_OUT_TASK)

    assert isinstance(task, TriggerDagRunsOperator)
    # A child Dag of its own: nothing else runs it, so its first fan-out has no history to predict from.
    assert task.trigger_dag_id == ONE_TASK_CHILD == fan_out_child(ONE_TASK_FAN_OUT)
    assert all(fan_out_child(label) == FAN_OUT_CHILD for label in WIDTH_PARENTS if label != ONE_TASK_FAN_OUT)
    # Every child at once: the slots throttle them, as they do the mapped fan-outs' children.
    assert task.max_active is None
    assert (task.deferrable, task.durable, task.wait_for_completion) == (True, True, True)
    assert task.poke_interval == default_of(TriggerDagRunsOperator, "poke_interval")
    assert dag.params["count"] == 30
    assert [t.task_id for t in dag.tasks] == ["build_confs", FAN_OUT_TASK]


@pytest.mark.parametrize("operator", sorted(WAITERS))
def test_the_waiters_wait_deferred_at_their_defaults_on_runs_that_never_start(
    dagbag: DagBag, operator: str
) -> None:
    dag = dagbag.dags[WAITERS[operator]]
    task = dag.get_task(FAN_OUT_TASK)

    assert isinstance(task, MappedOperator)
    assert isinstance(task.operator_class, type)
    assert issubclass(task.operator_class, StockTriggerDagRunOperator)
    assert issubclass(task.operator_class, TriggerDagRunOperator) == (operator == "ours")
    kwargs = task.partial_kwargs
    assert kwargs["trigger_dag_id"] == PAUSED_TARGET
    assert kwargs["deferrable"] is True
    assert kwargs["wait_for_completion"] is True
    assert "poke_interval" not in kwargs
    assert dagbag.dags[PAUSED_TARGET].is_paused_upon_creation is True
