"""The child run's result: the ``return_value`` XComs of the tasks the parent names, shaped as ``/wait`` gives them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from task_sdk_ext.api_errors import server_errors_as_runtime_errors

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def check_task_ids(value: object, *, task_id: str, parameter: str) -> list[str] | None:
    """
    Return a task-id list parameter as a list (``None`` when not set), or raise naming the fault.

    Checked once rendered (``result_task_ids`` and ``critical_task_ids`` are templated) and before
    anything is sent.

    :param value: the rendered parameter.
    :param task_id: the parent task, named in the error.
    :param parameter: the parameter's name, named in the error.
    :raises ValueError: not a list of distinct, non-empty strings.
    """
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        hint = (
            " (a Jinja expression renders to text unless the Dag sets render_template_as_native_obj=True)"
            if isinstance(value, str)
            else ""
        )
        raise ValueError(
            f"Task {task_id!r}: {parameter} must be a list of task ids of the triggered Dag, "
            f"got {type(value).__name__} {value!r}{hint}"
        )
    bad = [item for item in value if not isinstance(item, str) or not item]
    if bad:
        raise ValueError(f"Task {task_id!r}: {parameter} must hold non-empty task ids, got {bad!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"Task {task_id!r}: {parameter} names a task twice: {list(value)!r}")
    return list(value)


def collect_results(*, dag_id: str, run_id: str, task_ids: Sequence[str]) -> dict[str, Any]:
    """
    Return ``{task_id: value}``: each named task's ``return_value`` XCom in the run.

    A mapped task gives the list of its values ordered by map index, as the ``/wait`` endpoint's
    ``results`` does. Whether a task is mapped comes from its task instances in the run (a mapped
    task's are keyed ``<task_id>_<map_index>``), asked per task so no two task ids can be confused.

    Only the messages both a task and the triggerer may send (task states, one XCom by map index):
    the worker calls this when the task resumes, the trigger when it ends the task itself
    (:mod:`standard_ext.triggers.finish`), and the two must return the same result.

    :param dag_id: the child Dag.
    :param run_id: the child run.
    :param task_ids: the tasks whose results to return.
    :raises AirflowException: a task the run does not have, or one that pushed no ``return_value``;
        the message names the task and the run. Never a silent ``None``.
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    results: dict[str, Any] = {}
    for task_id in task_ids:
        with server_errors_as_runtime_errors():
            states = RuntimeTaskInstance.get_task_states(
                dag_id=dag_id, run_ids=[run_id], task_ids=[task_id]
            ).get(run_id, {})
        if not states:
            raise AirflowException(
                f"Dag {dag_id!r} run {run_id!r} has no task {task_id!r}, named in result_task_ids"
            )
        with server_errors_as_runtime_errors():
            values = [
                XCom.get_one(
                    key="return_value", dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index
                )
                for map_index in _map_indexes(task_id=task_id, keys=states)
            ]
        # A task that pushed nothing (it returned None, or never ran) reads as None.
        if all(value is None for value in values):
            raise AirflowException(
                f"Task {task_id!r} of Dag {dag_id!r} run {run_id!r} pushed no return_value XCom, so it "
                "has no result to return (result_task_ids): make it return a value, or leave it out"
            )
        mapped = set(states) != {task_id}
        results[task_id] = [value for value in values if value is not None] if mapped else values[0]
    return results


def _map_indexes(*, task_id: str, keys: Iterable[str]) -> list[int]:
    """The map indexes of ``task_id``'s instances, in order: ``[-1]`` for an unmapped task."""
    # A mapped task's instances are keyed <task_id>_<map_index>; the question named this task alone.
    indexes = sorted(int(key.rpartition("_")[2]) for key in keys if key != task_id)
    return indexes or [-1]
