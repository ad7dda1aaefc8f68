"""
Parent Dags: for each case, the same single ``trigger`` task built with the stock operator and with ours.

Each (operator, case) pair is a Dag of its own (``<operator>__<case>``), so a test runs exactly the Dag it
names, and both operators get identical arguments. Look one up with :func:`parent`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import (
    TriggerDagRunOperator as StockTriggerDagRunOperator,
)
from airflow.sdk import DAG

from standard_ext.operators.trigger_dagrun import TriggerDagRunOperator
from tests.integration.names import CHILD, PAUSED_CHILD, RESULTS_CHILD, WIDE_CHILD

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

STOCK = "stock"
OURS = "ours"
OPERATORS: dict[str, type[StockTriggerDagRunOperator]] = {
    STOCK: StockTriggerDagRunOperator,
    OURS: TriggerDagRunOperator,
}
TASK_ID = "trigger"

# A fixed logical date whose generated run id (manual__<iso>) a test creates first, to make it collide.
EXISTING_LOGICAL_DATE = datetime(2026, 1, 1, tzinfo=UTC)
FIXED_RUN_ID = "fixed_child_run"
EXECUTION_TIMEOUT = timedelta(seconds=2)
# The XCom a post_execute hook pushes, so a test can see whether the hook ran.
POST_EXECUTE_KEY = "post_execute_ran"


def record_post_execute(context: Context, result: Any) -> None:
    """A ``post_execute`` hook that leaves a trace in the database: an XCom of its task."""
    context["ti"].xcom_push(key=POST_EXECUTE_KEY, value=True)


# The arguments each case passes to both operators. Retries are set where the test must tell "failed at
# once" from "failed after a retry"; retries that happen are one second apart (default_args).
CASES: dict[str, dict[str, Any]] = {
    "generated_id": {"logical_date": EXISTING_LOGICAL_DATE, "retries": 1},
    "generated_id_skip": {
        "logical_date": EXISTING_LOGICAL_DATE,
        "skip_when_already_exists": True,
        "retries": 1,
    },
    "fixed_id": {"trigger_run_id": FIXED_RUN_ID, "retries": 1},
    "fixed_id_skip": {"trigger_run_id": FIXED_RUN_ID, "skip_when_already_exists": True, "retries": 1},
    "fixed_id_reset": {"trigger_run_id": FIXED_RUN_ID, "reset_dag_run": True, "wait_for_completion": True},
    "wait": {"wait_for_completion": True, "retries": 0},
    # dag.test() runs the trigger inline, in a fresh event loop, then resumes the task.
    "wait_deferrable": {"wait_for_completion": True, "deferrable": True, "retries": 0},
    "paused_child": {"trigger_dag_id": PAUSED_CHILD, "fail_when_dag_is_paused": True, "retries": 0},
    "timeout": {"wait_for_completion": True, "execution_timeout": EXECUTION_TIMEOUT, "retries": 0},
    "post_execute": {"post_execute": record_post_execute},
}
# Cases only our operator can express.
OURS_ONLY_CASES: dict[str, dict[str, Any]] = {
    "wait_deferrable_durable": {
        "wait_for_completion": True,
        "deferrable": True,
        "durable": True,
        "retries": 0,
    },
    "wait_deferrable_end_from_trigger": {
        "wait_for_completion": True,
        "deferrable": True,
        "end_from_trigger": True,
        "retries": 0,
    },
    "wait_wide": {"trigger_dag_id": WIDE_CHILD, "wait_for_completion": True, "retries": 0},
    "results": {
        "trigger_dag_id": RESULTS_CHILD,
        "wait_for_completion": True,
        "result_task_ids": ["answer", "shard"],
        "retries": 0,
    },
    "results_deferrable_durable": {
        "trigger_dag_id": RESULTS_CHILD,
        "wait_for_completion": True,
        "deferrable": True,
        "durable": True,
        # Templated: each item is rendered.
        "result_task_ids": ["{{ 'answer' }}", "shard"],
        "retries": 0,
    },
    "fail_fast": {
        "trigger_dag_id": RESULTS_CHILD,
        "wait_for_completion": True,
        "fail_fast": True,
        "retries": 0,
    },
    "fail_fast_deferrable_durable": {
        "trigger_dag_id": RESULTS_CHILD,
        "wait_for_completion": True,
        "deferrable": True,
        "durable": True,
        "fail_fast": True,
        "critical_task_ids": ["answer"],
        "retries": 0,
    },
    "timeout_durable": {
        "wait_for_completion": True,
        "execution_timeout": EXECUTION_TIMEOUT,
        "durable": True,
        "retries": 1,
    },
}


def dag_id(operator: str, case: str) -> str:
    return f"{operator}__{case}"


def _build(operator: str, case: str, kwargs: dict[str, Any]) -> DAG:
    with DAG(
        dag_id(operator, case),
        schedule=None,
        catchup=False,
        default_args={"retry_delay": timedelta(seconds=1)},
    ) as dag:
        # poke_interval=1: the stock operator sleeps it before every check of the child.
        arguments = {"trigger_dag_id": CHILD, "poke_interval": 1, **kwargs}
        if operator == OURS and case in CASES and kwargs.get("retries"):
            # Side by side with stock, whose every try triggers anew: ours retries the same way only
            # with durable=False. (Durable retries have cases of their own.)
            arguments["durable"] = False
        OPERATORS[operator](task_id=TASK_ID, **arguments)
    return dag


PARENTS: dict[str, DAG] = {
    dag_id(operator, case): _build(operator, case, kwargs)
    for operator in OPERATORS
    for case, kwargs in CASES.items()
}
PARENTS.update({dag_id(OURS, case): _build(OURS, case, kwargs) for case, kwargs in OURS_ONLY_CASES.items()})


def parent(operator: str, case: str) -> DAG:
    """The parent Dag of ``case`` built with ``operator`` (``"stock"`` or ``"ours"``)."""
    return PARENTS[dag_id(operator, case)]
